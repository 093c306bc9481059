import { parentPort, workerData } from 'node:worker_threads';
import { CliUsageError } from '../context.js';
import { BatchVerifier } from './verify-batch.js';
import { takeChunk, type FromWorker, type WorkerInput } from './verify-pool.js';

/**
 * A worker thread of `coffer verify` (started by verify-pool.ts; a build entry point of its own, so it loads the
 * verifiers and nothing of the CLI's argument parsing). It takes chunks from the shared cursor until none is left,
 * verifies each (reading the files itself) and answers with its result lines; then it waits to be terminated. A
 * usage error (unusable collateral) is reported as such, anything else unexpected as a failure: the main thread
 * then ends the batch.
 */
const port = parentPort;
if (!port) throw new Error('verify-worker runs as a worker thread only');
const { setup, files, chunk, cursor } = workerData as WorkerInput;
const next = new Int32Array(cursor);
const nChunks = Math.ceil(files.length / chunk);
const verifier = new BatchVerifier(setup);
port.on('message', () => {}); // keeps the worker alive (and its port open) until the main thread terminates it

try {
  for (let id = takeChunk(next, nChunks); id >= 0; id = takeChunk(next, nChunks)) {
    const r = await verifier.run(files, id * chunk, Math.min(files.length, (id + 1) * chunk));
    port.postMessage({ t: 'done', id, ...r } satisfies FromWorker);
  }
} catch (e) {
  port.postMessage((e instanceof CliUsageError ? { t: 'usage', message: e.message } : { t: 'fail', message: (e as Error)?.message ?? String(e) }) satisfies FromWorker);
}
