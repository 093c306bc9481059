/**
 * The agent's node attestation loop (Keylime's push model): at start and every interval, challenge → evidence
 * bound to (nonce, node name) → /v1/attest → EAR token → POST to the node-trust controller. The node name goes in
 * the runtime data, which the service's binding rule hashes with the nonce into the report data, so the token's
 * runtime_data_claims.node is vouched for by the hardware. Failures back off exponentially with full jitter
 * (capped at the interval) and never end the loop: a DaemonSet pod must not crash-loop because a service is down.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../tee/common/jcs.js';
import type { EvidenceSource } from './evidence.js';

export class NodeAttestError extends Error {
  constructor(
    readonly code: 'CHALLENGE_FAILED' | 'ATTEST_FAILED' | 'DELIVERY_FAILED' | 'EVIDENCE_FAILED',
    message: string,
    readonly status = 0,
    /** The RFC 7807 `type` of the service's refusal, when it sent one. */
    readonly problem?: string,
  ) {
    super(message);
    this.name = 'NodeAttestError';
  }
}

export interface NodeAttesterOptions {
  nodeName: string;
  attestationUrl: string;
  controllerUrl: string;
  source: EvidenceSource;
  audience?: string;
  policyId?: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
  /** Clock for the held nonce's expiry (default Date.now). */
  clock?: () => number;
}

export interface AttestResult {
  tokenId?: string;
  status: string;
  expiresAt?: string;
}

/** B = N || JCS({"runtime-data": r}): the service's binding value (its API contract, docs in the README). */
export function reportDataFor(nonce: Uint8Array, runtimeData: unknown, bytes: 32 | 64): Uint8Array {
  const b = Buffer.concat([nonce, Buffer.from(canonicalJson({ 'runtime-data': runtimeData }), 'utf8')]);
  return new Uint8Array(createHash(bytes === 32 ? 'sha256' : 'sha512').update(b).digest());
}

export class NodeAttester {
  private readonly f: typeof fetch;
  constructor(private readonly o: NodeAttesterOptions) {
    this.f = o.fetch ?? fetch;
  }

  private async post(code: NodeAttestError['code'], url: string, body: unknown): Promise<any> {
    let res: Response;
    try {
      res = await this.f(url, { method: 'POST', headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(this.o.timeoutMs ?? 30_000) });
    } catch (e) {
      throw new NodeAttestError(code, `${url}: ${(e as Error).message}`);
    }
    const text = await res.text();
    let j: any;
    try {
      j = JSON.parse(text);
    } catch {
      j = undefined;
    }
    if (!res.ok) throw new NodeAttestError(code, `${url}: HTTP ${res.status} ${j?.code ?? j?.type ?? ''} ${j?.detail ?? text.slice(0, 200)}`.trim(), res.status, typeof j?.type === 'string' ? j.type : undefined);
    return j;
  }

  /**
   * The challenge the service handed out with the last answer (`nextNonce`): single-use, so it is dropped as soon
   * as it is taken, and only taken while it outlives one request timeout.
   */
  private next?: { nonce: string; expiresAt: number };
  /** The service refused `nextChallenge` (it predates the extension). */
  private legacyService = false;

  private async challenge(base: string): Promise<string> {
    const ch = await this.post('CHALLENGE_FAILED', `${base}/v1/challenge`, undefined);
    if (typeof ch?.nonce !== 'string') throw new NodeAttestError('CHALLENGE_FAILED', 'the challenge answer has no nonce');
    return ch.nonce;
  }

  /**
   * One round: returns what the controller answered. Steady state is one request to the service: the nonce comes
   * from the previous answer; without one (first round, after a failure) or when the service refuses it (expired,
   * unknown after a store change), a fresh /v1/challenge is taken and the round is repeated once.
   */
  async attestOnce(): Promise<AttestResult> {
    const base = this.o.attestationUrl.replace(/\/$/, '');
    const now = (this.o.clock ?? Date.now)();
    const held = this.next && this.next.expiresAt - now > (this.o.timeoutMs ?? 30_000) ? this.next.nonce : undefined;
    this.next = undefined;
    try {
      return await this.round(base, held ?? (await this.challenge(base)));
    } catch (e) {
      const nonceRefused = e instanceof NodeAttestError && e.code === 'ATTEST_FAILED' && /\/nonce-(expired|unknown|replayed)$/.test(e.problem ?? '');
      if (!held || !nonceRefused) throw e;
      return this.round(base, await this.challenge(base));
    }
  }

  private async round(base: string, nonce: string): Promise<AttestResult> {
    const runtimeData = { node: this.o.nodeName };
    const rd = reportDataFor(new Uint8Array(Buffer.from(nonce, 'base64')), runtimeData, this.o.source.reportDataBytes);
    let ev;
    try {
      ev = await this.o.source.collect(rd);
    } catch (e) {
      throw new NodeAttestError('EVIDENCE_FAILED', (e as Error).message);
    }
    const body = {
      tee: ev.tee, evidence: ev.evidence, ...(ev.attachments ? { attachments: ev.attachments } : {}), nonce, runtimeData,
      audience: this.o.audience ?? 'coffer-node-trust', ...(this.o.policyId ? { policyId: this.o.policyId } : {}),
    };
    let att;
    try {
      att = await this.post('ATTEST_FAILED', `${base}/v1/attest`, this.legacyService ? body : { ...body, nextChallenge: true });
    } catch (e) {
      // A service from before the extension refuses the unknown field by schema, before it consumes the nonce:
      // the same request without it still counts, and this agent stops asking (two requests per round, as before).
      const older = !this.legacyService && e instanceof NodeAttestError && e.status === 400 && /\/invalid-request$/.test(e.problem ?? '') && /additional properties/.test(e.message);
      if (!older) throw e;
      this.legacyService = true;
      att = await this.post('ATTEST_FAILED', `${base}/v1/attest`, body);
    }
    if (typeof att?.token !== 'string') throw new NodeAttestError('ATTEST_FAILED', 'the attestation answer has no token');
    const exp = typeof att.nextNonceExpiresAt === 'string' ? Date.parse(att.nextNonceExpiresAt) : NaN;
    if (typeof att.nextNonce === 'string' && Number.isFinite(exp)) this.next = { nonce: att.nextNonce, expiresAt: exp };
    const d = await this.post('DELIVERY_FAILED', `${this.o.controllerUrl.replace(/\/$/, '')}/v1/node-trust/reports`, { token: att.token, ...(ev.eventLog ? { eventLog: Buffer.from(ev.eventLog).toString('base64') } : {}) });
    return { status: att.status, tokenId: d?.tokenId, expiresAt: d?.expiresAt };
  }
}

export interface LoopOptions {
  intervalMs: number;
  /** First retry delay after a failure (doubles up to the interval). */
  baseBackoffMs?: number;
  random?: () => number;
  onResult?: (r: AttestResult) => void;
  onError?: (e: Error, retryInMs: number, attempt: number) => void;
}

/** Full-jitter exponential backoff (AWS architecture blog's "full jitter"): uniform in [0, min(cap, base·2^n)). */
export function backoffDelay(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30)));
}

/** Runs attestOnce at start and every interval until stopped; never throws. */
export function runAttestLoop(attester: Pick<NodeAttester, 'attestOnce'>, o: LoopOptions): { stop(): void; done: Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  const sleep = (ms: number) => new Promise<void>((r) => {
    wake = r;
    timer = setTimeout(r, ms);
  });
  const done = (async () => {
    let failures = 0;
    while (!stopped) {
      let next = o.intervalMs;
      try {
        o.onResult?.(await attester.attestOnce());
        failures = 0;
      } catch (e) {
        // At least 100 ms apart, at most one interval: a down service costs little and recovery is prompt.
        next = Math.max(100, backoffDelay(failures, o.baseBackoffMs ?? 1000, o.intervalMs, o.random));
        failures++;
        o.onError?.(e as Error, next, failures);
      }
      if (!stopped) await sleep(next);
    }
  })();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      wake?.();
    },
    done,
  };
}
