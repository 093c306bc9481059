import type { Claims } from '../common/claims.js';
import { UsageError } from '../common/errors.js';
import type { EvidenceInput, TeeVerifier, VerifyOptions } from '../common/verifier.js';
import { TPM_GENERATED_VALUE } from './abi/constants.js';
import { parseAkPublic, type AkPublic } from './abi/public.js';
import { unwrapAttest } from './abi/attest.js';
import { verifyQuote, type TpmVerifyOptions } from './verify/quote.js';
import { PcrCheckCache } from './verify/pcr-check.js';
import { EventLogCache } from './verify/eventlog-cache.js';

/**
 * Parsed AKs kept per verifier. Importing an EC/RSA key costs 70-130 µs (the point/modulus is validated), more than
 * the quote's signature check, and a fleet has one AK per node that comes back every interval: sized for a
 * 10,000-node fleet (bench:node-trust) at well under 1 KB per entry.
 */
const AK_CACHE_MAX = 16_384;

/**
 * TPM 2.0 quote verifier. Evidence = TPMS_ATTEST (tpm2_quote -m) or TPM2B_ATTEST; attachments: signature, ak,
 * pcrs, eventlog. Holds a small per-instance cache of imported AK keys (content-keyed), so warm verifications
 * of the same AK cost one signature check plus parsing; and memos of PCR checks and event-log replays (content-keyed:
 * a fleet's unchanged PCRs and boot log cost a compare and one hash).
 */
export class TpmVerifier implements TeeVerifier {
  readonly tee = 'tpm' as const;
  private readonly akCache = new Map<number, { bytes: Buffer; ak: AkPublic }>();
  private readonly pcrCache = new PcrCheckCache();
  private readonly eventLogCache = new EventLogCache();
  private readonly parseAkBound = (b: Uint8Array) => this.parseAk(b);

  detect(input: EvidenceInput): boolean {
    const b = unwrapAttest(input.evidence);
    return b.length >= 6 && ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0 === TPM_GENERATED_VALUE && b[4] === 0x80 && b[5] === 0x18;
  }

  verify(input: EvidenceInput, opts: VerifyOptions): Promise<Claims> {
    // The trust core reads no clock: verifyEvidence() supplies `at` (default now) before calling verifiers.
    if (!opts.at) return Promise.reject(new UsageError('MISSING_TIME', 'the TPM verifier needs the verification time (opts.at)'));
    const at = opts.at;
    const a = input.attachments ?? {};
    return verifyQuote(
      { attest: input.evidence, signature: a.signature, ak: a.ak, pcrs: a.pcrs, eventlog: a.eventlog },
      { at, nonce: opts.nonce, tpm: opts.tpm as TpmVerifyOptions | undefined, parseAk: this.parseAkBound, pcrCache: this.pcrCache, eventLogCache: this.eventLogCache },
    );
  }

  /**
   * Content-keyed: a hash of the length and the last 32 bytes (key material in every AK format) picks the slot, then the whole file is compared with the cached copy, so only identical bytes share a parsed AK.
   */
  private parseAk(b: Uint8Array): AkPublic {
    const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    // FNV-1a over the length and the last 32 bytes: a slot number, never trusted without the full compare below.
    let k = 0x811c9dc5 ^ b.length;
    for (let i = Math.max(0, b.length - 32); i < b.length; i++) k = Math.imul(k ^ b[i], 0x01000193);
    const hit = this.akCache.get(k);
    if (hit && hit.bytes.equals(buf)) {
      // Most recently used last (Map order), so eviction drops the AK unseen the longest.
      this.akCache.delete(k);
      this.akCache.set(k, hit);
      return hit.ak;
    }
    const ak = parseAkPublic(b);
    if (!hit && this.akCache.size >= AK_CACHE_MAX) this.akCache.delete(this.akCache.keys().next().value!);
    this.akCache.set(k, { bytes: Buffer.from(buf), ak });
    return ak;
  }
}
