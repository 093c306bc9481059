/**
 * The node's quote helper for TDX/SNP guest nodes: HTTP/1.1 on a unix socket in a host directory that pods mount,
 * turning 64 bytes of report data into a quote via configfs-tsm (only privileged code can write configfs; pods get
 * the socket instead, as SGX pods get aesmd's).
 *
 *   POST /v1/quote {"reportData": "<128 hex chars or base64 of 64 bytes>", "privlevel"?: 0..3}
 *     200 {"provider":"tdx_guest","generation":1,"quote":"<base64>","auxblob"?:"<base64>"}
 *     400 {"code","message"} bad input; 503 interface missing; 500 provider failure or race
 *   GET /healthz → 200 {"provider":"configfs-tsm"} when the interface exists, else 503
 */
import http from 'node:http';
import { chmod, unlink } from 'node:fs/promises';
import path from 'node:path';
import { jsonDepth, MAX_NESTING_DEPTH } from '../../tee/common/nesting.js';
import { TsmError, type TsmReportClient } from './tsm-report.js';

export const QUOTE_SOCKET = 'coffer-quote.sock';
const MAX_BODY = 4096;
const MAX_INFLIGHT = 8;

export interface QuoteServerOptions {
  socketDir: string;
  socketName?: string;
  client: TsmReportClient;
  log?: (event: string, detail?: Record<string, unknown>) => void;
  /** Whole-request deadline (default 30 s) and how often it is checked (default 1 s); tests use less. */
  requestTimeoutMs?: number;
  timeoutCheckIntervalMs?: number;
}

function decodeReportData(v: unknown): Buffer {
  if (typeof v !== 'string') throw new TsmError('BAD_REPORT_DATA', 'reportData must be a string (128 hex characters or base64 of 64 bytes)');
  if (/^[0-9a-fA-F]{128}$/.test(v)) return Buffer.from(v, 'hex');
  if (/^[A-Za-z0-9+/]{86}={0,2}$/.test(v)) {
    const b = Buffer.from(v, 'base64');
    if (b.length === 64) return b;
  }
  throw new TsmError('BAD_REPORT_DATA', 'reportData must be 64 bytes as 128 hex characters or base64');
}

export class QuoteServer {
  private server?: http.Server;
  private inflight = 0;

  constructor(private readonly opts: QuoteServerOptions) {}

  get socketPath(): string {
    return path.join(this.opts.socketDir, this.opts.socketName ?? QUOTE_SOCKET);
  }

  async start(): Promise<void> {
    await unlink(this.socketPath).catch(() => undefined);
    // Slow or stalled request bodies are cut: headers within 10 s, the whole request within 30 s (checked every second).
    const requestTimeout = this.opts.requestTimeoutMs ?? 30_000;
    const server = http.createServer({ connectionsCheckingInterval: this.opts.timeoutCheckIntervalMs ?? 1_000, headersTimeout: Math.min(10_000, requestTimeout), requestTimeout }, (req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => resolve());
    });
    // Pods run as any uid; reaching the socket is gated by mounting the host directory (as with aesmd's socket).
    await chmod(this.socketPath, 0o666);
    this.server = server;
    this.opts.log?.('serving', { socket: this.socketPath });
  }

  private send(res: http.ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      if (req.method === 'GET' && req.url === '/healthz') {
        const ok = await this.opts.client.available();
        return this.send(res, ok ? 200 : 503, ok ? { provider: 'configfs-tsm' } : { code: 'TSM_UNAVAILABLE', message: `${this.opts.client.reportDir} is missing` });
      }
      if (req.url !== '/v1/quote') return this.send(res, 404, { code: 'NOT_FOUND', message: `no route ${req.method} ${req.url}` });
      if (req.method !== 'POST') return this.send(res, 405, { code: 'METHOD_NOT_ALLOWED', message: 'use POST /v1/quote' });
      const chunks: Buffer[] = [];
      let n = 0;
      for await (const c of req) {
        n += (c as Buffer).length;
        if (n > MAX_BODY) return this.send(res, 413, { code: 'TOO_LARGE', message: `request body over ${MAX_BODY} bytes` });
        chunks.push(c as Buffer);
      }
      let body: { reportData?: unknown; privlevel?: unknown };
      const text = Buffer.concat(chunks).toString('utf8');
      if (jsonDepth(text, MAX_NESTING_DEPTH) > MAX_NESTING_DEPTH) return this.send(res, 400, { code: 'BAD_JSON', message: `request body is nested more than ${MAX_NESTING_DEPTH} levels deep` });
      try {
        body = JSON.parse(text);
      } catch {
        return this.send(res, 400, { code: 'BAD_JSON', message: 'request body is not JSON' });
      }
      if (typeof body !== 'object' || body === null) return this.send(res, 400, { code: 'BAD_JSON', message: 'request body must be a JSON object' });
      if (body.privlevel !== undefined && typeof body.privlevel !== 'number') return this.send(res, 400, { code: 'BAD_PRIVLEVEL', message: 'privlevel must be a number' });
      const reportData = decodeReportData(body.reportData);
      if (this.inflight >= MAX_INFLIGHT) return this.send(res, 429, { code: 'BUSY', message: `more than ${MAX_INFLIGHT} quotes in flight` });
      this.inflight++;
      try {
        const r = await this.opts.client.report(reportData, body.privlevel as number | undefined);
        this.opts.log?.('quote', { provider: r.provider, bytes: r.outblob.length });
        return this.send(res, 200, { provider: r.provider, generation: r.generation, quote: r.outblob.toString('base64'), ...(r.auxblob ? { auxblob: r.auxblob.toString('base64') } : {}) });
      } finally {
        this.inflight--;
      }
    } catch (e) {
      if (e instanceof TsmError) {
        const status = e.code === 'BAD_REPORT_DATA' || e.code === 'BAD_PRIVLEVEL' ? 400 : e.code === 'TSM_UNAVAILABLE' ? 503 : 500;
        this.opts.log?.('quote-failed', { code: e.code, error: e.message });
        return this.send(res, status, { code: e.code, message: e.message });
      }
      this.send(res, 500, { code: 'INTERNAL', message: (e as Error).message });
    }
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
    await unlink(this.socketPath).catch(() => undefined);
  }
}
