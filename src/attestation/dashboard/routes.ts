import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TEE_TYPES, type TeeType } from '../../tee/common/claims.js';
import { toErrorReport } from '../../tee/common/errors.js';
import { parsePolicy, PolicyError } from '../../policy/load.js';
import { parseRulePolicy } from '../../policy/rules.js';
import { RESOURCE_POLICY_ID } from '../../kbs/routes.js';
import type { AuditRecord } from '../../store/types.js';
import { decodeBase64, type AttestationService } from '../service.js';
import { HttpProblem, sendProblem, toProblem } from '../problem.js';
import type { UiAssets } from './assets.js';
import { checkSameOrigin, type DashboardSessions } from './session.js';
import type { ClusterRead } from '../../k8s/cluster-view.js';
import { advisoryUrl, CLUSTER_FEEDS, NODES_NOTE, nodesSummary, overview, sanitizeRecord, type CollateralRow } from './views.js';

export interface DashboardRoutesOptions {
  service: AttestationService;
  sessions: DashboardSessions;
  /** undefined: not built and no esbuild to bundle it; `/` then says how to build it. */
  assets: UiAssets | undefined;
  /** How often an event stream looks for new audit records (ms). */
  pollMs?: number;
  /** Concurrent event streams per service. */
  maxStreams?: number;
  /** The cluster's trust posture (`--kubeconfig`), cached by its source; absent: the Cluster page says what would feed it. */
  cluster?: { get(): Promise<ClusterRead> };
}

/** No inline script or style anywhere: every byte of code comes from this origin's own files. */
export const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cache-control': 'no-store',
};

const EVIDENCE_MAX = 1024 * 1024; // base64 characters
const ATTACHMENT_NAMES = ['signature', 'ak', 'pcrs', 'eventlog', 'quote', 'tdQuote'] as const;
const b64 = { type: 'string', maxLength: EVIDENCE_MAX } as const;
const verifySchema = {
  body: {
    type: 'object', required: ['evidence'], additionalProperties: false,
    properties: {
      evidence: { type: 'string', minLength: 1, maxLength: EVIDENCE_MAX },
      tee: { type: 'string', enum: ['auto', ...TEE_TYPES] },
      at: { type: 'string', maxLength: 40 },
      collateral: { type: 'array', maxItems: 8, items: { type: 'object', required: ['name', 'data'], additionalProperties: false, properties: { name: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,100}$' }, data: b64 } } },
      attachments: { type: 'object', additionalProperties: false, properties: Object.fromEntries(ATTACHMENT_NAMES.map((n) => [n, b64])) },
    },
  },
} as const;
const validateSchema = {
  params: { type: 'object', required: ['segment'], properties: { segment: { type: 'string', enum: ['policies', 'reference-values'] } } },
  body: { type: 'object', required: ['body'], additionalProperties: false, properties: { body: { type: 'string', maxLength: 256 * 1024 } } },
} as const;

/** `limit` query values: an integer in [1, max], default `def`; anything else is a 400, never a silent clamp. */
function limitOf(q: unknown, def: number, max: number): number {
  const v = (q as Record<string, string | undefined>).limit;
  if (v === undefined) return def;
  const n = Number(v);
  if (!/^\d{1,6}$/.test(v) || n < 1 || n > max) throw new HttpProblem(400, 'invalid-request', 'Invalid request', `limit must be an integer from 1 to ${max}`);
  return n;
}

function intQuery(q: unknown, name: string): number | undefined {
  const v = (q as Record<string, string | undefined>)[name];
  if (v === undefined) return undefined;
  if (!/^\d{1,15}$/.test(v)) throw new HttpProblem(400, 'invalid-request', 'Invalid request', `${name} must be a non-negative integer`);
  return Number(v);
}

/**
 * The dashboard: its page and bundle at `/`, login/logout, and the read API its pages use (`/v1/dashboard/*`,
 * authenticated like the admin API: a Bearer admin/viewer token or the session cookie). Writes (policies) go
 * through the admin API routes, which take the session cookie plus its CSRF header.
 */
export async function dashboardRoutes(app: FastifyInstance, o: DashboardRoutesOptions): Promise<void> {
  const { service, sessions } = o;
  const store = service.store;
  // Errors as problem+json; not-found stays the attestation plugin's (both sit at prefix '/').
  app.setErrorHandler((err, req, reply) => {
    const p = toProblem(err as Error);
    if (p.status >= 500) req.log.error({ err }, 'request failed');
    return sendProblem(reply, p);
  });
  app.addHook('onRequest', async (_req, reply) => void reply.headers(SECURITY_HEADERS));
  const read = (req: FastifyRequest) => sessions.authenticate(req, { write: false });

  // ---- static ----
  const asset = (name: keyof Omit<UiAssets, 'origin'>, type: string) => async (_req: FastifyRequest, reply: FastifyReply) => {
    if (!o.assets) {
      return reply.code(503).type('text/plain; charset=utf-8').send('The dashboard is not built: run `npm run build` (or `npm ci`) in the coffer package.\n');
    }
    return reply.type(type).send(o.assets[name]);
  };
  app.get('/', asset('index.html', 'text/html; charset=utf-8'));
  app.get('/ui/app.js', asset('app.js', 'text/javascript; charset=utf-8'));
  app.get('/ui/app.css', asset('app.css', 'text/css; charset=utf-8'));

  // ---- session ----
  app.post('/ui/session', {
    schema: { body: { type: 'object', required: ['token'], additionalProperties: false, properties: { token: { type: 'string', minLength: 16, maxLength: 4096, pattern: '^[A-Za-z0-9._~-]+$' } } } },
  }, async (req, reply) => {
    // Login CSRF: a JSON body cannot be sent cross-site without a preflight, and a foreign Origin is refused.
    checkSameOrigin(req);
    if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) throw new HttpProblem(415, 'unsupported-media-type', 'Unsupported media type', 'sign in with a JSON body');
    const view = await sessions.login((req.body as { token: string }).token, reply);
    await store.appendAudit({ at: service.now(), actor: view.subject, action: 'dashboard.login', target: view.role, result: 'ok' });
    return view;
  });
  // 204 when signed out: the page asks on every load, and a signed-out visitor is not an error.
  app.get('/ui/session', async (req, reply) => {
    const s = await sessions.current(req);
    return s ?? reply.code(204).send();
  });
  app.delete('/ui/session', async (req, reply) => {
    await read(req); // a session with its CSRF header (non-GET), or a Bearer token
    await sessions.logout(req, reply);
    return reply.code(204).send();
  });

  // ---- read API ----
  app.get('/v1/dashboard/overview', async (req) => {
    await read(req);
    const hours = intQuery(req.query, 'hours') ?? 24;
    if (hours < 1 || hours > 24 * 14) throw new HttpProblem(400, 'invalid-request', 'Invalid request', 'hours must be from 1 to 336');
    const now = service.now();
    const from = now - hours * 3_600_000;
    // Newest first, a page at a time, until the window's start; at most 10 000 records (then `truncated`).
    const records: AuditRecord[] = [];
    let before: number | undefined;
    let truncated = false;
    for (let page = 0; ; page++) {
      const rows = await store.listAudit({ newestFirst: true, beforeId: before, limit: 1000 });
      records.push(...rows);
      if (rows.length < 1000 || rows[rows.length - 1].at < from) break;
      if (page === 9) {
        truncated = true;
        break;
      }
      before = rows[rows.length - 1].id;
    }
    return overview(records, { now, windowMs: hours * 3_600_000, buckets: 24, truncated, collateral: await collateralRows(service, now), lastId: records[0]?.id ?? 0, nodes: nodesSummary(await o.cluster?.get()) });
  });

  app.get('/v1/dashboard/audit', async (req) => {
    await read(req);
    const q = req.query as { action?: string };
    if (q.action !== undefined && !/^[a-z.-]{1,64}$/.test(q.action)) throw new HttpProblem(400, 'invalid-request', 'Invalid request', 'action must be an audit action name');
    const rows = await store.listAudit({ newestFirst: true, beforeId: intQuery(req.query, 'before'), action: q.action, limit: limitOf(req.query, 50, 500) });
    return rows.map(sanitizeRecord);
  });

  app.get('/v1/dashboard/kbs', async (req) => {
    await read(req);
    const limit = limitOf(req.query, 50, 500);
    const doc = await store.getDocument('resource-policy', RESOURCE_POLICY_ID);
    return {
      // Paths only: the values are never read here.
      resources: (await store.listResources()).sort(),
      policy: doc && !doc.deleted ? { id: RESOURCE_POLICY_ID, version: doc.version, actor: doc.actor, createdAt: new Date(doc.createdAt).toISOString(), body: doc.body } : null,
      decisions: (await store.listAudit({ newestFirst: true, action: 'resource.get', limit })).map(sanitizeRecord),
    };
  });

  app.get('/v1/dashboard/cluster', async (req) => {
    await read(req);
    if (!o.cluster) return { available: false, note: NODES_NOTE, panels: CLUSTER_FEEDS };
    const c = await o.cluster.get();
    return c.available ? c : { ...c, note: c.error, panels: CLUSTER_FEEDS };
  });

  app.get('/v1/dashboard/tees', async (req) => {
    await read(req);
    return { tees: service.supportedTees() };
  });

  // Validation without saving: the policy editor shows errors inline before the diff and the save.
  app.post('/v1/dashboard/validate/:segment', { schema: validateSchema }, async (req) => {
    await read(req);
    const { segment } = req.params as { segment: 'policies' | 'reference-values' };
    try {
      (segment === 'policies' ? parseRulePolicy : parsePolicy)((req.body as { body: string }).body);
      return { ok: true };
    } catch (e) {
      if (e instanceof PolicyError) return { ok: false, error: e.message };
      throw e;
    }
  });

  // The Verify page: the same verifyEvidence as `coffer verify`; read-only (nothing stored, no token issued).
  app.post('/v1/dashboard/verify', { schema: verifySchema, bodyLimit: 8 * 1024 * 1024 }, async (req) => {
    await read(req);
    const b = req.body as { evidence: string; tee?: TeeType | 'auto'; at?: string; collateral?: { name: string; data: string }[]; attachments?: Record<string, string> };
    const evidence = decodeBase64(b.evidence, 'evidence');
    const attachments: Record<string, Uint8Array> = {};
    for (const [k, v] of Object.entries(b.attachments ?? {})) attachments[k] = decodeBase64(v, `attachment ${k}`);
    let at: Date | undefined;
    if (b.at !== undefined) {
      at = new Date(b.at);
      if (!/^\d{4}-\d{2}-\d{2}/.test(b.at) || Number.isNaN(at.getTime())) throw new HttpProblem(400, 'invalid-request', 'Invalid request', `at '${b.at}' is not an ISO-8601 date`);
    }
    const input = { evidence, attachments };
    let collateral: Record<string, unknown> | undefined;
    const checks: { name: string; ok: boolean | null; code?: string; message: string }[] = [];
    if (b.collateral?.length) {
      const dir = await mkdtemp(join(tmpdir(), 'coffer-ui-collateral-'));
      try {
        for (const f of b.collateral) await writeFile(join(dir, f.name), decodeBase64(f.data, `collateral ${f.name}`));
        const v = !b.tee || b.tee === 'auto' ? service.registry.detect(input) : service.registry.get(b.tee);
        if (!v.openCollateral) throw new HttpProblem(400, 'invalid-request', 'Invalid request', `the ${v.tee} verifier takes no collateral`);
        collateral = await v.openCollateral(b.collateral.length === 1 ? join(dir, b.collateral[0].name) : dir);
        checks.push({ name: 'Collateral bundle', ok: true, message: `${b.collateral.length} file(s) opened as ${v.tee} collateral` });
      } catch (e) {
        if (e instanceof HttpProblem) throw e;
        const r = toErrorReport(e);
        checks.push({ name: 'Collateral bundle', ok: false, code: r.code, message: r.message });
        return { verified: false, tee: null, tcbStatus: null, advisories: [], checks, claims: null, appraisal: null };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
    const { result, verdict, policy, staleCollateral } = await service.inspect(input, { tee: b.tee, at, collateral });
    checks.push({ name: 'Format and TEE', ok: result.tee !== undefined, ...(result.tee ? {} : { code: result.errors[0]?.code }), message: result.tee ? `parsed as ${result.tee} evidence` : (result.errors[0]?.message ?? 'unrecognized evidence') });
    if (result.tee) {
      const e = result.errors[0];
      checks.push({
        name: 'Signatures, certificate chain, revocation, collateral and TCB',
        ok: result.verified,
        ...(e ? { code: e.code } : {}),
        message: e ? e.message : `verified${result.tcbStatus ? `; TCB ${result.tcbStatus}` : ''}${at ? ` as of ${at.toISOString()}` : ''}`,
      });
    }
    for (const w of result.claims?.warnings ?? []) checks.push({ name: 'Verifier warning', ok: null, message: w });
    if (!collateral && staleCollateral.length) checks.push({ name: 'Cached collateral', ok: null, code: 'COLLATERAL_STALE', message: `stale collateral (served from the cache): ${staleCollateral.join('; ')}` });
    if (verdict) {
      if (verdict.failures.length === 0) {
        checks.push({ name: `Appraisal (${policy})`, ok: verdict.status === 'affirming' ? true : null, message: `status ${verdict.status}: no rule failed${verdict.warnings.length ? `; ${verdict.warnings.join('; ')}` : ''}` });
      }
      for (const f of verdict.failures) checks.push({ name: `Appraisal rule ${f.rule} (${policy})`, ok: f.status === 'warning' ? null : false, code: f.code, message: f.message });
    }
    return {
      verified: result.verified,
      tee: result.tee ?? null,
      tcbStatus: result.tcbStatus ?? null,
      advisories: result.advisories.map((id) => ({ id, url: advisoryUrl(id) })),
      checks,
      claims: result.claims ?? null,
      appraisal: verdict ? { status: verdict.status, policy, failures: verdict.failures, warnings: verdict.warnings } : null,
    };
  });

  // ---- live events (server-sent events): new audit records as they are appended, from the store ----
  const streams = new Set<{ close(): void }>();
  app.addHook('onClose', async () => {
    for (const s of streams) s.close();
  });
  app.get('/v1/dashboard/events', async (req, reply) => {
    await read(req);
    if (streams.size >= (o.maxStreams ?? 32)) throw new HttpProblem(503, 'too-many-streams', 'Too many event streams', 'too many dashboard event streams are open; try again later');
    const after = intQuery(req.query, 'after');
    let last = after ?? (await store.listAudit({ newestFirst: true, limit: 1 }))[0]?.id ?? 0;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write(`retry: 2000\n: connected\n\n`);
    let polling = false;
    let sinceWrite = 0;
    const poll = async () => {
      if (polling) return;
      polling = true;
      try {
        for (;;) {
          const rows = await store.listAudit({ afterId: last, limit: 200 });
          for (const r of rows) {
            res.write(`id: ${r.id}\nevent: audit\ndata: ${JSON.stringify(sanitizeRecord(r))}\n\n`);
            last = r.id;
            sinceWrite = 0;
          }
          if (rows.length < 200) break;
        }
        if ((sinceWrite += pollMs) >= 15_000) {
          res.write(': keep-alive\n\n');
          sinceWrite = 0;
        }
      } catch {
        // the store is briefly unavailable: try again on the next tick
      } finally {
        polling = false;
      }
    };
    const pollMs = o.pollMs ?? 250;
    const timer = setInterval(() => void poll(), pollMs);
    const stream = {
      close() {
        clearInterval(timer);
        streams.delete(stream);
        res.end();
      },
    };
    streams.add(stream);
    req.raw.on('close', () => stream.close());
  });
}

async function collateralRows(service: AttestationService, now: number): Promise<CollateralRow[]> {
  const rows: CollateralRow[] = [];
  for (const c of service.collateral ? await service.collateral.status(now) : []) {
    rows.push({ key: c.key, source: c.source, fetchedAt: new Date(c.fetchedAt).toISOString(), nextUpdate: c.nextUpdate === null ? null : new Date(c.nextUpdate).toISOString(), ageSeconds: Math.round((now - c.fetchedAt) / 1000), stale: c.stale ? 'past its next update' : null });
  }
  for (const c of service.upstream ? service.upstream.status(now) : []) {
    rows.push({ key: c.key, source: c.source, fetchedAt: c.fetchedAt, nextUpdate: c.nextUpdate, ageSeconds: Math.round((now - Date.parse(c.fetchedAt)) / 1000), stale: c.stale });
  }
  return rows;
}

