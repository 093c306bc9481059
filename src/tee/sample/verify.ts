import { createPublicKey, verify as ecVerify, type JsonWebKey } from 'node:crypto';
import type { Claims } from '../common/claims.js';
import { VerificationError } from '../common/errors.js';
import { canonicalJson } from '../common/jcs.js';
import type { EvidenceInput, TeeVerifier, VerifyOptions } from '../common/verifier.js';
import { parseSampleEvidence, signedPayload, type SampleEvidence } from './abi.js';

/** `opts.sample`: which dev keys may sign Coffer's dev-form evidence, and whether unsigned evidence is refused. */
export interface SampleVerifyOptions {
  devKeys?: (JsonWebKey & { kid?: string })[];
  requireSignature?: boolean;
}

/** Trustee's sample verifier's fixed claims (it has no hardware to read them from). */
const TRUSTEE_LAUNCH_DIGEST = 'abcde';

function checkSignature(ev: SampleEvidence, o: SampleVerifyOptions): string | undefined {
  const s = ev['coffer-signature'];
  if (!s) {
    if (o.requireSignature) throw new VerificationError('SAMPLE_UNSIGNED', 'sample evidence is unsigned but a dev-key signature is required');
    return undefined;
  }
  const jwk = (o.devKeys ?? []).find((k) => k.kid === s.kid);
  if (!jwk) throw new VerificationError('SAMPLE_KEY_UNKNOWN', `sample evidence is signed by dev key '${s.kid}', which is not trusted`);
  let ok = false;
  try {
    const key = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, format: 'jwk' });
    ok = ecVerify('sha256', Buffer.from(canonicalJson(signedPayload(ev))), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(s.sig, 'base64url'));
  } catch {
    ok = false;
  }
  if (!ok) throw new VerificationError('SAMPLE_SIGNATURE_INVALID', `the dev-key signature (kid ${s.kid}) over the sample evidence does not verify`);
  return s.kid;
}

export function sampleClaims(ev: SampleEvidence, kid: string | undefined): Claims {
  const reportData = Buffer.from(ev.report_data, 'base64').toString('hex');
  const launchDigest = kid ? (ev.launch_digest ?? TRUSTEE_LAUNCH_DIGEST) : TRUSTEE_LAUNCH_DIGEST;
  const debug = kid ? (ev.debug ?? false) : false;
  return {
    tee: 'sample',
    measurements: { launch_digest: launchDigest.toLowerCase() },
    svns: { svn: Number(ev.svn) },
    debug,
    reportData,
    platform: { platform_version: '1.4' },
    advisories: [],
    warnings: [],
    raw: {
      svn: ev.svn, report_data: ev.report_data, launch_digest: launchDigest, platform_version: { major: 1, minor: 4 },
      debug, signed: kid !== undefined, ...(kid ? { kid } : {}),
    },
  };
}

/**
 * The dev-only sample TEE. It proves nothing about hardware: appraisal rejects it unless a policy names `sample`
 * explicitly, and the services only register it in dev mode.
 */
export class SampleVerifier implements TeeVerifier {
  readonly tee = 'sample' as const;

  detect(input: EvidenceInput): boolean {
    const b = input.evidence;
    if (b.length === 0 || b.length > 64 * 1024 || b[0] !== 0x7b /* { */) return false;
    try {
      const o = JSON.parse(Buffer.from(b).toString('utf8'));
      return typeof o?.svn === 'string';
    } catch {
      return false;
    }
  }

  async verify(input: EvidenceInput, opts: VerifyOptions): Promise<Claims> {
    const ev = parseSampleEvidence(input.evidence);
    const kid = checkSignature(ev, (opts.sample as SampleVerifyOptions | undefined) ?? {});
    return sampleClaims(ev, kid);
  }
}
