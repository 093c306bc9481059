import { canonicalJson } from '../tee/common/jcs.js';
import type { TeeType } from '../tee/common/claims.js';
import { KbsError } from './errors.js';
import type { TeePubKey } from './jwe.js';
import { checkTeePublicKey, TeeKeyError } from '../tee/common/tee-pubkey.js';

/** KBS protocol version this server speaks; Trustee requires an exact semver match (`=0.4.0`). */
export const KBS_PROTOCOL_VERSION = '0.4.0';
export const KBS_SESSION_COOKIE = 'kbs-session-id';

/** Trustee's `Tee` enum values (kbs-types, lowercase serde names). */
export const TRUSTEE_TEES = ['az-snp-vtpm', 'az-tdx-vtpm', 'nvidia', 'sev', 'sgx', 'snp', 'tdx', 'cca', 'csv', 'se', 'hygondcu', 'tpm', 'sample', 'sampledevice'] as const;

/** Trustee TEE name → Coffer verifier (those Coffer has one for). */
const TO_COFFER: Record<string, TeeType> = {
  sgx: 'sgx', tdx: 'tdx', snp: 'snp', tpm: 'tpm', sample: 'sample', 'az-snp-vtpm': 'az-snp-vtpm', 'az-tdx-vtpm': 'az-tdx-vtpm',
};

export interface KbsRequest {
  version: string;
  tee: string;
  'extra-params': unknown;
}

export interface KbsAttestation {
  'init-data'?: { format: string; body: string } | null;
  /**
   * `image-digests` (Coffer extension, optional): digests of the images the workload runs (what the webhook pinned),
   * asserted by the attester inside the TEE. Bound into the report data with the rest of the runtime data, so a
   * resource policy's `images` rule can rely on it.
   */
  'runtime-data': { nonce: string; 'tee-pubkey': TeePubKey; 'image-digests'?: string[] };
  'tee-evidence': { primary_evidence: unknown; additional_evidence?: string };
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new KbsError('SerdeError', `${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

/** semver `=0.4.0`: exactly major.minor.patch, no pre-release. */
export function checkVersion(v: unknown): void {
  const m = typeof v === 'string' ? /^(\d+)\.(\d+)\.(\d+)$/.exec(v) : null;
  if (!m || `${Number(m[1])}.${Number(m[2])}.${Number(m[3])}` !== KBS_PROTOCOL_VERSION) {
    throw new KbsError('ProtocolVersion', `KBS Client Protocol Version Mismatch: expect =${KBS_PROTOCOL_VERSION} while the request is ${String(v)}`);
  }
}

export function parseRequest(body: unknown): KbsRequest & { cofferTee: TeeType } {
  const o = obj(body, 'Request');
  checkVersion(o.version);
  if (typeof o.tee !== 'string' || !(TRUSTEE_TEES as readonly string[]).includes(o.tee)) throw new KbsError('SerdeError', `unknown tee ${JSON.stringify(o.tee)}`);
  const cofferTee = TO_COFFER[o.tee];
  if (!cofferTee) throw new KbsError('AttestationError', `TEE ${o.tee} is not supported by this KBS`);
  if (!('extra-params' in o)) throw new KbsError('SerdeError', 'Request is missing extra-params');
  return { version: o.version as string, tee: o.tee, 'extra-params': o['extra-params'], cofferTee };
}

export function parseTeePubKey(v: unknown): TeePubKey {
  const k = obj(v, 'tee-pubkey');
  if (k.kty === 'EC') {
    for (const f of ['crv', 'alg', 'x', 'y']) if (typeof k[f] !== 'string') throw new KbsError('SerdeError', `EC tee-pubkey needs string ${f}`);
  } else if (k.kty === 'RSA') {
    for (const f of ['alg', 'n', 'e']) if (typeof k[f] !== 'string') throw new KbsError('SerdeError', `RSA tee-pubkey needs string ${f}`);
  } else throw new KbsError('SerdeError', `tee-pubkey kty ${String(k.kty)} is not supported`);
  if ('d' in k) throw new KbsError('SerdeError', 'tee-pubkey must not contain a private key');
  return k as unknown as TeePubKey;
}

/** The attest-time check: a key nothing may be encrypted to is refused before its evidence is even verified. */
export function checkAttestedTeePubKey(k: TeePubKey): void {
  try {
    checkTeePublicKey(k);
  } catch (e) {
    if (e instanceof TeeKeyError) throw new KbsError('InvalidTeePubKey', `${e.code}: ${e.message}`);
    throw e;
  }
}

export function parseAttestation(body: unknown): KbsAttestation {
  const o = obj(body, 'Attestation');
  const rd = obj(o['runtime-data'], 'runtime-data');
  if (typeof rd.nonce !== 'string') throw new KbsError('SerdeError', 'runtime-data.nonce must be a string');
  const ev = obj(o['tee-evidence'], 'tee-evidence');
  if (!('primary_evidence' in ev)) throw new KbsError('SerdeError', 'tee-evidence.primary_evidence is missing');
  const add = ev.additional_evidence ?? '';
  if (typeof add !== 'string') throw new KbsError('SerdeError', 'tee-evidence.additional_evidence must be a string');
  const init = o['init-data'];
  if (init !== undefined && init !== null) {
    const i = obj(init, 'init-data');
    if (i.format !== 'toml' || typeof i.body !== 'string') throw new KbsError('AttestationError', 'Unsupported initdata format (toml only)');
  }
  let images: string[] | undefined;
  if (rd['image-digests'] !== undefined) {
    const v = rd['image-digests'];
    if (!Array.isArray(v) || v.length === 0 || v.length > 64 || !v.every((d) => typeof d === 'string' && /^sha256:[a-f0-9]{64}$/.test(d))) {
      throw new KbsError('SerdeError', 'runtime-data.image-digests must be a list of 1..64 sha256:<64 hex> digests');
    }
    images = v as string[];
  }
  return {
    'init-data': (init as KbsAttestation['init-data']) ?? null,
    'runtime-data': { nonce: rd.nonce, 'tee-pubkey': parseTeePubKey(rd['tee-pubkey']), ...(images ? { 'image-digests': images } : {}) },
    'tee-evidence': { primary_evidence: ev.primary_evidence, additional_evidence: add },
  };
}

/**
 * The bytes the primary evidence's report data commits to, as Trustee computes them: JCS of
 * {"tee-pubkey", "nonce", "additional-evidence"} — the attester puts SHA-384 (SHA-512 for `se`) of it in its
 * report data. verifyEvidenceWith accepts report data starting with SHA-256/384/512 of this value.
 */
export function runtimeDataBinding(a: KbsAttestation): Uint8Array {
  const images = a['runtime-data']['image-digests'];
  // Trustee's three members exactly when no image digests are claimed (interoperable); otherwise they are bound too.
  return new TextEncoder().encode(
    canonicalJson({ 'tee-pubkey': a['runtime-data']['tee-pubkey'], nonce: a['runtime-data'].nonce, 'additional-evidence': a['tee-evidence'].additional_evidence ?? '', ...(images ? { 'image-digests': images } : {}) }),
  );
}

/**
 * Trustee primary evidence (JSON) → the bytes Coffer's verifiers read. sample: the JSON itself. sgx/tdx: the
 * `quote` member (base64). Others: a base64 string, or the JSON text.
 */
export function primaryEvidenceBytes(tee: TeeType, ev: unknown): Uint8Array {
  // Sample evidence arrives as the JSON object, or (older clients) as the attester's JSON text in a string.
  if (tee === 'sample') return new TextEncoder().encode(typeof ev === 'string' ? ev : JSON.stringify(ev));
  const b64 = (s: string) => {
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(s)) throw new KbsError('AttestationError', 'evidence is not base64');
    return new Uint8Array(Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64'));
  };
  if (typeof ev === 'string') return b64(ev);
  if ((tee === 'sgx' || tee === 'tdx') && typeof ev === 'object' && ev !== null && typeof (ev as { quote?: unknown }).quote === 'string') {
    return b64((ev as { quote: string }).quote);
  }
  return new TextEncoder().encode(JSON.stringify(ev));
}

/**
 * Primary evidence → verifier input. `tpm` (Coffer's form, what `coffer kbs-client --tee tpm` sends):
 * `{quote, signature, ak?, pcrs?}`, each base64 (TPMS_ATTEST, TPMT_SIGNATURE, TPM2B_PUBLIC, tpm2_quote -F serialized
 * PCRs); the extra members become the TPM verifier's attachments. Every other TEE: primaryEvidenceBytes.
 */
export function primaryEvidenceInput(tee: TeeType, ev: unknown): { evidence: Uint8Array; attachments?: Record<string, Uint8Array> } {
  if (tee === 'tpm' && typeof ev === 'object' && ev !== null && !Array.isArray(ev)) {
    const o = ev as Record<string, unknown>;
    const b64 = (k: string) => {
      const v = o[k];
      if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw new KbsError('AttestationError', `tpm evidence member ${k} is not a base64 string`);
      return new Uint8Array(Buffer.from(v, 'base64'));
    };
    const attachments: Record<string, Uint8Array> = { signature: b64('signature') };
    for (const k of ['ak', 'pcrs'] as const) if (o[k] !== undefined) attachments[k] = b64(k);
    return { evidence: b64('quote'), attachments };
  }
  return { evidence: primaryEvidenceBytes(tee, ev) };
}

export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}
