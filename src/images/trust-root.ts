import { createHash } from 'node:crypto';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toTrustMaterial, type TrustMaterial } from '@sigstore/verify';
import { ImageError } from './errors.js';
import { memoizeTrustedCertificate } from './sigstore-der.js';

/**
 * A Sigstore trusted root (protobuf-specs TrustedRoot JSON, what `cosign trusted-root create` / TUF's
 * trusted_root.json hold): Fulcio CA chains, Rekor and CT log keys, TSAs — loaded from a local file so keyless
 * verification needs no network. `id` is the content hash: part of the cache key, so a new root re-verifies.
 */
export interface LoadedTrustRoot {
  id: string;
  material: TrustMaterial;
}

export const MAX_TRUST_ROOT_BYTES = 1024 * 1024;

export function parseTrustedRoot(bytes: Uint8Array, what = 'trusted root'): LoadedTrustRoot {
  if (bytes.length > MAX_TRUST_ROOT_BYTES) throw new ImageError('TRUST_ROOT_INVALID', `${what}: larger than ${MAX_TRUST_ROOT_BYTES} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new ImageError('TRUST_ROOT_INVALID', `${what}: not JSON`);
  }
  let material: TrustMaterial;
  try {
    const root = TrustedRoot.fromJSON(json);
    if (root.certificateAuthorities.length === 0) throw new Error('it names no certificate authority');
    if (root.tlogs.length === 0) throw new Error('it names no transparency log');
    material = toTrustMaterial(root);
    for (const ca of [...material.certificateAuthorities, ...material.timestampAuthorities]) for (const c of ca.certChain) memoizeTrustedCertificate(c);
  } catch (e) {
    throw new ImageError('TRUST_ROOT_INVALID', `${what}: ${(e as Error).message}`);
  }
  return { id: createHash('sha256').update(bytes).digest('hex').slice(0, 32), material };
}
