import { verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { AsyncSignatureVerifier } from '../../tee/common/verifier.js';

/**
 * Signature verifies of a `coffer verify` batch on one small worker thread, in batches. The worker loads nothing but
 * node:crypto (no verifier modules, no JIT warm-up to speak of: its loop is crypto.verify), so it is ready in a few
 * ms; the main thread hands it (key, data, signature) triples many at a time in one message and gets one byte per
 * triple back. Per signature that costs the main thread a copy of a few hundred bytes, where node:crypto.verify's
 * callback form (one libuv job, one promise per call) cost ~18 µs of main-thread CPU. The main thread meanwhile
 * parses, checks and prints the other quotes in flight.
 *
 * The answers are the very crypto.verify results: the worker runs it on the same key (a KeyObject clone: same key
 * material), data and signature bytes. Anything unexpected (crypto.verify throwing on an item, the worker dying or
 * failing to start) falls back to crypto.verify on the calling thread for the items concerned, so the output is
 * the synchronous path's whatever happens; nothing is ever answered `true` without a verify.
 */

/** Triples per message: enough to amortize a message (~20-40 µs), few enough to keep both threads busy. */
export const SIGNER_BATCH = 16;
/** Quotes the calling thread keeps in flight with a signer: a few batches, so the worker always has the next one. */
export const SIGNER_IN_FLIGHT = 32;

const WORKER_CODE = `
const { parentPort } = require('node:worker_threads');
const { verify } = require('node:crypto');
const keys = [];
parentPort.on('message', (m) => {
  for (const k of m.newKeys) keys.push(k);
  const n = m.keyIds.length;
  const out = new Uint8Array(n);
  const bytes = new Uint8Array(m.buf);
  for (let i = 0; i < n; i++) {
    const o = 2 * i;
    try {
      out[i] = verify(m.algs[i], bytes.subarray(m.offs[o], m.offs[o + 1]), { key: keys[m.keyIds[i]], dsaEncoding: 'ieee-p1363' },
        bytes.subarray(m.offs[o + 1], m.offs[o + 2])) === true ? 1 : 0;
    } catch {
      out[i] = 2; // the calling thread verifies this one itself (and gets crypto.verify's own error)
    }
  }
  parentPort.postMessage(out, [out.buffer]);
});`;

interface Item {
  alg: string;
  data: Uint8Array;
  key: { key: KeyObject; dsaEncoding: 'ieee-p1363' };
  signature: Uint8Array;
  resolve(ok: boolean): void;
  reject(e: unknown): void;
}

interface ToSigner {
  newKeys: KeyObject[];
  keyIds: Int32Array;
  algs: string[];
  /** data_i = buf[offs[2i], offs[2i+1]), signature_i = buf[offs[2i+1], offs[2i+2]). */
  offs: Int32Array;
  buf: ArrayBuffer;
}

/** crypto.verify on this thread, as a settled promise's outcome. */
function verifyHere(it: Item, counts: { here: number }): void {
  counts.here++;
  try {
    it.resolve(cryptoVerify(it.alg, it.data, it.key, it.signature));
  } catch (e) {
    it.reject(e);
  }
}

export class SignatureWorker {
  private worker: Worker | undefined;
  private readonly keyIds = new WeakMap<KeyObject, number>();
  private nextKeyId = 0;
  private queue: Item[] = [];
  /** Batches sent, oldest first: the worker answers them in order. */
  private readonly sent: Item[][] = [];
  private flushScheduled = false;
  /** Signatures answered by the worker and verified on the calling thread (fallbacks): for tests and the bench. */
  readonly counts = { byWorker: 0, here: 0 };
  private closed = false;

  constructor() {
    try {
      this.worker = new Worker(WORKER_CODE, { eval: true, resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 0.5, codeRangeSizeMb: 2, stackSizeMb: 0.5 } });
    } catch {
      this.worker = undefined; // every verify runs here
      return;
    }
    this.worker.on('message', (out: Uint8Array) => this.answer(out));
    this.worker.on('error', () => this.fallBack());
    this.worker.on('exit', () => this.fallBack());
    // Referenced only while it owes answers: an idle signer never keeps the process alive.
    this.worker.unref();
  }

  /** An AsyncSignatureVerifier: the same arguments and answer as node:crypto.verify, computed on the worker. */
  readonly verify: AsyncSignatureVerifier = (alg, data, key, signature) =>
    new Promise<boolean>((resolve, reject) => {
      const it: Item = { alg, data, key, signature, resolve, reject };
      if (!this.worker) return verifyHere(it, this.counts);
      this.queue.push(it);
      if (this.queue.length >= SIGNER_BATCH) this.flush();
      else if (!this.flushScheduled) {
        // The rest goes when this thread next waits (setImmediate runs once the current work and its microtasks are done).
        this.flushScheduled = true;
        setImmediate(() => {
          this.flushScheduled = false;
          this.flush();
        });
      }
    });

  /** Stops the worker; anything still queued or unanswered is verified here. */
  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.fallBack();
    if (w) await w.terminate();
  }

  private flush(): void {
    const items = this.queue;
    if (items.length === 0 || !this.worker) return;
    this.queue = [];
    const newKeys: KeyObject[] = [];
    const keyIds = new Int32Array(items.length);
    const algs: string[] = new Array(items.length);
    const offs = new Int32Array(2 * items.length + 1);
    let total = 0;
    for (const it of items) total += it.data.byteLength + it.signature.byteLength;
    const buf = new Uint8Array(total);
    let at = 0;
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      let id = this.keyIds.get(it.key.key);
      if (id === undefined) {
        id = this.nextKeyId++;
        this.keyIds.set(it.key.key, id);
        newKeys.push(it.key.key);
      }
      keyIds[i] = id;
      algs[i] = it.alg;
      offs[2 * i] = at;
      buf.set(it.data, at);
      at += it.data.byteLength;
      offs[2 * i + 1] = at;
      buf.set(it.signature, at);
      at += it.signature.byteLength;
    }
    offs[2 * items.length] = at;
    this.sent.push(items);
    if (this.sent.length === 1) this.worker.ref();
    try {
      this.worker.postMessage({ newKeys, keyIds, algs, offs, buf: buf.buffer } satisfies ToSigner, [buf.buffer]);
    } catch {
      this.fallBack();
    }
  }

  private answer(out: Uint8Array): void {
    const items = this.sent.shift();
    if (!items || !(out instanceof Uint8Array) || out.length !== items.length) {
      if (items) this.sent.unshift(items);
      this.fallBack();
      return;
    }
    if (this.sent.length === 0) this.worker?.unref();
    for (let i = 0; i < items.length; i++) {
      if (out[i] === 2) verifyHere(items[i]!, this.counts);
      else {
        this.counts.byWorker++;
        items[i]!.resolve(out[i] === 1);
      }
    }
  }

  /** The worker is gone (or answered nonsense): verify everything it still owed here, and from now on. */
  private fallBack(): void {
    const w = this.worker;
    this.worker = undefined;
    if (w && !this.closed) void w.terminate();
    for (const items of this.sent.splice(0)) for (const it of items) verifyHere(it, this.counts);
    const q = this.queue;
    this.queue = [];
    for (const it of q) verifyHere(it, this.counts);
  }
}
