/** Small HTTP response helpers shared by the hub's online and offline paths. */
import type http from 'node:http';
import type { K8sStatus } from '../k8s/status.js';

/** Connection-level headers a proxy must not forward (RFC 9110 §7.6.1), plus Host which it rewrites. */
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);

export function sendStatus(res: http.ServerResponse, s: K8sStatus): void {
  sendBody(res, s.code, JSON.stringify(s), 'application/json');
}
/** Streams a body given in pieces, waiting for drain so memory stays at one piece in flight. */
export function sendParts(res: http.ServerResponse, parts: Iterable<string | Buffer>, contentType: string): void {
  if (Array.isArray(parts) && parts.length === 1) return sendBody(res, 200, String(parts[0]), contentType);
  res.writeHead(200, { 'Content-Type': contentType, 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
  const it = parts[Symbol.iterator]();
  const pump = () => {
    for (;;) {
      if (res.destroyed) return;
      const next = it.next();
      if (next.done) {
        res.end();
        return;
      }
      if (!res.write(next.value)) {
        res.once('drain', pump);
        return;
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

