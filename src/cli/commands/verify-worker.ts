import { parentPort, workerData } from 'node:worker_threads';
import { CliUsageError } from '../context.js';
import { BatchVerifier } from './verify-batch.js';
import type { FromWorker, ToWorker, WorkerInput } from './verify-pool.js';

/**
 * A worker thread of `coffer verify` (started by verify-pool.ts; a build entry point of its own, so it loads the
 * verifiers and nothing of the CLI's argument parsing). It verifies the chunks it is sent, one at a time and in the
 * order received, and answers each with its result lines. A usage error (unusable collateral) is reported as such;
 * anything else unexpected as a failure, and the main thread ends the batch.
 */
const port = parentPort;
if (!port) throw new Error('verify-worker runs as a worker thread only');
const { setup, files } = workerData as WorkerInput;
const verifier = new BatchVerifier(setup);
let queue: Promise<void> = Promise.resolve();

port.on('message', (m: ToWorker) => {
  queue = queue.then(async () => {
    let reply: FromWorker;
    try {
      if (m?.t !== 'chunk' || !Number.isInteger(m.from) || !Number.isInteger(m.to) || m.from < 0 || m.to > files.length || m.from > m.to) throw new Error('unexpected message from the main thread');
      reply = { t: 'done', id: m.id, ...(await verifier.run(files, m.from, m.to)) };
    } catch (e) {
      reply = e instanceof CliUsageError ? { t: 'usage', message: e.message } : { t: 'fail', message: (e as Error)?.message ?? String(e) };
    }
    port.postMessage(reply);
  });
});
port.postMessage({ t: 'ready' } satisfies FromWorker);
