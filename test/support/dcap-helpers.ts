import { verifyEvidence, createVerifierRegistry, type VerificationResult } from '../../src/index.js';
import type { DcapWorld, CollateralTweaks } from './dcap-world.js';
import { createDcapWorld } from './dcap-world.js';
import type { VerifierRegistry } from '../../src/tee/registry.js';

let worldP: Promise<DcapWorld> | undefined;
/** One PKI per test process: generating it costs ~100 ms. */
export function world(): Promise<DcapWorld> {
  worldP ??= createDcapWorld();
  return worldP;
}

export async function verifyQuote(
  w: DcapWorld,
  quote: Uint8Array,
  tee: 'sgx' | 'tdx',
  o: { tweaks?: CollateralTweaks; at?: Date; registry?: VerifierRegistry; nonce?: Uint8Array; trustAnchors?: Uint8Array[] } = {},
): Promise<VerificationResult> {
  return verifyEvidence(quote, {
    registry: o.registry ?? createVerifierRegistry(),
    at: o.at ?? w.at,
    nonce: o.nonce,
    trustAnchors: o.trustAnchors ?? w.trustAnchors,
    dcap: { collateral: await w.collateral(tee, o.tweaks) },
  });
}

export function codeOf(r: VerificationResult): string | undefined {
  return r.errors[0]?.code;
}
