import { availableParallelism } from 'node:os';
import { CliUsageError, EXIT, type CommandContext } from '../context.js';
import { readCappedUserFile } from '../files.js';
import { fromHex } from '../../tee/common/hex.js';
import { MAX_COLLATERAL_FILE_BYTES } from '../../tee/common/read-capped.js';
import type { AppraisalPolicy } from '../../policy/types.js';
import type { VerifySetup } from './verify-batch.js';
import type { VerifyPool } from './verify-pool.js';
import { SIGNER_IN_FLIGHT, SignatureWorker } from './verify-signer.js';
import type { VerifyFlags } from './verify.js';

export const MAX_POLICY_BYTES = 1024 * 1024;
const MAX_SMALL_FILE_BYTES = 1024 * 1024;
/** Output is written in chunks of about this size rather than one write per file. */
const FLUSH_BYTES = 64 * 1024;
/**
 * Quotes each thread of a --jobs pool verifies at once, their signatures on libuv's thread pool (4 threads by
 * default) while the thread parses the next ones: 2x the pool keeps it busy. Each hand-off costs the thread ~18 µs
 * (a crypto job and a promise per signature). The default single thread uses a signature worker instead
 * (verify-signer.ts), whose hand-off costs ~3 µs per signature: with the QE report signature remembered per platform
 * (DcapQuoteVerifier), one signature per quote is left, and the libuv hand-off was then a third of it.
 * Measured over 3,000 distinct quotes from 4 platforms, cold CLI, 2 CPUs under load (medians of 5): main-thread CPU
 * sync 700 ms, libuv 480 ms, signer worker 380 ms; process CPU 931, 1,008, 974 ms. See inFlightFor.
 */
const IN_FLIGHT = 8;
/** Below this many files the batch is over before the overlap pays for its hand-offs (and the signer's start). */
export const ASYNC_MIN_FILES = 32;

/**
 * Signatures off the verifying thread for a batch of at least ASYNC_MIN_FILES on a machine with a second CPU.
 * Decided by the input, not by the load at start (which lags and made the same command behave differently from run
 * to run). The output is the same either way (tests check it).
 */
export function inFlightFor(files: number, cpus: number): number {
  return cpus >= 2 && files >= ASYNC_MIN_FILES ? IN_FLIGHT : 1;
}
/**
 * A worker thread is started only for at least this many files of its own. It is ready ~50-60 ms after it is
 * started (an isolate and the verifier modules; measured on the 2-CPU test machine), during which the main thread
 * verifies ~150-200 quotes alone, and its code runs unoptimized for its first few hundred quotes (each isolate warms
 * up its own JIT): below ~400 files one thread is about as fast and spends less CPU.
 */
export const MIN_FILES_PER_WORKER = 400;
/** Files per chunk handed to a thread: small enough to balance the end of the batch, large enough to amortize. */
const CHUNK_FILES = 32;

/** Attachment flags: evidence that travels beside the main file (TPM quotes, composite evidence). */
const ATTACHMENTS = ['signature', 'ak', 'pcrs', 'eventlog', 'quote', 'tdQuote'] as const;

function parseAt(at: string | undefined): Date | undefined {
  if (at === undefined) return undefined;
  const d = new Date(at);
  if (Number.isNaN(d.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(at)) throw new CliUsageError(`--at '${at}' is not an ISO-8601 date`);
  return d;
}

function parseNonce(n: string | undefined): Uint8Array | undefined {
  if (n === undefined) return undefined;
  try {
    const b = fromHex(n);
    if (b.length === 0) throw new TypeError('empty');
    return b;
  } catch {
    throw new CliUsageError(`--nonce '${n}' is not a non-empty hex string`);
  }
}

/**
 * --jobs: JavaScript threads, a whole number from 1 to 64. Default 1: the one thread uses an idle CPU through the
 * signature worker (inFlightFor, verify-signer.ts), and each worker thread pays its own start-up and JIT warm-up;
 * more jobs only help a batch much larger than a few thousand quotes on a machine with idle CPUs.
 */
export function parseJobs(v: string | undefined): number {
  if (v === undefined) return 1;
  if (!/^\d{1,3}$/.test(v) || Number(v) < 1 || Number(v) > 64) throw new CliUsageError(`--jobs '${v}' is not a whole number from 1 to 64`);
  return Number(v);
}

/**
 * The worker module beside this one: the build's (dist/cli/verify-worker.mjs), or when running from sources the
 * TypeScript one, loaded through tsx's loader registered in the worker (loader hooks are not inherited by workers).
 */
function workerScript(): { script: URL | string; eval?: boolean } {
  if (!import.meta.url.endsWith('.ts')) return { script: new URL('./verify-worker.mjs', import.meta.url) };
  const ts = new URL('./verify-worker.ts', import.meta.url).href;
  const api = import.meta.resolve('tsx/esm/api');
  return { script: `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(ts)}); })`, eval: true };
}

export async function runVerify(files: string[], flags: VerifyFlags, ctx: CommandContext): Promise<void> {
  const at = parseAt(flags.at);
  const nonce = parseNonce(flags.nonce);
  const jobs = parseJobs(flags.jobs);
  const workers = Math.min(jobs - 1, Math.floor(files.length / MIN_FILES_PER_WORKER));
  // Workers first: they load their modules while this thread loads its own and reads the flags' files.
  let pool: VerifyPool | undefined;
  if (workers > 0) {
    const { VerifyPool } = await import('./verify-pool.js');
    pool = new VerifyPool(workers, workerScript());
  }
  // One thread verifying a large batch: its signatures go to a small signature worker (verify-signer.ts), started
  // now so that it is up before the first quote. With --jobs workers, each thread uses libuv's pool (inFlightFor).
  let signer: SignatureWorker | undefined;
  const inFlight = inFlightFor(files.length, availableParallelism());
  if (workers === 0 && inFlight > 1) signer = new SignatureWorker();
  try {
    const { BatchVerifier, MAX_EVIDENCE_BYTES } = await import('./verify-batch.js');
    let policy: AppraisalPolicy = {};
    if (flags.policy) {
      const bytes = await readCappedUserFile(flags.policy, 'policy', MAX_POLICY_BYTES);
      const { parsePolicy } = await import('../../policy/load.js'); // YAML: loaded only for --policy
      try {
        policy = parsePolicy(Buffer.from(bytes).toString('utf8'));
      } catch (e) {
        throw new CliUsageError((e as Error).message);
      }
    }
    const setup: VerifySetup = { tee: flags.tee, json: flags.json === true, atMs: (at ?? new Date()).getTime(), nonce, policy, attachments: {}, inFlight };
    if (flags.trustAnchor && flags.trustAnchor.length > 0) {
      setup.trustAnchors = await Promise.all(flags.trustAnchor.map((f) => readCappedUserFile(f, 'trust anchor', MAX_SMALL_FILE_BYTES)));
    }
    if (flags.collateral) {
      // A directory or a file; what is inside is checked (and capped) by the verifier that opens it.
      try {
        await import('node:fs/promises').then((fs) => fs.stat(flags.collateral!));
      } catch (e) {
        throw new CliUsageError(`cannot read collateral '${flags.collateral}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      setup.collateral = flags.collateral;
    }
    for (const name of ATTACHMENTS) {
      const p = flags[name];
      if (p) setup.attachments[name] = await readCappedUserFile(p, name, name === 'eventlog' ? MAX_EVIDENCE_BYTES : MAX_COLLATERAL_FILE_BYTES);
    }

    const local = signer ? new BatchVerifier({ ...setup, inFlight: SIGNER_IN_FLIGHT }, signer.verify) : new BatchVerifier(setup);
    let status: { rejected: boolean; ioFailed: boolean };
    if (pool) {
      status = await pool.run({ files, setup, chunk: CHUNK_FILES, local, write: (s) => ctx.io.out(s), flushBytes: FLUSH_BYTES });
    } else {
      // Files are read synchronously, one at a time: from the page cache open+read+close cost a few µs, far less CPU
      // than the thread-pool round trips of asynchronous reads, and verification is CPU-bound anyway.
      // One run over every file, its output streamed: no pause at chunk ends (the quotes in flight keep the
      // signature worker busy from the first file to the last).
      const r = await local.run(files, 0, files.length, { bytes: FLUSH_BYTES, write: (s) => ctx.io.out(s) });
      status = { rejected: r.rejected, ioFailed: r.ioFailed };
      if (r.text.length > 0) ctx.io.out(r.text);
    }
    ctx.setExit(status.ioFailed ? EXIT.USAGE : status.rejected ? EXIT.REJECTED : EXIT.OK);
  } finally {
    await signer?.close();
    await pool?.close();
  }
}
