import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { DocumentKind } from '../store/types.js';
import { parsePolicy, PolicyError } from '../policy/load.js';
import { parseRulePolicy } from '../policy/rules.js';
import type { AdminAuth, AdminIdentity } from './admin-auth.js';
import { HttpProblem, installProblemHandlers, sendProblem } from './problem.js';
import type { AttestationService } from './service.js';
import { parseAttestBody } from './attest-body.js';
import { tpmEnrolRoutes } from './tpm-enrol-routes.js';
import { isAdminPath } from './admin-paths.js';

export { isAdminPath };
import type { DashboardSessions } from './dashboard/session.js';
import { redactActor } from './dashboard/views.js';

export interface AttestationRoutesOptions {
  service: AttestationService;
  admin: AdminAuth;
  /** Public base URL for discovery (`issuer`, `jwks_uri`); default: derived from the request's Host. */
  publicUrl?: string;
  /** Dashboard sessions: admin routes also accept the session cookie (writes with its CSRF header). */
  sessions?: DashboardSessions;
}

const ID_PARAM = { type: 'object', properties: { id: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,128}$' } }, required: ['id'] } as const;

/** Admin-managed documents: URL segment → store kind + validator (rejects a bad document before it is stored). */
const DOCS: Record<string, { kind: DocumentKind; validate: (text: string) => unknown }> = {
  policies: { kind: 'policy', validate: parseRulePolicy },
  'reference-values': { kind: 'reference-values', validate: parsePolicy },
};

function docText(body: unknown): string {
  // An empty document would silently replace a policy with "no rules": refused.
  if (typeof body === 'string' && body.trim() === '') throw new HttpProblem(400, 'document-invalid', 'Invalid document', 'the document is empty');
  if (typeof body === 'string') return body;
  if (Buffer.isBuffer(body)) return body.toString('utf8');
  if (body && typeof body === 'object') return JSON.stringify(body);
  throw new HttpProblem(400, 'invalid-request', 'Invalid request', 'the request body must be a JSON or YAML document');
}

/** The attestation service's HTTP surface as one fastify plugin with its own problem+json handlers. */
export async function attestationRoutes(app: FastifyInstance, o: AttestationRoutesOptions): Promise<void> {
  const { service } = o;
  installProblemHandlers(app);
  // YAML / plain-text bodies for admin documents.
  app.addContentTypeParser(['application/yaml', 'text/yaml', 'text/plain'], { parseAs: 'string' }, (_req, body, done) => done(null, body));

  // Admin routes authenticate in onRequest, before fastify parses or validates anything (content type, body size,
  // JSON, schema): without a valid credential every /v1/admin request is 401, whatever it carries. Refusals are
  // audited with the path only. Writes need an admin credential; reads also take a viewer token (coffer
  // admin-token --viewer) or a dashboard session. The identity is kept for the handler.
  const adminIds = new WeakMap<FastifyRequest, AdminIdentity>();
  const isWrite = (req: FastifyRequest) => req.method !== 'GET' && req.method !== 'HEAD';
  const authenticate = async (req: FastifyRequest, write: boolean): Promise<AdminIdentity> => {
    try {
      if (o.sessions) return await o.sessions.authenticate(req, { write });
      return await (write ? o.admin.check(req.headers.authorization, service.now()) : o.admin.verify(req.headers.authorization, service.now()));
    } catch (e) {
      if (e instanceof HttpProblem) {
        await service.store.appendAudit({ at: service.now(), actor: 'unauthenticated', action: 'admin', target: `${req.method} ${req.url.split('?')[0].slice(0, 256)}`, result: 'denied', details: { reason: e.detail } });
      }
      throw e;
    }
  };
  // Callback style: an async hook would cost every request (the attestation hot path too) a promise.
  app.addHook('onRequest', (req, _reply, done) => {
    if (!isAdminPath(req.url) && !req.routeOptions.url?.startsWith('/v1/admin')) return done();
    authenticate(req, isWrite(req)).then((who) => (adminIds.set(req, who), done()), (e: Error) => done(e));
  });
  const admin = async (req: FastifyRequest): Promise<AdminIdentity> => {
    const who = adminIds.get(req) ?? (await authenticate(req, true));
    if (who.role !== 'admin') throw new HttpProblem(403, 'admin-forbidden', 'Read-only credential', 'a viewer token can read, never write: use an admin token (coffer admin-token)');
    return who;
  };
  const reader = async (req: FastifyRequest): Promise<AdminIdentity> => adminIds.get(req) ?? authenticate(req, false);
  const base = (req: FastifyRequest) => o.publicUrl ?? `${req.protocol}://${req.headers.host ?? 'localhost'}`;

  app.post('/v1/challenge', async (_req, reply) => reply.code(201).send(await service.nonces.issue(service.now())));

  // The body is checked by parseAttestBody (same rules as a JSON schema, a fraction of the cost on this route).
  app.post('/v1/attest', async (req) => {
    // The checked body is handed over as is (attest reads its own members, never `nextChallenge`): no copy.
    const body = parseAttestBody(req.body);
    const r = await service.attest(body, `attester@${req.ip}`);
    if (body.nextChallenge !== true) return r;
    // Extension: the next challenge handed out with the answer, so a periodic attester (the node agent) needs one
    // request per interval instead of two. Issued only after a completed attestation (a refused request gets no
    // nonce): an ordinary single-use, store-backed challenge with the service's nonce lifetime, which must cover the
    // caller's interval. Opt-in: other callers do not grow the nonce table.
    const next = await service.nonces.issue(service.now());
    return { ...r, nextNonce: next.nonce, nextNonceExpiresAt: next.expiresAt };
  });

  if (service.tpm) tpmEnrolRoutes(app, service.tpm, admin);

  app.get('/.well-known/jwks.json', async (_req, reply) =>
    reply.header('cache-control', 'public, max-age=60').send(service.tokens.jwks(service.now())),
  );

  app.get('/.well-known/openid-configuration', async (req) => ({
    issuer: service.tokens.issuer,
    jwks_uri: `${base(req)}/.well-known/jwks.json`,
    challenge_endpoint: `${base(req)}/v1/challenge`,
    attestation_endpoint: `${base(req)}/v1/attest`,
    id_token_signing_alg_values_supported: ['ES256'],
    response_types_supported: ['token'],
    subject_types_supported: ['public'],
    supported_tees: service.supportedTees(),
  }));

  // ---- admin API (every route authenticated; every mutation audited) ----
  for (const [segment, d] of Object.entries(DOCS)) {
    app.get(`/v1/admin/${segment}`, async (req) => {
      await reader(req);
      return (await service.store.listDocuments(d.kind)).map((x) => ({ id: x.id, version: x.version, createdAt: new Date(x.createdAt).toISOString(), actor: x.actor }));
    });
    app.get(`/v1/admin/${segment}/:id`, { schema: { params: ID_PARAM } }, async (req) => {
      await reader(req);
      const { id } = req.params as { id: string };
      const v = intQuery(req.query, 'version', 1, INT32_MAX);
      const doc = await service.store.getDocument(d.kind, id, v);
      if (!doc || doc.deleted) throw new HttpProblem(404, 'document-not-found', 'Not found', `no ${d.kind} '${id}'${v ? ` version ${v}` : ''}`);
      return { id: doc.id, version: doc.version, createdAt: new Date(doc.createdAt).toISOString(), actor: doc.actor, body: doc.body };
    });
    app.put(`/v1/admin/${segment}/:id`, { schema: { params: ID_PARAM } }, async (req, reply) => {
      const who = await admin(req);
      const { id } = req.params as { id: string };
      const text = docText(req.body);
      try {
        d.validate(text);
      } catch (e) {
        if (e instanceof PolicyError) throw new HttpProblem(400, 'document-invalid', 'Invalid document', e.message);
        throw e;
      }
      const now = service.now();
      const doc = await service.store.putDocument(d.kind, id, text, who.subject, now);
      await service.store.appendAudit({ at: now, actor: who.subject, action: `${d.kind}.put`, target: id, result: 'ok', details: { version: doc.version } });
      return reply.code(doc.version === 1 ? 201 : 200).send({ id, version: doc.version });
    });
    app.delete(`/v1/admin/${segment}/:id`, { schema: { params: ID_PARAM } }, async (req, reply) => {
      const who = await admin(req);
      const { id } = req.params as { id: string };
      const now = service.now();
      const ok = await service.store.deleteDocument(d.kind, id, who.subject, now);
      await service.store.appendAudit({ at: now, actor: who.subject, action: `${d.kind}.delete`, target: id, result: ok ? 'ok' : 'absent' });
      if (!ok) throw new HttpProblem(404, 'document-not-found', 'Not found', `no ${d.kind} '${id}'`);
      return reply.code(204).send();
    });
  }

  app.get('/v1/admin/audit', async (req) => {
    const who = await reader(req);
    const action = strQuery(req.query, 'action', 200);
    const afterId = intQuery(req.query, 'after', 0, Number.MAX_SAFE_INTEGER);
    // `limit`: default 100, capped at AUDIT_MAX_LIMIT (larger values are clamped, as documented).
    const rows = await service.store.listAudit({ action, afterId, limit: limitQuery(req.query, 'limit', AUDIT_MAX_LIMIT) });
    // Live KBS session ids (actor session:<id>) are credentials: a viewer sees their fingerprints only.
    return who.role === 'admin' ? rows : rows.map((r) => ({ ...r, actor: redactActor(r.actor) }));
  });

  app.post('/v1/admin/keys/rotate', async (req) => {
    const who = await admin(req);
    const now = service.now();
    await service.tokens.rotate(now);
    await service.store.appendAudit({ at: now, actor: who.subject, action: 'signing-key.rotate', target: service.tokens.activeKid, result: 'ok' });
    return { kid: service.tokens.activeKid };
  });

  app.get('/v1/admin/collateral', async (req) => {
    await reader(req);
    const items = service.collateral ? await service.collateral.status() : [];
    return service.upstream ? [...items, ...service.upstream.status()] : items;
  });

  app.post('/v1/admin/collateral/refresh', async (req) => {
    const who = await admin(req);
    const r = [...(service.collateral ? await service.collateral.refresh() : []), ...(service.upstream ? await service.upstream.refresh(true) : [])];
    await service.store.appendAudit({ at: service.now(), actor: who.subject, action: 'collateral.refresh', target: '*', result: r.every((x) => x.ok) ? 'ok' : 'partial', details: { results: r } });
    return r;
  });

  // Unknown /v1/admin paths are still admin paths: authenticate first so probing reveals nothing.
  app.all('/v1/admin/*', async (req, reply) => {
    await (req.method === 'GET' ? reader(req) : admin(req));
    return sendProblem(reply, new HttpProblem(404, 'not-found', 'Not found', `no admin route ${req.method} ${req.url.split('?')[0]}`));
  });
}

const INT32_MAX = 2 ** 31 - 1;
/** The most audit records one GET /v1/admin/audit returns. */
export const AUDIT_MAX_LIMIT = 1000;

const badQuery = (name: string, why: string) => new HttpProblem(400, 'invalid-query', 'Invalid query parameter', `query parameter '${name}' ${why}`);

/**
 * One optional decimal integer query parameter in [min, max]: `limit=abc`, a repeated parameter, a negative or a
 * huge value is a 400 that names it (they reached the store and failed there with 500, differently per database).
 */
function intQuery(query: unknown, name: string, min: number, max: number): number | undefined {
  const v = (query as Record<string, unknown> | undefined)?.[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw badQuery(name, 'must be given once');
  if (!/^\d{1,16}$/.test(v)) throw badQuery(name, `must be an integer from ${min} to ${max}`);
  const n = Number(v);
  if (n < min || n > max) throw badQuery(name, `must be an integer from ${min} to ${max}`);
  return n;
}

/** A page size: a positive integer of any magnitude, clamped to `max` (documented); anything else is 400. */
function limitQuery(query: unknown, name: string, max: number): number | undefined {
  const v = (query as Record<string, unknown> | undefined)?.[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw badQuery(name, 'must be given once');
  if (!/^\d+$/.test(v) || /^0+$/.test(v)) throw badQuery(name, `must be a positive integer (at most ${max} are returned)`);
  return v.length > 15 ? max : Math.min(Number(v), max);
}

function strQuery(query: unknown, name: string, maxLen: number): string | undefined {
  const v = (query as Record<string, unknown> | undefined)?.[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw badQuery(name, 'must be given once');
  if (v.length > maxLen) throw badQuery(name, `must be at most ${maxLen} characters`);
  return v;
}
