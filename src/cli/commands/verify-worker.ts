import { parentPort } from 'node:worker_threads';
import { CliUsageError } from '../context.js';
import { BatchVerifier } from './verify-batch.js';
import { takeChunk, type FromWorker, type StartMessage } from './verify-pool.js';

/**
 * A worker thread of `coffer verify` (started by verify-pool.ts; a build entry point of its own, so it loads the
 * verifiers and nothing of the CLI's argument parsing). It loads while the main thread parses the flags, then gets
 * one start message, takes chunks from the shared cursor until none is left, verifies each (reading the files
 * itself) and answers with its result lines; then it waits to be terminated. A usage error (unusable collateral) is
 * reported as such, anything else unexpected as a failure: the main thread then ends the batch.
 */
const port = parentPort;
if (!port) throw new Error('verify-worker runs as a worker thread only');

let started = false;
// The listener also keeps the worker alive (its port open) until the main thread terminates it.
port.on('message', (m: StartMessage) => {
  if (started) return;
  started = true;
  void start(m);
});

async function start(m: StartMessage): Promise<void> {
  try {
    if (m?.t !== 'start' || !Array.isArray(m.files) || !Number.isInteger(m.chunk) || m.chunk < 1 || !(m.cursor instanceof SharedArrayBuffer)) {
      throw new Error('unexpected start message from the main thread');
    }
    const { setup, files, chunk } = m;
    const next = new Int32Array(m.cursor);
    const nChunks = Math.ceil(files.length / chunk);
    const verifier = new BatchVerifier(setup);
    for (let id = takeChunk(next, nChunks); id >= 0; id = takeChunk(next, nChunks)) {
      const r = await verifier.run(files, id * chunk, Math.min(files.length, (id + 1) * chunk));
      port!.postMessage({ t: 'done', id, ...r } satisfies FromWorker);
    }
  } catch (e) {
    port!.postMessage((e instanceof CliUsageError ? { t: 'usage', message: e.message } : { t: 'fail', message: (e as Error)?.message ?? String(e) }) satisfies FromWorker);
  }
}
