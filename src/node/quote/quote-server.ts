/**
 * The node's quote helper: HTTP/1.1 on a unix socket in a host directory that pods mount, turning report data into
 * a quote via configfs-tsm (TDX/SNP guests; only privileged code can write configfs) and/or the node's TPM (pods get
 * the socket instead of the device, as SGX pods get aesmd's).
 *
 *   POST /v1/quote {"reportData": "<128 hex chars or base64 of 64 bytes>", "privlevel"?: 0..3}
 *     200 {"provider":"tdx_guest","generation":1,"quote":"<base64>","auxblob"?:"<base64>"}
 *     400 {"code","message"} bad input; 503 interface missing; 500 provider failure or race
 *   POST /v1/tpm/quote {"reportData": "<hex or base64 of 1..64 bytes>"}  (the quote's qualifyingData)
 *     200 {"tee":"tpm","evidence":"<base64 TPMS_ATTEST>","attachments":{"signature","ak","pcrs","eventlog"?}}
 *         (the /v1/attest request fields: forward them with the challenge nonce)
 *     400 BAD_REPORT_DATA; 503 TPM_UNAVAILABLE (no TPM configured or it does not open); 500 TPM_FAILED
 *   GET /healthz → 200 {"provider": first available, "providers"?: [all, when more than one]}, else 503
 */
import http from 'node:http';
import { chmod, unlink } from 'node:fs/promises';
import path from 'node:path';
import { jsonDepth, MAX_NESTING_DEPTH } from '../../tee/common/nesting.js';
import { TsmError, type TsmReportClient } from './tsm-report.js';
import { TpmQuoteError, TPM_QUALIFYING_DATA_MAX, type TpmQuoter } from './tpm-quote.js';

export const QUOTE_SOCKET = 'coffer-quote.sock';
const MAX_BODY = 4096;
const MAX_INFLIGHT = 8;

export interface QuoteServerOptions {
  socketDir: string;
  socketName?: string;
  /** configfs-tsm provider (POST /v1/quote); absent → that route answers 503 TSM_UNAVAILABLE. */
  client?: TsmReportClient;
  /** TPM provider (POST /v1/tpm/quote); absent → 503 TPM_UNAVAILABLE. */
  tpm?: TpmQuoter;
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

/** 1..64 bytes (TPM2B_DATA holds at most a SHA-512 digest) as hex or base64; hex wins where both read. */
function decodeTpmReportData(v: unknown): Buffer {
  const bad = () => new TpmQuoteError('BAD_REPORT_DATA', `reportData must be 1..${TPM_QUALIFYING_DATA_MAX} bytes as hex or base64`);
  if (typeof v !== 'string') throw bad();
  if (/^(?:[0-9a-fA-F]{2}){1,64}$/.test(v)) return Buffer.from(v, 'hex');
  if (v.length <= 88 && /^[A-Za-z0-9+/]+={0,2}$/.test(v) && v.length % 4 === 0) {
    const b = Buffer.from(v, 'base64');
    if (b.length >= 1 && b.length <= TPM_QUALIFYING_DATA_MAX) return b;
  }
  throw bad();
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

  private async providers(): Promise<string[]> {
    const out: string[] = [];
    if (this.opts.client && (await this.opts.client.available())) out.push('configfs-tsm');
    if (this.opts.tpm && (await this.opts.tpm.available())) out.push('tpm');
    return out;
  }

  /** The body as a JSON object, bounded in size and depth; undefined after an error answer was sent. */
  private async readBody(req: http.IncomingMessage, res: http.ServerResponse): Promise<Record<string, unknown> | undefined> {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of req) {
      n += (c as Buffer).length;
      if (n > MAX_BODY) {
        this.send(res, 413, { code: 'TOO_LARGE', message: `request body over ${MAX_BODY} bytes` });
        return undefined;
      }
      chunks.push(c as Buffer);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    if (jsonDepth(text, MAX_NESTING_DEPTH) > MAX_NESTING_DEPTH) {
      this.send(res, 400, { code: 'BAD_JSON', message: `request body is nested more than ${MAX_NESTING_DEPTH} levels deep` });
      return undefined;
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      this.send(res, 400, { code: 'BAD_JSON', message: 'request body is not JSON' });
      return undefined;
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      this.send(res, 400, { code: 'BAD_JSON', message: 'request body must be a JSON object' });
      return undefined;
    }
    return body as Record<string, unknown>;
  }

  /** Bounded concurrency: more than MAX_INFLIGHT waiting quotes → 429 rather than an unbounded queue. */
  private async limited<T>(res: http.ServerResponse, f: () => Promise<T>): Promise<T | undefined> {
    if (this.inflight >= MAX_INFLIGHT) {
      this.send(res, 429, { code: 'BUSY', message: `more than ${MAX_INFLIGHT} quotes in flight` });
      return undefined;
    }
    this.inflight++;
    try {
      return await f();
    } finally {
      this.inflight--;
    }
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      if (req.method === 'GET' && req.url === '/healthz') {
        const p = await this.providers();
        if (p.length > 0) return this.send(res, 200, { provider: p[0], ...(p.length > 1 ? { providers: p } : {}) });
        return this.send(res, 503, this.opts.client
          ? { code: 'TSM_UNAVAILABLE', message: `${this.opts.client.reportDir} is missing${this.opts.tpm ? ` and ${this.opts.tpm.description} does not open` : ''}` }
          : { code: 'TPM_UNAVAILABLE', message: `${this.opts.tpm?.description ?? 'no TPM'} does not open` });
      }
      if (req.url === '/v1/tpm/quote') {
        if (req.method !== 'POST') return this.send(res, 405, { code: 'METHOD_NOT_ALLOWED', message: 'use POST /v1/tpm/quote' });
        const body = await this.readBody(req, res);
        if (!body) return;
        const reportData = decodeTpmReportData(body.reportData);
        const tpm = this.opts.tpm;
        if (!tpm) return this.send(res, 503, { code: 'TPM_UNAVAILABLE', message: 'this quote helper serves no TPM (start it with --tpm-device)' });
        const r = await this.limited(res, () => tpm.quote(reportData));
        if (!r) return;
        this.opts.log?.('tpm-quote', { bytes: r.evidence.length });
        return this.send(res, 200, r);
      }
      if (req.url !== '/v1/quote') return this.send(res, 404, { code: 'NOT_FOUND', message: `no route ${req.method} ${req.url}` });
      if (req.method !== 'POST') return this.send(res, 405, { code: 'METHOD_NOT_ALLOWED', message: 'use POST /v1/quote' });
      const body = await this.readBody(req, res);
      if (!body) return;
      if (body.privlevel !== undefined && typeof body.privlevel !== 'number') return this.send(res, 400, { code: 'BAD_PRIVLEVEL', message: 'privlevel must be a number' });
      const reportData = decodeReportData(body.reportData);
      const client = this.opts.client;
      if (!client) return this.send(res, 503, { code: 'TSM_UNAVAILABLE', message: 'this quote helper serves no configfs-tsm provider' });
      const r = await this.limited(res, () => client.report(reportData, body.privlevel as number | undefined));
      if (!r) return;
      this.opts.log?.('quote', { provider: r.provider, bytes: r.outblob.length });
      return this.send(res, 200, { provider: r.provider, generation: r.generation, quote: r.outblob.toString('base64'), ...(r.auxblob ? { auxblob: r.auxblob.toString('base64') } : {}) });
    } catch (e) {
      if (e instanceof TsmError || e instanceof TpmQuoteError) {
        const status = e.code === 'BAD_REPORT_DATA' || e.code === 'BAD_PRIVLEVEL' ? 400 : e.code === 'TSM_UNAVAILABLE' || e.code === 'TPM_UNAVAILABLE' ? 503 : 500;
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
