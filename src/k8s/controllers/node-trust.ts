/**
 * The node-trust controller. Node agents POST their latest EAR token (and measured-boot event log) to
 * `POST /v1/node-trust/reports` on this controller; each token is verified against the attestation service's JWKS
 * (node-trust-token.ts) and kept as the node's latest report; Node and NodeTrustPolicy informers feed a work
 * queue keyed by node name; each key is reconciled by the pure reconcileNodeTrust and its plan applied: the
 * transition's Event first (deterministic name, so a replay is a 409 and not a duplicate), the audit record, then
 * the Node merge patch carrying the observed resourceVersion. Token expiry and grace periods are handled by one
 * timer per node (requeue-after), never by sweeping every node.
 *
 * Why the agent pushes to the controller (and not the service recording tokens for the controller to pull): the
 * token is the credential. It is signed by the service, names the node in runtime data that the hardware evidence
 * binds, and is fresh (the service's one-time challenge), so no ServiceAccount TokenReview is needed, the agent
 * needs no RBAC on Nodes, and a captured token can only ever re-assert what it says about its own node until it
 * expires — while the newest token per node wins, so it cannot roll back a newer verdict. The service stays
 * Kubernetes-agnostic (DESIGN: k8s/ talks to the service over its API), and detection latency is one delivery.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import type { JWK } from 'jose';
import { KubeApiError, KubeRest } from '../kube-rest.js';
import { matchesSelector } from '../admission/selector.js';
import { COFFER_GROUP, COFFER_VERSION, type NodeTrustPolicy, type NodeTrustPolicySpec } from '../crds/types.js';
import { makeCachedInformer, startAll, type Obj } from './informers.js';
import { appraiseNode, type AttestedEvents } from './node-trust-appraise.js';
import { AttestedEventsCache, NodeEventLogError } from './node-trust-eventlog.js';
import { reconcileNodeTrust, type TransitionRecord } from './node-trust-reconcile.js';
import { NodeKeyRing, NodeTokenError, tokenKid, verifyNodeToken, type NodeReport } from './node-trust-token.js';
import { withConflictRetry } from './conflict.js';
import type { ControllerContext, ControllerFactory, RunningController } from './types.js';
import { WorkQueue } from './work-queue.js';
import { NodeTrustAuditSink, recordFromEvent, TRANSITION_ANNOTATION } from './node-trust-audit.js';

export const NODE_TRUST_AUDIENCE = 'coffer-node-trust';
export const REPORTS_PATH = '/v1/node-trust/reports';

export interface NodeTrustOptions {
  /** Base URL of the attestation service (JWKS at /.well-known/jwks.json). */
  attestationUrl: string;
  /** Expected `iss` (default: attestationUrl). */
  issuer?: string;
  audience?: string;
  /** PEM CA bundle for the attestation service's TLS. */
  caFile?: string;
  host?: string;
  port?: number;
  /** Serve the report endpoint over TLS with these files (in-cluster: from the controller's CA). */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /** Namespace of the Node Events (kubelet's: default). */
  eventNamespace?: string;
  /** Identity of this controller instance (Event reportingInstance). */
  identity?: string;
  /** Where transitions are recorded besides the Event (default: the controller log, event "audit"). */
  audit?: (record: TransitionRecord & { at: string }) => void;
  /**
   * PEM private key (Ed25519 / P-256) the attestation service trusts for node-trust audit records
   * (--node-trust-audit-key there): every transition is also appended to the service's audit log.
   */
  auditKey?: string | Buffer;
  clock?: () => number;
  /** A token with an unknown kid reloads the JWKS at most this often. */
  jwksMinReloadMs?: number;
  /**
   * How long start waits for caFile / tlsCertFile / tlsKeyFile to appear (default 5 min). In-cluster they come
   * from a Secret this same controller issues (webhook-ca), which the kubelet projects into the pod a minute or so
   * later; past the wait, start fails and the pod restarts.
   */
  filesWaitMs?: number;
}

/** Resolves once every file exists; polls (the kubelet's Secret projection has no event to wait on). */
async function waitForFiles(files: string[], maxMs: number, log: ControllerContext['log']): Promise<void> {
  const deadline = Date.now() + maxMs;
  for (let logged = false; ; ) {
    const missing = files.filter((f) => !existsSync(f));
    if (missing.length === 0) return;
    if (Date.now() >= deadline) throw new Error(`node-trust: ${missing.join(', ')} did not appear within ${Math.round(maxMs / 1000)} s`);
    if (!logged) log('node_trust_waiting_for_files', { missing, why: 'the services certificate Secret is issued by webhook-ca and projected by the kubelet' });
    logged = true;
    await new Promise((r) => setTimeout(r, 500));
  }
}


export interface NodeTrustController extends RunningController {
  /** Where agents post reports. */
  url: string;
  /** Reports accepted / reconciles run (bench, tests). */
  stats(): { reports: number; rejected: number; reconciles: number; reconcileMs: number[] };
  /** The audit delivery queue, when an audit key is configured. */
  auditSink?: NodeTrustAuditSink;
}

interface Latest {
  report: NodeReport;
  /** Events per policy name (only for policies with eventLog when the report arrived). */
  events: Map<string, AttestedEvents>;
  /** Whether the agent sent an event log with it. */
  sentLog: boolean;
}

/** JWKS of the attestation service, fetched on first use and again (rate-limited) for an unknown kid. */
class JwksSource {
  private keys?: { keys: JWK[] };
  /** One key ring per fetched JWKS: keys are imported once, not per token. */
  private resolver?: NodeKeyRing;
  private fetchedAt = 0;
  private inflight?: Promise<void>;
  constructor(
    private readonly url: string,
    private readonly ca: Buffer | undefined,
    private readonly minReloadMs: number,
    private readonly clock: () => number,
  ) {}

  async forToken(token: string): Promise<NodeKeyRing> {
    const kid = tokenKid(token);
    const known = this.keys && (kid === undefined || this.keys.keys.some((k) => k.kid === kid));
    if (!known && (!this.keys || this.clock() - this.fetchedAt >= this.minReloadMs)) await this.reload();
    if (!this.resolver) throw new Error('no JWKS');
    return this.resolver;
  }

  private reload(): Promise<void> {
    this.inflight ??= this.fetch().finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  private fetch(): Promise<void> {
    const u = new URL('/.well-known/jwks.json', this.url);
    const get = u.protocol === 'https:' ? https.get : http.get;
    return new Promise((resolve, reject) => {
      const req = get(u, { timeout: 10_000, ...(this.ca ? { ca: this.ca } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > 1024 * 1024) req.destroy(new Error('JWKS larger than 1 MiB'));
          else chunks.push(c);
        });
        res.on('end', () => {
          try {
            if (res.statusCode !== 200) throw new Error(`JWKS: HTTP ${res.statusCode}`);
            const doc = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            if (!Array.isArray(doc?.keys)) throw new Error('JWKS has no keys array');
            this.keys = { keys: doc.keys };
            this.resolver = new NodeKeyRing(this.keys);
            this.fetchedAt = this.clock();
            resolve();
          } catch (e) {
            reject(e);
          }
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('JWKS fetch timed out')));
      req.on('error', reject);
    });
  }
}

function eventType(t: TransitionRecord): 'Normal' | 'Warning' {
  return t.to === 'untrusted' ? 'Warning' : 'Normal';
}

export interface NodeTrustFactory extends ControllerFactory<NodeTrustOptions> {
  start(ctx: ControllerContext, o: NodeTrustOptions): Promise<NodeTrustController>;
}

export const nodeTrustController: NodeTrustFactory = {
  name: 'node-trust',
  description: 'verifies the EAR tokens node agents post, appraises them against NodeTrustPolicies, sets coffer.dev/attested or taints coffer.dev/untrusted',
  async start(ctx: ControllerContext, o: NodeTrustOptions): Promise<NodeTrustController> {
    if (!o.attestationUrl) throw new Error('node-trust: the attestation service URL is required');
    const clock = o.clock ?? Date.now;
    const issuer = o.issuer ?? o.attestationUrl.replace(/\/$/, '');
    const audience = o.audience ?? NODE_TRUST_AUDIENCE;
    const identity = o.identity ?? `coffer-controller-${process.pid}`;
    const eventNs = o.eventNamespace ?? 'default';
    const logAudit = o.audit ?? ((r) => ctx.log('audit', { ...r }));
    await waitForFiles([o.caFile, o.tlsCertFile, o.tlsKeyFile].filter((f): f is string => f !== undefined), o.filesWaitMs ?? 300_000, ctx.log);
    const sink = o.auditKey !== undefined ? new NodeTrustAuditSink({ url: o.attestationUrl, ca: o.caFile ? readFileSync(o.caFile) : undefined, keyPem: o.auditKey, identity, log: ctx.log }) : undefined;
    const jwks = new JwksSource(o.attestationUrl, o.caFile ? readFileSync(o.caFile) : undefined, o.jwksMinReloadMs ?? 5000, clock);
    const rest = await KubeRest.fromKubeConfig(ctx.kubeConfig, 'coffer-controller/node-trust');
    const nodes = makeCachedInformer(ctx.kubeConfig, rest, ctx, { name: 'nodes', path: '/api/v1/nodes' });
    const policyInf = makeCachedInformer(ctx.kubeConfig, rest, ctx, { name: 'nodetrustpolicies', path: `/apis/${COFFER_GROUP}/${COFFER_VERSION}/nodetrustpolicies` });
    const latest = new Map<string, Latest>();
    const eventsCache = new AttestedEventsCache();
    const timers = new Map<string, NodeJS.Timeout>();
    const stats = { reports: 0, rejected: 0, reconciles: 0, reconcileMs: [] as number[] };
    let synced = false;

    const policies = (): NodeTrustPolicy[] => policyInf.list().filter((p) => Array.isArray(p?.spec?.allowedTees)) as NodeTrustPolicy[];
    const selecting = (node: Obj) => policies().filter((p) => matchesSelector(p.spec.nodeSelector, node.metadata?.labels));

    const schedule = (name: string, afterMs: number | undefined) => {
      const old = timers.get(name);
      if (old) clearTimeout(old);
      timers.delete(name);
      if (afterMs === undefined) return;
      // +50 ms: at the instant of expiry `exp <= now` must already hold.
      const t = setTimeout(() => {
        timers.delete(name);
        queue.add(name);
      }, Math.min(afterMs + 50, 24 * 3600_000));
      t.unref();
      timers.set(name, t);
    };

    const createEvent = async (node: Obj, t: TransitionRecord, now: number): Promise<boolean> => {
      const at = new Date(now).toISOString();
      try {
        await rest.request('POST', `/api/v1/namespaces/${encodeURIComponent(eventNs)}/events`, {
          apiVersion: 'v1',
          kind: 'Event',
          // The audit record rides on the Event (the durable outbox a restarted controller re-delivers from).
          metadata: { name: `${node.metadata.name}.trust-${t.id}`, namespace: eventNs, annotations: { [TRANSITION_ANNOTATION]: JSON.stringify({ ...t, message: t.message.slice(0, 1024), at }) } },
          involvedObject: { apiVersion: 'v1', kind: 'Node', name: node.metadata.name, uid: node.metadata.uid },
          reason: t.reason,
          message: t.message.slice(0, 1024),
          type: eventType(t),
          source: { component: 'coffer-node-trust' },
          reportingComponent: 'coffer.dev/node-trust',
          reportingInstance: identity,
          action: t.to === 'trusted' ? 'Trust' : t.to === 'untrusted' ? 'Taint' : 'Release',
          firstTimestamp: at,
          lastTimestamp: at,
          count: 1,
        });
        return true;
      } catch (e) {
        if (e instanceof KubeApiError && e.code === 409) return false; // this transition's Event exists: a replay
        throw e;
      }
    };

    // A token naming a node whose enrolled TPM did not sign it: refused, the named node's state unchanged (the
    // impostor can neither trust nor untrust it), and a Warning Event on that node so the operator sees who tried.
    // One Event per distinct refusal (name from its text): a repeat is a 409, not a flood.
    const identityEvent = async (nodeName: string, message: string, now: number): Promise<void> => {
      const node = nodes.get(nodeName);
      if (!node) return;
      const at = new Date(now).toISOString();
      try {
        await rest.request('POST', `/api/v1/namespaces/${encodeURIComponent(eventNs)}/events`, {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { name: `${nodeName}.trust-identity-${createHash('sha256').update(message).digest('hex').slice(0, 16)}`, namespace: eventNs },
          involvedObject: { apiVersion: 'v1', kind: 'Node', name: nodeName, uid: node.metadata.uid },
          reason: 'NodeTrustIdentityRefused',
          message: `token refused (TOKEN_NODE_IDENTITY): ${message}`.slice(0, 1024),
          type: 'Warning',
          source: { component: 'coffer-node-trust' },
          reportingComponent: 'coffer.dev/node-trust',
          reportingInstance: identity,
          action: 'Refuse',
          firstTimestamp: at,
          lastTimestamp: at,
          count: 1,
        });
      } catch (err) {
        if (!(err instanceof KubeApiError && err.code === 409)) ctx.log('node_trust_event_failed', { node: nodeName, error: String((err as Error).message) });
      }
    };

    const reconcile = async (name: string) => {
      const started = performance.now();
      await withConflictRetry(async (fresh) => {
        const node = fresh ? await rest.request<Obj>('GET', `/api/v1/nodes/${encodeURIComponent(name)}`).catch((e) => (e instanceof KubeApiError && e.code === 404 ? undefined : Promise.reject(e))) : nodes.get(name);
        if (!node) {
          latest.delete(name);
          schedule(name, undefined);
          return;
        }
        const now = clock();
        const pols = selecting(node);
        let l = latest.get(name);
        // A policy that names events and is newer than the report (its log was not kept): judge by the next
        // report, which the agent sends within an interval, not by "no log" — the recorded state holds meanwhile.
        if (l?.sentLog && pols.some((p) => p.spec.eventLog && !l!.events.has(p.metadata.name))) l = undefined;
        const polByName = new Map(pols.map((p) => [p.spec, p.metadata.name]));
        const verdict = l ? appraiseNode(l.report, pols.map((p) => p.spec), (spec: NodeTrustPolicySpec) => l.events.get(polByName.get(spec) ?? '')) : undefined;
        const plan = reconcileNodeTrust({ node, policies: pols.map((p) => p.spec), latest: l && verdict ? { report: l.report, verdict } : undefined, now });
        if (plan.transition) {
          const record = { ...plan.transition, at: new Date(now).toISOString() };
          if (await createEvent(node, plan.transition, now)) logAudit(record);
          // Also on a replay (409): the crash may have come before the delivery; the service keeps one row per id.
          sink?.add(record);
        }
        if (plan.patch) {
          try {
            await rest.request('PATCH', `/api/v1/nodes/${encodeURIComponent(name)}`, plan.patch, 'application/merge-patch+json');
          } catch (e) {
            if (e instanceof KubeApiError && e.code === 404) return;
            throw e;
          }
          ctx.log('node_trust_action', { node: name, state: plan.state, ...(plan.transition ? { transition: plan.transition.reason } : {}) });
        }
        schedule(name, plan.requeueAfterMs);
      }, (attempt) => ctx.log('node_trust_conflict', { node: name, attempt }));
      stats.reconciles++;
      if (stats.reconcileMs.length < 1_000_000) stats.reconcileMs.push(performance.now() - started);
    };

    const queue = new WorkQueue(reconcile, (key, err, attempt) => ctx.log('node_trust_retry', { node: key, attempt, error: String((err as Error)?.message ?? err) }));

    const accept = async (body: unknown): Promise<{ code: number; body: Record<string, unknown> }> => {
      const b = body as { token?: unknown; eventLog?: unknown } | null;
      if (typeof b?.token !== 'string') return { code: 400, body: { type: 'bad-request', detail: 'body must be {"token": "<EAR JWT>", "eventLog"?: "<base64>"}' } };
      let keys;
      try {
        keys = await jwks.forToken(b.token);
      } catch (e) {
        // Cannot check the signature: refuse (fail closed); the agent retries. The node keeps its recorded state.
        return { code: 503, body: { type: 'jwks-unavailable', detail: String((e as Error).message) } };
      }
      let report: NodeReport;
      try {
        report = await verifyNodeToken(b.token, keys, { issuer, audience, now: clock() });
      } catch (e) {
        if (e instanceof NodeTokenError) {
          stats.rejected++;
          ctx.log('node_trust_token_rejected', { code: e.code, error: e.message });
          if (e.code === 'TOKEN_NODE_IDENTITY' && e.node) await identityEvent(e.node, e.message, clock());
          return { code: e.code === 'TOKEN_TOO_LARGE' ? 413 : 401, body: { type: 'token-rejected', code: e.code, detail: e.message } };
        }
        throw e;
      }
      const node = nodes.get(report.node);
      if (!node) return { code: 404, body: { type: 'unknown-node', detail: `no Node ${report.node}` } };
      const prev = latest.get(report.node);
      if (prev && prev.report.issuedAt > report.issuedAt) return { code: 200, body: { node: report.node, tokenId: report.tokenId, accepted: false, detail: 'a newer token for this node is already known' } };
      const events = new Map<string, AttestedEvents>();
      const wanting = selecting(node).filter((p) => p.spec.eventLog);
      if (wanting.length) {
        let log: Uint8Array | undefined;
        if (typeof b.eventLog === 'string') log = new Uint8Array(Buffer.from(b.eventLog, 'base64'));
        for (const p of wanting) {
          if (!log) continue; // undefined → "no event log sent"
          const el = p.spec.eventLog!;
          try {
            events.set(p.metadata.name, { events: eventsCache.events(log, Object.assign({}, ...report.tees.map((t) => t.measurements)), el.pcrs, el.bank ?? 'sha256') });
          } catch (e) {
            if (!(e instanceof NodeEventLogError)) throw e;
            events.set(p.metadata.name, { error: `${e.code}: ${e.message}` });
          }
        }
      }
      latest.set(report.node, { report, events, sentLog: typeof b.eventLog === 'string' });
      stats.reports++;
      if (synced) queue.add(report.node);
      return { code: 202, body: { node: report.node, tokenId: report.tokenId, accepted: true, expiresAt: new Date(report.expiresAt).toISOString() } };
    };

    const tls = o.tlsCertFile && o.tlsKeyFile ? { cert: readFileSync(o.tlsCertFile), key: readFileSync(o.tlsKeyFile) } : undefined;
    const app: FastifyInstance = (tls ? Fastify({ https: tls, bodyLimit: 8 * 1024 * 1024, requestTimeout: 30_000 }) : Fastify({ bodyLimit: 8 * 1024 * 1024, requestTimeout: 30_000 })) as FastifyInstance;
    app.post(REPORTS_PATH, async (req, reply) => {
      const r = await accept(req.body);
      return reply.code(r.code).send(r.body);
    });
    // The newest verified report of a node (measurements only): `coffer node-trust learn` builds reference values
    // from a golden node with it. Nothing secret: what the node's token already says.
    app.get<{ Params: { node: string } }>('/v1/node-trust/nodes/:node', async (req, reply) => {
      const l = latest.get(req.params.node);
      if (!l) return reply.code(404).send({ type: 'no-report', detail: `no verified report for node ${req.params.node}` });
      const r = l.report;
      return { node: r.node, tokenId: r.tokenId, attestedAt: new Date(r.issuedAt).toISOString(), expiresAt: new Date(r.expiresAt).toISOString(), tees: r.tees.map((t) => ({ tee: t.tee, status: t.status, tcbStatus: t.tcbStatus, measurements: t.measurements })) };
    });
    app.get('/readyz', async (_req, reply) => reply.code(synced ? 200 : 503).send({ ready: synced }));

    for (const verb of ['add', 'update', 'delete'] as const) {
      nodes.on(verb, (n) => synced && n.metadata?.name && queue.add(n.metadata.name));
      policyInf.on(verb, () => {
        if (synced) for (const n of nodes.list()) queue.add(n.metadata.name);
      });
    }
    const cancel = await startAll([nodes, policyInf], () => {
      synced = true;
      for (const n of nodes.list()) queue.add(n.metadata.name);
    });
    if (sink) {
      // Records of transitions a previous process recorded as Events but may not have delivered.
      rest.request<{ items?: Obj[] }>('GET', `/api/v1/namespaces/${encodeURIComponent(eventNs)}/events?fieldSelector=${encodeURIComponent('source=coffer-node-trust')}&limit=500`).then(
        (l) => {
          for (const ev of l.items ?? []) {
            const r = recordFromEvent(ev);
            if (r) sink.add(r);
          }
        },
        (e: Error) => ctx.log('node_trust_audit_recover_failed', { error: e.message }),
      );
    }
    await app.listen({ host: o.host ?? '127.0.0.1', port: o.port ?? 0 });
    const addr = app.server.address() as AddressInfo;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    const url = `${tls ? 'https' : 'http'}://${host}:${addr.port}`;
    ctx.log('controller_started', { controller: 'node-trust', url, issuer, audience, audit: sink ? `${o.attestationUrl.replace(/\/$/, '')}/v1/node-trust/audit` : 'log only (no --node-trust-audit-key)' });
    return {
      name: 'node-trust',
      url,
      stats: () => stats,
      auditSink: sink,
      settled: () => queue.settled(),
      async stop() {
        cancel();
        queue.stop();
        sink?.stop();
        for (const t of timers.values()) clearTimeout(t);
        timers.clear();
        await app.close();
        await Promise.all([nodes.stop(), policyInf.stop()]);
        rest.close();
      },
    };
  },
};
