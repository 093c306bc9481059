import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { StoreError } from './kek.js';

/**
 * The hot-path writes (nonce issue/consume, sessions, audit rows) committed by a worker thread with its own
 * connection. better-sqlite3 is synchronous, and under synchronous=FULL every commit fsyncs the WAL: done on the
 * main thread, that fsync stalls every request in flight (it was the largest item in the service's CPU profile).
 * Here the event loop keeps serving while the worker commits. Group commit is kept: everything queued while one
 * batch is being committed goes into the next transaction (one fsync); a failing write (one statement) is rolled
 * back alone and the rest commit. A promise
 * settles only after its batch committed, so durability is exactly the inline path's.
 */
export type WriteOp =
  | ['nonceInsert', [string, string, number]]
  | ['nonceConsume', [number, string, string, number]]
  | ['sesPut', [string, string, number]]
  | ['auditInsert', [number, string, string, string, string, string | null]]
  /** Nonce consume + audit row of one attestation, in one transaction: the row is inserted only if the nonce was fresh. */
  | ['nonceConsumeAudit', [number, string, string, number, number, string, string, string, string, string | null]];

export const WRITE_SQL: Record<WriteOp[0], string> = {
  nonceInsert: `INSERT INTO nonces (nonce,scope,expires_at) VALUES (?,?,?)`,
  nonceConsume: `UPDATE nonces SET used_at=? WHERE nonce=? AND scope=? AND used_at IS NULL AND expires_at>?`,
  sesPut: `INSERT INTO sessions (id,data,expires_at) VALUES (?,?,?)
           ON CONFLICT(id) DO UPDATE SET data=excluded.data, expires_at=excluded.expires_at`,
  auditInsert: `INSERT INTO audit (at,actor,action,target,result,details) VALUES (?,?,?,?,?,?)`,
  // Not a statement: nonceConsume then auditInsert (see RUN_WRITE_OP); the entry keeps the op table total.
  nonceConsumeAudit: '',
};

/**
 * Wire form of a batch: ONE flat array [id, code, ...args, code, ...args, ...] (codes index OP_CODES, each op has
 * its fixed arity). A flat array of primitives is the cheapest thing to structured-clone: the nested
 * [[op, [args]], ...] form cost an object header and a property walk per op on both threads.
 */
export const OP_CODES: WriteOp[0][] = ['nonceInsert', 'nonceConsume', 'sesPut', 'auditInsert', 'nonceConsumeAudit'];
export const OP_ARITY = [3, 4, 3, 6, 10];
const OP_CODE = Object.fromEntries(OP_CODES.map((k, i) => [k, i])) as Record<WriteOp[0], number>;

/**
 * The result of one op: the audit row id for inserts, changes for a consume, and for nonceConsumeAudit the new
 * audit row's id when the nonce was consumed, 0 when it was not (nothing written). `st` holds the prepared
 * statements by op code, `a` the flat batch and `i` where this op's arguments start. No savepoint around
 * nonceConsumeAudit (one cost ~20 µs per op here): the insert runs only after the consume succeeded, so there is
 * never a record without its consume; if the insert fails the op fails and the nonce stays consumed, exactly as a
 * consume followed by a failed append.
 */
export const RUN_WRITE_OP = `(st, code, a, i) => {
  switch (code) {
    case 0: st[0].run(a[i], a[i + 1], a[i + 2]); return null;
    case 1: return st[1].run(a[i], a[i + 1], a[i + 2], a[i + 3]).changes;
    case 2: st[2].run(a[i], a[i + 1], a[i + 2]); return null;
    case 3: return Number(st[3].run(a[i], a[i + 1], a[i + 2], a[i + 3], a[i + 4], a[i + 5]).lastInsertRowid);
    case 4:
      if (st[1].run(a[i], a[i + 1], a[i + 2], a[i + 3]).changes !== 1) return 0;
      return Number(st[3].run(a[i + 4], a[i + 5], a[i + 6], a[i + 7], a[i + 8], a[i + 9]).lastInsertRowid);
  }
  throw new Error('unknown write op ' + code);
}`;

/**
 * The worker's reply is one flat array too: [id, 0, ...results] after a commit (a result is a number or null; an
 * op that failed alone, rolled back by its own statement, is its error message, a string), or [id, 1, message]
 * when the transaction itself failed and nothing was committed.
 */
const WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 5000');
db.pragma('synchronous = ' + workerData.synchronous);
db.pragma('foreign_keys = ON');
const st = workerData.codes.map((k) => (workerData.sql[k] ? db.prepare(workerData.sql[k]) : null));
const arity = workerData.arity;
const runOp = (${RUN_WRITE_OP});
// Built once: db.transaction() defines the wrapper's properties on every call.
const commit = db.transaction((a, out) => {
  for (let i = 1; i < a.length; ) {
    const code = a[i];
    // A batch this thread cannot parse commits nothing (the throw rolls the whole transaction back).
    if (arity[code] === undefined) throw new Error('malformed write batch');
    try {
      // Each statement is applied or rolled back whole (see RUN_WRITE_OP): no savepoint needed per op.
      out.push(runOp(st, code, a, i + 1));
    } catch (e) {
      out.push(String((e && e.message) || e));
    }
    i += 1 + arity[code];
  }
});
parentPort.on('message', (a) => {
  if (a === 'stop') { db.close(); parentPort.close(); return; }
  const out = [a[0], 0];
  try {
    commit.immediate(a, out);
    parentPort.postMessage(out);
  } catch (e) {
    parentPort.postMessage([a[0], 1, String((e && e.message) || e)]);
  }
});
parentPort.postMessage({ ready: true });
`;

/** Event-loop iterations a batch may wait for more writes (each only while the previous one added some). */
const MAX_ROUNDS = 4;

interface Pending {
  op: WriteOp;
  resolve(v: number | null): void;
  reject(e: unknown): void;
}

export class WriterWorker {
  private readonly worker: Worker;
  private queue: Pending[] = [];
  private inflight?: { id: number; batch: Pending[] };
  private nextId = 1;
  private dead?: Error;
  private scheduled = false;
  /** Transactions sent and writes in them (benchmarks report writes per commit). */
  readonly stats = { commits: 0, writes: 0 };
  private drained: (() => void)[] = [];

  constructor(path: string, synchronous: string) {
    const module = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER, { eval: true, workerData: { path, module, synchronous, sql: WRITE_SQL, codes: OP_CODES, arity: OP_ARITY } });
    this.worker.on('message', (m: unknown) => {
      if (Array.isArray(m)) this.onReply(m);
    });
    const die = (e: Error) => {
      this.dead ??= e;
      const pending = [...(this.inflight?.batch ?? []), ...this.queue];
      this.inflight = undefined;
      this.queue = [];
      for (const p of pending) p.reject(new StoreError('STORE_WRITE_FAILED', `the store writer thread stopped: ${e.message}`));
      this.settleDrain();
    };
    this.worker.on('error', die);
    this.worker.once('exit', (c) => die(new Error(`exit ${c}`)));
    this.worker.unref();
  }

  write(op: WriteOp): Promise<number | null> {
    if (this.dead) return Promise.reject(new StoreError('STORE_WRITE_FAILED', `the store writer thread stopped: ${this.dead.message}`));
    return new Promise((resolve, reject) => {
      this.queue.push({ op, resolve, reject });
      // Writes of the same event-loop turn share a batch; while one commits, the next batch accumulates.
      if (!this.inflight && !this.scheduled) {
        this.scheduled = true;
        this.sendSoon();
      }
    });
  }

  /**
   * Sends the batch once the event loop has run one more poll phase without adding to it (at most MAX_ROUNDS):
   * requests whose bytes arrive while this turn's are being processed (a burst of clients answered by the previous
   * commit) reach their own write one iteration later, and then share this transaction, its fsync and its
   * round trip to the writer thread. Idle, this costs one loop iteration (an epoll poll that does not block).
   */
  private sendSoon(): void {
    let seen = -1;
    let rounds = 0;
    const tick = () => {
      if (this.queue.length !== seen && rounds++ < MAX_ROUNDS) {
        seen = this.queue.length;
        setImmediate(tick);
        return;
      }
      this.send();
    };
    setImmediate(tick);
  }

  private send(): void {
    this.scheduled = false;
    if (this.inflight || this.queue.length === 0 || this.dead) return this.settleDrain();
    const batch = this.queue;
    this.queue = [];
    const id = this.nextId++;
    this.inflight = { id, batch };
    this.worker.ref(); // a commit in flight keeps the process alive
    const wire: unknown[] = [id];
    for (const { op } of batch) {
      wire.push(OP_CODE[op[0]]);
      for (const v of op[1]) wire.push(v);
    }
    this.worker.postMessage(wire);
    this.stats.commits++;
    this.stats.writes += batch.length;
  }

  private onReply(m: unknown[]): void {
    if (!this.inflight || m[0] !== this.inflight.id) return;
    const { batch } = this.inflight;
    this.inflight = undefined;
    this.worker.unref();
    if (m[1] !== 0 || m.length !== batch.length + 2) {
      const why = m[1] !== 0 ? String(m[2]) : 'the writer answered for another number of writes';
      for (const b of batch) b.reject(new StoreError('STORE_WRITE_FAILED', `commit failed: ${why}`));
    } else {
      for (let i = 0; i < batch.length; i++) {
        const v = m[i + 2];
        if (typeof v === 'string') batch[i].reject(new StoreError('STORE_WRITE_FAILED', v));
        else batch[i].resolve(v as number | null);
      }
    }
    // The next batch gets the same grace as one started on an idle writer: the clients just answered send their
    // next requests, and those reached in the following iterations share this commit instead of waiting for one
    // of their own (fewer commits, i.e. fewer fsyncs and thread round trips, per write).
    if (this.queue.length) {
      if (!this.scheduled) {
        this.scheduled = true;
        this.sendSoon();
      }
    } else this.settleDrain();
  }

  private settleDrain(): void {
    if (this.inflight || this.queue.length) return;
    const d = this.drained;
    this.drained = [];
    for (const f of d) f();
  }

  /** Commits what is queued, then stops the thread. */
  async close(): Promise<void> {
    if (!this.dead && (this.inflight || this.queue.length)) {
      await new Promise<void>((r) => {
        this.drained.push(r);
        if (!this.inflight && !this.scheduled) this.send();
      });
    }
    if (this.dead) return;
    const exited = new Promise<void>((r) => this.worker.once('exit', () => r()));
    this.worker.postMessage('stop');
    const t = setTimeout(() => void this.worker.terminate(), 2000);
    await exited;
    clearTimeout(t);
  }
}
