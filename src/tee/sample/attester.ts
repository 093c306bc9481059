import { createPrivateKey, sign, type JsonWebKey } from 'node:crypto';
import { canonicalJson } from '../common/jcs.js';
import type { SampleEvidence } from './abi.js';

/**
 * Produces sample evidence over the given report data: Trustee's unsigned form, or Coffer's dev form signed by a
 * local dev key (private JWK with a `kid`). Used by `coffer kbs-client` on machines without a TEE.
 */
export function makeSampleEvidence(
  reportData: Uint8Array,
  o: { svn?: string; launchDigest?: string; debug?: boolean; devKey?: JsonWebKey & { kid: string } } = {},
): SampleEvidence {
  const ev: SampleEvidence = { svn: o.svn ?? '1', report_data: Buffer.from(reportData).toString('base64') };
  if (!o.devKey) return ev;
  if (o.launchDigest !== undefined) ev.launch_digest = o.launchDigest;
  if (o.debug !== undefined) ev.debug = o.debug;
  const key = createPrivateKey({ key: o.devKey, format: 'jwk' });
  const sig = sign('sha256', Buffer.from(canonicalJson(ev)), { key, dsaEncoding: 'ieee-p1363' });
  return { ...ev, 'coffer-signature': { alg: 'ES256', kid: o.devKey.kid, sig: sig.toString('base64url') } };
}
