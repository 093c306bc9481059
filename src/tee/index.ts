import { VerifierRegistry } from './registry.js';
import type { TeeVerifier } from './common/verifier.js';
import { SampleVerifier } from './sample/index.js';

/**
 * The verifiers Coffer ships, in auto-detection order (most specific sniff first). Each call builds fresh
 * instances: callers that want warm caches (services, benchmarks) keep and reuse the registry.
 */
export function createVerifierRegistry(): VerifierRegistry {
  const verifiers: TeeVerifier[] = [
    // Each TEE module adds its verifier here.
    new SampleVerifier(), // last: its JSON sniff must never shadow a real TEE
  ];
  return new VerifierRegistry(verifiers);
}

export { VerifierRegistry } from './registry.js';
