/** Small HTTP response helpers shared by the hub's online and offline paths. */
import type http from 'node:http';
import type { K8sStatus } from '../k8s/status.js';
import type { BodyPart, FileRange } from './offline-responses.js';

/** Connection-level headers a proxy must not forward (RFC 9110 §7.6.1), plus Host which it rewrites. */
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);

export function sendStatus(res: http.ServerResponse, s: K8sStatus): void {
  sendBody(res, s.code, JSON.stringify(s), 'application/json');
}
/** 256 KiB read buffers shared by the offline responses of one hub (fresh ones per LIST leave malloc hoarding). */
export class ReadBufferPool {
  private readonly free: Buffer[] = [];
  constructor(private readonly keep = 4) {}
  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(256 * 1024);
  }
  give(b: Buffer): void {
    if (this.free.length < this.keep) this.free.push(b);
  }
}

/**
 * Streams a body given in pieces. File ranges go through two 256 KiB buffers from `buffers`, each handed back when
 * the socket has taken it, so a 17 MiB offline LIST allocates (and leaves for the allocator to hoard) nothing.
 */
export function sendParts(res: http.ServerResponse, parts: Iterable<BodyPart>, contentType: string, buffers = new ReadBufferPool()): void {
  if (Array.isArray(parts) && parts.length === 1 && typeof parts[0] === 'string') return sendBody(res, 200, parts[0], contentType);
  res.writeHead(200, { 'Content-Type': contentType, 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
  const it = parts[Symbol.iterator]();
  // A client gone mid-body: finish the generator so it releases what it holds (pinned cache files).
  res.once('close', () => {
    if (!done) {
      done = true;
      it.return?.();
    }
    for (const b of pool.splice(0)) buffers.give(b);
  });
  const pool: Buffer[] = [];
  let pooled = 0;
  let range: { file: FileRange['file']; off: number; left: number } | undefined;
  let waitingDrain = false;
  let done = false;
  const pump = (): void => {
    for (;;) {
      if (done || res.destroyed) return;
      if (range) {
        if (range.left === 0) {
          range = undefined;
          continue;
        }
        let b = pool.pop();
        if (!b && pooled < 2) {
          b = buffers.take();
          pooled++;
        }
        if (!b) return; // both buffers are with the socket: the write callback resumes
        const n = range.file.readInto(b, range.off, range.left);
        if (n <= 0) {
          res.destroy(new Error('short read from the cache file'));
          return;
        }
        range.off += n;
        range.left -= n;
        const buf = b;
        res.write(buf.subarray(0, n), () => {
          if (done) return buffers.give(buf);
          pool.push(buf);
          pump();
        });
        continue;
      }
      if (waitingDrain) return;
      const next = it.next();
      if (next.done) {
        done = true;
        for (const b of pool.splice(0)) buffers.give(b);
        res.end();
        return;
      }
      const v = next.value;
      if (typeof v === 'string' || Buffer.isBuffer(v)) {
        if (!res.write(v)) {
          waitingDrain = true;
          res.once('drain', () => {
            waitingDrain = false;
            pump();
          });
          return;
        }
      } else {
        range = { file: v.file, off: v.off, left: v.len };
      }
    }
  };
  pump();
}

export function sendBody(res: http.ServerResponse, code: number, body: string, contentType: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(code, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-cache, private' });
  res.end(body);
}

