import { EvidenceFormatError } from '../common/errors.js';

/**
 * The sample TEE's evidence. The unsigned form is Trustee's exactly (guest-components' sample attester emits
 * `{"svn":"1","report_data":"<std base64>"}`; Trustee's sample verifier reads `svn` and `report_data`).
 * Coffer's dev form adds `launch_digest`, `debug` and a `coffer-signature` by a local dev key, so a dev laptop can
 * tell its own evidence from anyone's JSON.
 */
export interface SampleSignature {
  alg: 'ES256';
  kid: string;
  /** base64url ECDSA P-256 signature (r||s) over JCS(evidence without `coffer-signature`). */
  sig: string;
}

export interface SampleEvidence {
  svn: string;
  /** Standard base64 of the raw report-data bytes. */
  report_data: string;
  launch_digest?: string;
  debug?: boolean;
  'coffer-signature'?: SampleSignature;
}

export const SAMPLE_MAX_BYTES = 64 * 1024;
const KEYS = new Set(['svn', 'report_data', 'launch_digest', 'debug', 'coffer-signature']);

export function parseSampleEvidence(bytes: Uint8Array): SampleEvidence {
  if (bytes.length > SAMPLE_MAX_BYTES) throw new EvidenceFormatError('SAMPLE_TOO_LARGE', `sample evidence is ${bytes.length} bytes, the limit is ${SAMPLE_MAX_BYTES}`);
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new EvidenceFormatError('SAMPLE_NOT_JSON', 'sample evidence is not JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new EvidenceFormatError('SAMPLE_NOT_OBJECT', 'sample evidence must be a JSON object');
  const o = doc as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KEYS.has(k)) throw new EvidenceFormatError('SAMPLE_UNKNOWN_FIELD', `sample evidence has an unknown field '${k}'`);
  if (typeof o.svn !== 'string' || !/^\d{1,9}$/.test(o.svn)) throw new EvidenceFormatError('SAMPLE_BAD_SVN', 'sample evidence field svn must be a decimal string');
  const rd = o.report_data ?? '';
  if (typeof rd !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(rd) || rd.length % 4 !== 0) {
    throw new EvidenceFormatError('SAMPLE_BAD_REPORT_DATA', 'sample evidence field report_data must be standard base64');
  }
  const ev: SampleEvidence = { svn: o.svn, report_data: rd };
  if (o.launch_digest !== undefined) {
    if (typeof o.launch_digest !== 'string' || o.launch_digest.length > 256) throw new EvidenceFormatError('SAMPLE_BAD_FIELD', 'launch_digest must be a short string');
    ev.launch_digest = o.launch_digest;
  }
  if (o.debug !== undefined) {
    if (typeof o.debug !== 'boolean') throw new EvidenceFormatError('SAMPLE_BAD_FIELD', 'debug must be true or false');
    ev.debug = o.debug;
  }
  const s = o['coffer-signature'];
  if (s !== undefined) {
    const sig = s as Record<string, unknown>;
    if (typeof s !== 'object' || s === null || sig.alg !== 'ES256' || typeof sig.kid !== 'string' || typeof sig.sig !== 'string') {
      throw new EvidenceFormatError('SAMPLE_BAD_SIGNATURE_FIELD', 'coffer-signature must be {alg:"ES256", kid, sig}');
    }
    ev['coffer-signature'] = { alg: 'ES256', kid: sig.kid, sig: sig.sig };
  }
  return ev;
}

/** The bytes a dev key signs. */
export function signedPayload(ev: SampleEvidence): Omit<SampleEvidence, 'coffer-signature'> {
  const { 'coffer-signature': _s, ...rest } = ev;
  return rest;
}
