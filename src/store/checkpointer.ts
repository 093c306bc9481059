import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * WAL checkpoints off the event loop. better-sqlite3 is synchronous, so an automatic checkpoint (copying the WAL
 * into the database and fsyncing it) would stall every request for tens of milliseconds. A worker thread with its
 * own connection runs PASSIVE checkpoints on a timer instead; PASSIVE never blocks writers. The main connection
 * keeps a large auto-checkpoint threshold as a safety net should the worker die.
 */
const WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 5000');
db.pragma('synchronous = ' + workerData.synchronous);
const t = setInterval(() => { try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {} }, workerData.intervalMs);
parentPort.on('message', (m) => { if (m === 'stop') { clearInterval(t); db.close(); parentPort.close(); } });
`;

export class Checkpointer {
  private readonly worker: Worker;
  private exited = false;

  constructor(path: string, o: { intervalMs: number; synchronous: string }) {
    const module = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER, { eval: true, workerData: { path, module, intervalMs: o.intervalMs, synchronous: o.synchronous } });
    this.worker.on('error', () => {}); // the safety-net auto-checkpoint takes over
    this.worker.once('exit', () => {
      this.exited = true;
    });
    this.worker.unref();
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((r) => this.worker.once('exit', () => r()));
    this.worker.postMessage('stop');
    const t = setTimeout(() => void this.worker.terminate(), 2000);
    await done;
    clearTimeout(t);
  }
}
