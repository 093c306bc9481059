import { Worker } from 'node:worker_threads';
import { CliUsageError } from '../context.js';
import { oneLine } from '../files.js';
import type { BatchVerifier, ChunkResult, VerifySetup } from './verify-batch.js';

/**
 * `coffer verify` over many files on several threads. The files are cut into chunks of consecutive indexes; worker
 * threads (verify-worker.ts) read and verify their chunks themselves (only paths and index ranges cross threads,
 * never evidence bytes) and send back each chunk's result lines as one string. The main thread verifies chunks too,
 * from the start, so the batch does not wait for the workers to load. Output is written in input order as soon as
 * the chunks before it are done. A worker that dies, fails to load or sends something unexpected stops the batch
 * with one clear error (exit 2), never a hang.
 */

/** worker → main */
export type FromWorker = ({ t: 'done'; id: number } & ChunkResult) | { t: 'usage'; message: string } | { t: 'fail'; message: string };

/** What a worker is started with (workerData). */
export interface WorkerInput {
  setup: VerifySetup;
  files: readonly string[];
  /** Files per chunk: chunk k is files[k * chunk, (k + 1) * chunk). */
  chunk: number;
  /** One Int32: the next chunk to take. Every thread takes its next chunk with Atomics.add, nobody hands them out. */
  cursor: SharedArrayBuffer;
}

/** Takes the next chunk (an index), or -1 when none is left. */
export function takeChunk(cursor: Int32Array, nChunks: number): number {
  const id = Atomics.add(cursor, 0, 1);
  return id < nChunks ? id : -1;
}

export interface PoolOptions {
  files: readonly string[];
  setup: VerifySetup;
  /** Worker threads to start (the main thread verifies as well). */
  workers: number;
  /** Files per chunk. */
  chunk: number;
  /** The worker's module, or (eval: true) a script that loads it (from sources: registers the TypeScript loader). */
  worker: { script: URL | string; eval?: boolean };
  /** The main thread's own verifier; null: the main thread only hands out chunks (tests of the pool). */
  local: BatchVerifier | null;
  /** Receives the output, in input order, in pieces of at least `flushBytes` (the last one smaller). */
  write(text: string): void;
  flushBytes: number;
}

/**
 * Heap limits per worker: a runaway input ends the batch with an error rather than the whole process; a small young
 * generation keeps a worker's RSS near 15 MB (the default lets it grow to ~20 MB more, for no measurable speed).
 */
const WORKER_HEAP_MB = 512;
const WORKER_YOUNG_MB = 4;

export async function runPool(o: PoolOptions): Promise<{ rejected: boolean; ioFailed: boolean }> {
  const nChunks = Math.ceil(o.files.length / o.chunk);
  const results: (ChunkResult | undefined)[] = new Array(nChunks);
  const cursor = new SharedArrayBuffer(4);
  const next = new Int32Array(cursor);
  let completed = 0;
  let printed = 0;
  let pending = '';
  let rejected = false;
  let ioFailed = false;
  let failure: Error | undefined;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const workers: Worker[] = [];

  const fail = (e: Error) => {
    if (failure) return;
    failure = e;
    Atomics.store(next, 0, nChunks); // no thread takes another chunk
    finish();
  };
  const malformed = () => fail(new CliUsageError('verify worker failed: it sent a malformed message'));

  const store = (id: number, r: ChunkResult) => {
    if (failure) return;
    // A chunk is answered once: anything else is a thread that does not follow the protocol.
    if (!(Number.isInteger(id) && id >= printed && id < nChunks && results[id] === undefined)) return malformed();
    results[id] = r;
    completed++;
    rejected ||= r.rejected;
    ioFailed ||= r.ioFailed;
    // Everything done up to here in input order goes out; later chunks wait for the ones before them.
    while (printed < nChunks && results[printed]) {
      pending += results[printed]!.text;
      results[printed] = undefined;
      printed++;
    }
    if (pending.length >= o.flushBytes || (printed === nChunks && pending.length > 0)) {
      o.write(pending);
      pending = '';
    }
    if (completed === nChunks) finish();
  };

  const input: WorkerInput = { setup: o.setup, files: o.files, chunk: o.chunk, cursor };
  for (let i = 0; i < o.workers; i++) {
    const w = new Worker(o.worker.script, {
      eval: o.worker.eval === true,
      workerData: input,
      resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB, maxYoungGenerationSizeMb: WORKER_YOUNG_MB },
      stdout: true, // a worker prints nothing; if something in it does, it must not interleave with the results
      stderr: true,
    });
    w.on('message', (m: unknown) => {
      const msg = (typeof m === 'object' && m !== null ? m : {}) as Partial<Record<string, unknown>>;
      if (msg.t === 'done' && isChunkResult(msg)) return store(msg.id as number, msg);
      if (msg.t === 'usage' && typeof msg.message === 'string') return fail(new CliUsageError(msg.message));
      if (msg.t === 'fail' && typeof msg.message === 'string') return fail(new CliUsageError(`verify worker failed: ${oneLine(msg.message)}`));
      malformed();
    });
    w.on('error', (e) => fail(new CliUsageError(`verify worker failed: ${oneLine(e?.message ?? String(e))}`)));
    w.on('messageerror', () => fail(new CliUsageError('verify worker failed: a message could not be decoded')));
    w.on('exit', (code) => {
      if (completed < nChunks) fail(new CliUsageError(`verify worker failed: it exited (code ${code}) before the batch was done`));
    });
    workers.push(w);
  }

  try {
    if (o.local) {
      for (let id = takeChunk(next, nChunks); id >= 0 && !failure; id = takeChunk(next, nChunks)) {
        store(id, await o.local.run(o.files, id * o.chunk, Math.min(o.files.length, (id + 1) * o.chunk)));
        // Let the workers' results in (messages are macrotasks; the loop above runs on microtasks only).
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    if (!failure && completed < nChunks) await finished;
  } catch (e) {
    fail(e as Error);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  if (failure) throw failure;
  return { rejected, ioFailed };
}

function isChunkResult(x: Partial<Record<string, unknown>>): x is Partial<Record<string, unknown>> & ChunkResult {
  return typeof x.text === 'string' && typeof x.rejected === 'boolean' && typeof x.ioFailed === 'boolean';
}
