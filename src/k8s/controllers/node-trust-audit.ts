/**
 * Delivery of node-trust transitions to the attestation service's audit log (POST /v1/node-trust/audit).
 *
 * A transition's Node Event is written first and carries the record (annotation `coffer.dev/transition`): the
 * Event, durable in the API server, is the outbox. Delivery never holds up the Node patch (a service that is down
 * must not keep an expired node trusted); it runs from an in-memory queue with backoff, and a restarted
 * controller re-queues the records of its Events (fieldSelector source=coffer-node-trust), so a SIGKILL between the
 * Event and the delivery loses nothing. The service keeps one row per transition id: replays add nothing.
 * Bounded: at most `maxPending` records wait (the oldest are dropped, and counted, beyond that), 100 per request.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { SignJWT } from 'jose';
import type { TransitionRecord } from './node-trust-reconcile.js';

export const NODE_TRUST_AUDIT_PATH = '/v1/node-trust/audit';
const ISSUER = 'coffer-node-trust';
const AUDIENCE = 'coffer-node-trust-audit';
/** The Event annotation holding the transition's audit record (JSON). */
export const TRANSITION_ANNOTATION = 'coffer.dev/transition';
const BATCH = 100;

export type AuditRecordOut = TransitionRecord & { at: string };

export class NodeTrustAuditError extends Error {
  constructor(
    readonly code: 'AUDIT_KEY_INVALID' | 'AUDIT_HTTP' | 'AUDIT_REJECTED' | 'AUDIT_UNAUTHENTICATED' | 'AUDIT_NETWORK',
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'NodeTrustAuditError';
  }
}

export interface AuditSinkOptions {
  /** Base URL of the attestation service. */
  url: string;
  ca?: Buffer;
  /** PEM private key (Ed25519 or P-256) whose public half the service trusts (--node-trust-audit-key). */
  keyPem: string | Buffer;
  /** Who signs (the token's `sub`; the audit actor is node-trust-controller:<identity>). */
  identity: string;
  log: (event: string, fields: Record<string, unknown>) => void;
  maxPending?: number;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  timeoutMs?: number;
}

export function loadAuditKey(pem: string | Buffer): { key: KeyObject; alg: 'EdDSA' | 'ES256' } {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (e) {
    throw new NodeTrustAuditError('AUDIT_KEY_INVALID', `the node-trust audit key is not a PEM private key: ${(e as Error).message}`);
  }
  if (key.asymmetricKeyType === 'ed25519') return { key, alg: 'EdDSA' };
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return { key, alg: 'ES256' };
  throw new NodeTrustAuditError('AUDIT_KEY_INVALID', `the node-trust audit key is a ${key.asymmetricKeyType} key: Ed25519 or P-256 only`);
}

/** Queue + delivery loop. `add` never blocks and never throws. */
export class NodeTrustAuditSink {
  private readonly pending = new Map<string, AuditRecordOut>();
  private readonly key: ReturnType<typeof loadAuditKey>;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private backoffMs: number;
  private stopped = false;
  private idle: (() => void)[] = [];
  readonly stats = { delivered: 0, replays: 0, dropped: 0, rejected: 0, failures: 0 };

  constructor(private readonly o: AuditSinkOptions) {
    this.key = loadAuditKey(o.keyPem);
    this.backoffMs = o.baseBackoffMs ?? 500;
  }

  /** Queues a record (keyed by node + transition id: the same transition queued twice is sent once). */
  add(r: AuditRecordOut): void {
    if (this.stopped) return;
    const k = `${r.node}:${r.id}`;
    if (this.pending.has(k)) return;
    const max = this.o.maxPending ?? 10_000;
    while (this.pending.size >= max) {
      const oldest = this.pending.keys().next().value as string;
      this.pending.delete(oldest);
      this.stats.dropped++;
      this.o.log('node_trust_audit_dropped', { key: oldest, why: `more than ${max} records waiting; its Event remains` });
    }
    this.pending.set(k, r);
    this.kick(0);
  }

  size(): number {
    return this.pending.size;
  }

  /** Resolves when nothing is waiting (tests). */
  drained(): Promise<void> {
    if (this.pending.size === 0 && !this.running) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const r of this.idle.splice(0)) r();
  }

  private kick(afterMs: number): void {
    if (this.stopped || this.running || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.deliver().finally(() => {
        this.running = undefined;
        if (this.pending.size) this.kick(this.backoffMs);
        else for (const r of this.idle.splice(0)) r();
      });
    }, afterMs);
    this.timer.unref();
  }

  private async deliver(): Promise<void> {
    while (!this.stopped && this.pending.size) {
      const batch = [...this.pending.entries()].slice(0, BATCH);
      try {
        const res = await this.post(batch.map(([, r]) => r));
        for (const [k] of batch) this.pending.delete(k);
        for (const x of res) x.created ? this.stats.delivered++ : this.stats.replays++;
        this.backoffMs = this.o.baseBackoffMs ?? 500;
      } catch (e) {
        const err = e as NodeTrustAuditError;
        if (err.code === 'AUDIT_REJECTED' && batch.length === 1) {
          // The service refuses this record as malformed (a controller bug): retrying cannot help; its Event stays.
          this.pending.delete(batch[0][0]);
          this.stats.rejected++;
          this.o.log('node_trust_audit_rejected', { key: batch[0][0], error: err.message });
          continue;
        }
        if (err.code === 'AUDIT_REJECTED') {
          // Find the bad record: send this batch one by one.
          for (const [k, r] of batch) {
            try {
              const [x] = await this.post([r]);
              this.pending.delete(k);
              x.created ? this.stats.delivered++ : this.stats.replays++;
            } catch (e2) {
              if ((e2 as NodeTrustAuditError).code !== 'AUDIT_REJECTED') throw e2;
              this.pending.delete(k);
              this.stats.rejected++;
              this.o.log('node_trust_audit_rejected', { key: k, error: (e2 as Error).message });
            }
          }
          continue;
        }
        this.stats.failures++;
        this.o.log('node_trust_audit_retry', { pending: this.pending.size, code: err.code ?? 'ERROR', error: String(err.message).slice(0, 300), retryInMs: this.backoffMs });
        this.backoffMs = Math.min(this.backoffMs * 2, this.o.maxBackoffMs ?? 5000);
        return;
      }
    }
  }

  private async token(): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({}).setProtectedHeader({ alg: this.key.alg }).setIssuer(ISSUER).setAudience(AUDIENCE).setSubject(this.o.identity).setIssuedAt(now).setExpirationTime(now + 60).sign(this.key.key);
  }

  private async post(records: AuditRecordOut[]): Promise<{ created: boolean }[]> {
    const body = JSON.stringify({ records: records.map(wire) });
    const auth = `Bearer ${await this.token()}`;
    const u = new URL(NODE_TRUST_AUDIT_PATH, this.o.url);
    const mod = u.protocol === 'https:' ? https : http;
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = mod.request(u, { method: 'POST', timeout: this.o.timeoutMs ?? 10_000, headers: { authorization: auth, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, ...(this.o.ca ? { ca: this.o.ca } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > 1024 * 1024) req.destroy(new Error('audit answer larger than 1 MiB'));
          else chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('audit delivery timed out')));
      req.on('error', (e) => reject(new NodeTrustAuditError('AUDIT_NETWORK', e.message)));
      req.end(body);
    });
    const detail = () => {
      try {
        return String(JSON.parse(text).detail ?? '').slice(0, 300);
      } catch {
        return text.slice(0, 300);
      }
    };
    if (status === 200) {
      const doc = JSON.parse(text) as { results?: { created: boolean }[] };
      if (!Array.isArray(doc.results) || doc.results.length !== records.length) throw new NodeTrustAuditError('AUDIT_HTTP', 'audit answer does not list every record', status);
      return doc.results;
    }
    if (status === 401) throw new NodeTrustAuditError('AUDIT_UNAUTHENTICATED', `the attestation service refused the audit key: ${detail()}`, status);
    if (status === 400) throw new NodeTrustAuditError('AUDIT_REJECTED', detail(), status);
    throw new NodeTrustAuditError('AUDIT_HTTP', `HTTP ${status}: ${detail()}`, status);
  }
}

function wire(r: AuditRecordOut): Record<string, unknown> {
  return { id: r.id, node: r.node, from: r.from, to: r.to, reason: r.reason, message: r.message.slice(0, 1024), at: r.at, ...(r.tokenId ? { tokenId: r.tokenId.slice(0, 256) } : {}), ...(r.effect ? { effect: r.effect } : {}) };
}

/** The record an Event carries (annotation written at creation), or undefined for other Events / bad JSON. */
export function recordFromEvent(ev: Record<string, any>): AuditRecordOut | undefined {
  const raw = ev?.metadata?.annotations?.[TRANSITION_ANNOTATION];
  if (typeof raw !== 'string' || raw.length > 8192) return undefined;
  try {
    const r = JSON.parse(raw);
    if (typeof r?.id !== 'string' || typeof r.node !== 'string' || typeof r.to !== 'string' || typeof r.at !== 'string') return undefined;
    return r as AuditRecordOut;
  } catch {
    return undefined;
  }
}
