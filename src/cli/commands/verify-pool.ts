import { Worker } from 'node:worker_threads';
import { CliUsageError } from '../context.js';
import { oneLine } from '../files.js';
import type { BatchVerifier, ChunkResult, VerifySetup } from './verify-batch.js';

/**
 * `coffer verify` over many files on several threads. The workers are started first, before the main thread
 * parses the rest of its flags and loads the verifiers, so that both load at the same time; then the files are cut
 * into chunks of consecutive indexes that every thread takes from a shared cursor. Workers (verify-worker.ts) read
 * and verify their chunks themselves (only paths and chunk indexes cross threads, never evidence bytes) and send
 * back each chunk's result lines as one string. The main thread verifies chunks too, from the start, so the batch
 * does not wait for the workers. Output is written in input order as soon as the chunks before it are done. A
 * worker that dies, fails to load or sends something unexpected stops the batch with one clear error (exit 2),
 * never a hang.
 */

/** main → worker: the one message a worker gets. */
export interface StartMessage {
  t: 'start';
  setup: VerifySetup;
  files: readonly string[];
  /** Files per chunk: chunk k is files[k * chunk, (k + 1) * chunk). */
  chunk: number;
  /** One Int32: the next chunk to take. Every thread takes its next chunk with Atomics.add, nobody hands them out. */
  cursor: SharedArrayBuffer;
}

/** worker → main */
export type FromWorker = ({ t: 'done'; id: number } & ChunkResult) | { t: 'usage'; message: string } | { t: 'fail'; message: string };

/** Takes the next chunk (an index), or -1 when none is left. */
export function takeChunk(cursor: Int32Array, nChunks: number): number {
  const id = Atomics.add(cursor, 0, 1);
  return id < nChunks ? id : -1;
}

/** The worker's module, or (eval: true) a script that loads it (from sources: registers the TypeScript loader). */
export interface WorkerScript {
  script: URL | string;
  eval?: boolean;
}

export interface RunOptions {
  files: readonly string[];
  setup: VerifySetup;
  /** Files per chunk. */
  chunk: number;
  /** The main thread's own verifier; null: the main thread verifies nothing (tests of the pool). */
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

/** One batch's worker threads: started by the constructor, used by one run(), always ended by close(). */
export class VerifyPool {
  private readonly workers: Worker[] = [];
  private failure: Error | undefined;
  /** The running batch's handlers; before run() a worker's failure is kept and run() reports it. */
  private onFailure: (e: Error) => void = () => {};
  private onDone: (id: number, r: ChunkResult) => void = () => this.malformed();
  private running = true;

  constructor(n: number, worker: WorkerScript) {
    for (let i = 0; i < n; i++) {
      const w = new Worker(worker.script, {
        eval: worker.eval === true,
        resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB, maxYoungGenerationSizeMb: WORKER_YOUNG_MB },
        stdout: true, // a worker prints nothing; if something in it does, it must not interleave with the results
        stderr: true,
      });
      w.on('message', (m: unknown) => {
        const msg = (typeof m === 'object' && m !== null ? m : {}) as Partial<Record<string, unknown>>;
        if (msg.t === 'done' && isChunkResult(msg)) return this.onDone(msg.id as number, msg);
        if (msg.t === 'usage' && typeof msg.message === 'string') return this.fail(new CliUsageError(msg.message));
        if (msg.t === 'fail' && typeof msg.message === 'string') return this.fail(new CliUsageError(`verify worker failed: ${oneLine(msg.message)}`));
        this.malformed();
      });
      w.on('error', (e) => this.fail(new CliUsageError(`verify worker failed: ${oneLine(e?.message ?? String(e))}`)));
      w.on('messageerror', () => this.fail(new CliUsageError('verify worker failed: a message could not be decoded')));
      w.on('exit', (code) => {
        if (this.running) this.fail(new CliUsageError(`verify worker failed: it exited (code ${code}) before the batch was done`));
      });
      this.workers.push(w);
    }
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    this.onFailure(e);
  }

  private malformed(): void {
    this.fail(new CliUsageError('verify worker failed: it sent a malformed message'));
  }

  /** Verifies the batch on every thread; resolves when every chunk is written, rejects on the first failure. */
  async run(o: RunOptions): Promise<{ rejected: boolean; ioFailed: boolean }> {
    const nChunks = Math.ceil(o.files.length / o.chunk);
    const results: (ChunkResult | undefined)[] = new Array(nChunks);
    const cursor = new SharedArrayBuffer(4);
    const next = new Int32Array(cursor);
    let completed = 0;
    let printed = 0;
    let pending = '';
    let rejected = false;
    let ioFailed = false;
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));

    this.onFailure = () => {
      Atomics.store(next, 0, nChunks); // no thread takes another chunk
      finish();
    };
    this.onDone = (id, r) => {
      if (this.failure) return;
      // A chunk is answered once: anything else is a thread that does not follow the protocol.
      if (!(Number.isInteger(id) && id >= printed && id < nChunks && results[id] === undefined)) return this.malformed();
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
      if (completed === nChunks) {
        this.running = false;
        finish();
      }
    };
    if (this.failure) throw this.failure;

    const start: StartMessage = { t: 'start', setup: o.setup, files: o.files, chunk: o.chunk, cursor };
    for (const w of this.workers) w.postMessage(start);
    if (o.local) {
      for (let id = takeChunk(next, nChunks); id >= 0 && !this.failure; id = takeChunk(next, nChunks)) {
        let r: ChunkResult;
        try {
          r = await o.local.run(o.files, id * o.chunk, Math.min(o.files.length, (id + 1) * o.chunk));
        } catch (e) {
          this.fail(e as Error);
          break;
        }
        this.onDone(id, r);
        // Let the workers' results in (messages are macrotasks; the loop above runs on microtasks only).
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    if (!this.failure && completed < nChunks) await finished;
    if (this.failure) throw this.failure;
    return { rejected, ioFailed };
  }

  /** Ends every worker (whatever happened); idempotent. */
  async close(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

function isChunkResult(x: Partial<Record<string, unknown>>): x is Partial<Record<string, unknown>> & ChunkResult {
  return typeof x.text === 'string' && typeof x.rejected === 'boolean' && typeof x.ioFailed === 'boolean';
}
