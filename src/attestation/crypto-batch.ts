import { sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import type { AsyncSignatureVerifier } from '../tee/common/verifier.js';

/** At most this many operations run in one go; the rest wait for the next check phase (bounds one stall). */
const MAX_PER_FLUSH = 64;

type Key = { key: KeyObject; dsaEncoding: 'ieee-p1363' };
interface Job {
  alg: string;
  data: Uint8Array;
  key: Key;
  /** A signature to verify, or undefined for a signature to make. */
  signature?: Uint8Array;
  resolve(v: boolean | Buffer): void;
  reject(e: unknown): void;
}

/**
 * The service's public-key operations (evidence signature checks, token signatures), coalesced: those that the
 * requests served in one event-loop turn ask for run back to back in the next check phase (setImmediate).
 *
 * Why: between two attestations the service parses bodies, builds JSON and writes sockets, which evicts what
 * OpenSSL's P-256 code uses from the core's caches; the next operation then pays for fetching it again. Measured on
 * this machine (bench:attest's 2-core VM): a P-256 signature costs 30-36 µs in a loop of signatures, 45-53 µs
 * alternating with verifications, 99 µs with 256 KB of other memory traffic before each and 165 µs with 512 KB; a
 * verification 87-115 µs. Run back to back, every operation of a batch but the first finds the caches warm. The
 * service signs a token while its attestation's commit is in flight, so under load one batch holds the token
 * signatures of some requests and the evidence checks of the next. Alone, a request waits one loop iteration per
 * operation and pays what it paid before. (Holding signatures back for several iterations to make longer runs
 * was tried: it cost more in loop iterations than it saved.)
 *
 * Fails closed: a verification answers what node:crypto answered for that very (key, data, signature) and nothing
 * else; an operation that throws rejects its own promise with the error (exactly what the synchronous call would
 * have thrown) and the rest of the batch goes on.
 */
export class CryptoBatch {
  private queue: Job[] = [];
  private scheduled = false;
  /** Runs and operations so far (benchmarks report the mean run). */
  readonly stats = { flushes: 0, ops: 0 };

  /** An AsyncSignatureVerifier (verifier options' `verifySignature`) for this batch. */
  readonly verify: AsyncSignatureVerifier = (alg, data, key, signature) =>
    new Promise<boolean>((resolve, reject) => this.enqueue({ alg, data, key, signature, resolve: resolve as Job['resolve'], reject }));

  /** The signature of `data` with `key` (dsaEncoding as given), made in the next batch. */
  sign(alg: string, data: Uint8Array, key: Key): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => this.enqueue({ alg, data, key, resolve: resolve as Job['resolve'], reject }));
  }

  private enqueue(j: Job): void {
    this.queue.push(j);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const q = this.queue;
    this.queue = q.length > MAX_PER_FLUSH ? q.slice(MAX_PER_FLUSH) : [];
    if (this.queue.length) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
    const n = Math.min(q.length, MAX_PER_FLUSH);
    this.stats.flushes++;
    this.stats.ops += n;
    for (let i = 0; i < n; i++) {
      const j = q[i];
      let out: boolean | Buffer;
      try {
        out = j.signature === undefined ? nodeSign(j.alg, j.data, j.key) : nodeVerify(j.alg, j.data, j.key, j.signature);
      } catch (e) {
        j.reject(e);
        continue;
      }
      j.resolve(out);
    }
  };
}
