import { VerificationCache, type VerificationCacheOptions } from './cache.js';
import { compileImagePolicy, type CompiledImagePolicy, type ImagePolicySpec } from './policy.js';
import type { ImageSource } from './source.js';
import type { LoadedTrustRoot } from './trust-root.js';
import { verifyImage, type ImageVerification } from './verify-image.js';
import { SigstoreMemo } from './verify-signature.js';

export interface ImageVerifierOptions {
  source: ImageSource;
  trustRoot?: LoadedTrustRoot;
  cache?: VerificationCacheOptions;
  /** Successful Sigstore (keyless) verifications remembered by content; 0 disables (default 1024). */
  sigstoreMemoEntries?: number;
}

/**
 * The long-lived verifier the webhook holds: compiles each policy once (keyed by the spec object), caches
 * successful verifications by (image as written, policy content hash, trust root hash) and shares in-flight work.
 */
export class ImageVerifier {
  readonly cache: VerificationCache<ImageVerification>;
  private readonly compiled = new WeakMap<ImagePolicySpec, CompiledImagePolicy>();
  private readonly memo: SigstoreMemo;

  constructor(private readonly opts: ImageVerifierOptions) {
    this.cache = new VerificationCache(opts.cache);
    this.memo = new SigstoreMemo(opts.sigstoreMemoEntries ?? 1024);
  }

  policy(spec: ImagePolicySpec): CompiledImagePolicy {
    let c = this.compiled.get(spec);
    if (!c) {
      c = compileImagePolicy(spec);
      this.compiled.set(spec, c);
    }
    return c;
  }

  private key(image: string, policy: CompiledImagePolicy): string {
    return `${image}\u0000${policy.id}\u0000${this.opts.trustRoot?.id ?? '-'}`;
  }

  verify(image: string, spec: ImagePolicySpec): Promise<ImageVerification> {
    const policy = this.policy(spec);
    return this.cache.get(this.key(image, policy), () => verifyImage(image, { source: this.opts.source, policy, trustRoot: this.opts.trustRoot, sigstoreMemo: this.memo }));
  }

  /** The cached verification, synchronously (the webhook's warm path: no promise, no timer). */
  cached(image: string, spec: ImagePolicySpec): ImageVerification | undefined {
    const hit = this.cache.peek(this.key(image, this.policy(spec)));
    if (hit) this.cache.hits++;
    return hit;
  }
}
