import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { JWTPayload } from 'jose';
import type { TeeType } from '../tee/common/claims.js';
import { parseRulePolicy } from '../policy/rules.js';
import { PolicyError } from '../policy/load.js';
import type { AdminAuth } from '../attestation/admin-auth.js';
import { HttpProblem } from '../attestation/problem.js';
import type { AttestationService } from '../attestation/service.js';
import { installKbsErrorHandlers, KbsError, sendKbsError } from './errors.js';
import { encryptResource, type TeePubKey } from './jwe.js';
import {
  KBS_SESSION_COOKIE, parseAttestation, parseRequest, parseTeePubKey, primaryEvidenceInput, readCookie, runtimeDataBinding,
} from './protocol.js';
import { decide, parseResourcePolicy, type TokenFacts } from './resource-policy.js';

export interface KbsRoutesOptions {
  service: AttestationService;
  admin: AdminAuth;
  /** Session lifetime (Trustee default: 5 minutes). */
  sessionTtlMs?: number;
  /** Serve cookies with `Secure` (behind TLS). */
  secureCookies?: boolean;
}

interface SessionData extends Record<string, unknown> {
  state: 'authed' | 'attested';
  tee: string;
  cofferTee: string;
  nonce: string;
  /** Fixed at auth: like Trustee, attesting does not extend the session. */
  expiresAt: number;
  token?: string;
}

const SEGMENT = /^[A-Za-z0-9._-]{1,128}$/;
export const RESOURCE_POLICY_ID = 'resource-policy';
/** Trustee's kbs-client posts the CPU attestation policy as `default_cpu`; the KBS appraises with it when present. */
const KBS_POLICY_IDS = ['default_cpu', 'default'];

function resourcePath(params: unknown): string {
  const rest = String((params as Record<string, string>)['*'] ?? '');
  const segs = rest.split('/');
  if (segs.length !== 3 || !segs.every((s) => SEGMENT.test(s) && s !== '.' && s !== '..')) {
    throw new KbsError('InvalidRequestPath', `invalid resource path ${rest}: expected <repository>/<type>/<tag>`);
  }
  return segs.join('/');
}

function b64urlText(v: unknown, what: string): string {
  if (typeof v !== 'string' || !/^[A-Za-z0-9_-]*={0,2}$/.test(v)) throw new KbsError('SerdeError', `${what} must be base64url`);
  return Buffer.from(v, 'base64url').toString('utf8');
}

/** Where Trustee's KBS looks for the TEE key in a token, plus `cnf.jwk` of Coffer's own /v1 tokens. */
function teeKeyOf(claims: JWTPayload): TeePubKey | undefined {
  const submods = (claims.submods ?? {}) as Record<string, Record<string, unknown>>;
  const cpu0 = submods.cpu0?.['ear.veraison.annotated-evidence'] as Record<string, Record<string, unknown>> | undefined;
  const k = cpu0?.runtime_data_claims?.['tee-pubkey'] ?? (claims.cnf as { jwk?: unknown } | undefined)?.jwk;
  return k === undefined ? undefined : parseTeePubKey(k);
}

function factsOf(claims: JWTPayload): TokenFacts & { evidenceDigest?: string } {
  const submods = (claims.submods ?? {}) as Record<string, Record<string, unknown>>;
  const [name, sub] = Object.entries(submods)[0] ?? [];
  const ae = (sub?.['ear.veraison.annotated-evidence'] ?? {}) as Record<string, unknown>;
  // KBS tokens keep normalized claims under `coffer`; /v1 tokens carry them as the annotated evidence itself.
  const norm = (name === 'cpu0' ? ae.coffer : ae) as { tee?: string; measurements?: Record<string, string> } | undefined;
  const imgs = (ae.runtime_data_claims as Record<string, unknown> | undefined)?.['image-digests'];
  return {
    tee: norm?.tee, status: sub?.['ear.status'] as string | undefined, measurements: norm?.measurements ?? {},
    imageDigests: Array.isArray(imgs) ? imgs.filter((d): d is string => typeof d === 'string') : [],
    evidenceDigest: (ae['coffer.evidence-digest'] ?? (sub?.['ear.veraison.policy-claims'] as Record<string, unknown> | undefined)?.['evidence-digest']) as string | undefined,
  };
}

/**
 * Trustee-compatible KBS (RCAR handshake, resources as JWE, admin API) over Coffer's attestation service.
 * Register with `{ prefix: '/kbs' }`: routes are relative so the plugin owns the whole /kbs tree (its 404s too).
 */
export async function kbsRoutes(app: FastifyInstance, o: KbsRoutesOptions): Promise<void> {
  const { service } = o;
  const store = service.store;
  const ttl = o.sessionTtlMs ?? 5 * 60_000;
  installKbsErrorHandlers(app);
  app.setNotFoundHandler((req, reply) => sendKbsError(reply, new KbsError('PluginNotFound', `no KBS plugin serves ${req.method} ${req.url.split('?')[0]}`)));
  // Resource uploads are raw bytes (kbs-client sends application/octet-stream).
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const admin = async (req: FastifyRequest) => {
    try {
      return await o.admin.check(req.headers.authorization, service.now());
    } catch (e) {
      throw new KbsError('AdminAuthAccess', e instanceof HttpProblem ? e.detail : 'admin authentication failed');
    }
  };
  // Admin routes authenticate in onRequest, before the body is even parsed: an unauthenticated caller learns nothing.
  const adminFirst = { onRequest: async (req: FastifyRequest) => void (await admin(req)) };
  const setCookie = (reply: FastifyReply, id: string, expiresAt: number) =>
    reply.header('set-cookie', `${KBS_SESSION_COOKIE}=${id}; Expires=${new Date(expiresAt).toUTCString()}; Path=/kbs; HttpOnly; SameSite=Strict${o.secureCookies ? '; Secure' : ''}`);
  const audit = (actor: string, action: string, target: string, result: string, details: Record<string, unknown>) => {
    if (action === 'resource.get') service.metrics.resources.inc({ result });
    else if (action === 'kbs.attest') service.metrics.attestations.inc({ api: 'kbs', tee: target, result });
    return store.appendAudit({ at: service.now(), actor, action, target, result, details });
  };

  app.post('/v0/auth', async (req, reply) => {
    const r = parseRequest(req.body);
    if (!service.supportedTees().includes(r.cofferTee)) {
      throw new KbsError('AttestationError', `TEE ${r.tee} is not enabled on this KBS (enabled: ${service.supportedTees().join(', ')})`);
    }
    const now = service.now();
    const id = randomUUID().replace(/-/g, '');
    const nonce = randomBytes(32).toString('base64');
    const expiresAt = now + ttl;
    const data: SessionData = { state: 'authed', tee: r.tee, cofferTee: r.cofferTee, nonce, expiresAt };
    await store.putSession(id, data, expiresAt);
    setCookie(reply, id, expiresAt);
    return { nonce, 'extra-params': '' };
  });

  app.post('/v0/attest', async (req, reply) => {
    const id = readCookie(req.headers.cookie, KBS_SESSION_COOKIE);
    const now = service.now();
    const s = id ? ((await store.getSession(id, now)) as SessionData | undefined) : undefined;
    if (!id || !s) throw new KbsError('SessionExpired', 'no live KBS session: POST /kbs/v0/auth first (sessions last 5 minutes)');
    const expiresAt = s.expiresAt;
    if (s.state === 'attested' && s.token) {
      setCookie(reply, id, expiresAt);
      return { token: s.token };
    }
    const a = parseAttestation(req.body);
    if (a['runtime-data'].nonce !== s.nonce) throw new KbsError('AttestationError', 'runtime-data nonce does not match the session challenge');
    const tee = s.cofferTee as TeeType;
    const input = primaryEvidenceInput(tee, a['tee-evidence'].primary_evidence);
    const evidence = input.evidence;
    const digest = createHash('sha256').update(evidence).digest('hex');
    const policyId = (await store.getDocument('policy', KBS_POLICY_IDS[0])) ? KBS_POLICY_IDS[0] : KBS_POLICY_IDS[1];
    let outcome;
    try {
      outcome = await service.verifyAndAppraise(tee, input, runtimeDataBinding(a), policyId);
    } catch (e) {
      const detail = e instanceof HttpProblem ? e.detail : (e as Error).message;
      await audit(`session:${id}`, 'kbs.attest', s.tee, 'rejected', { evidenceDigest: digest, detail });
      throw new KbsError('AttestationError', detail);
    }
    const { raw, ...normalized } = outcome.claims;
    const annotated = {
      report_data: Buffer.from(outcome.claims.reportData, 'hex').toString('base64'),
      init_data: null,
      init_data_claims: null,
      runtime_data_claims: {
        nonce: a['runtime-data'].nonce,
        'tee-pubkey': a['runtime-data']['tee-pubkey'],
        'additional-evidence': a['tee-evidence'].additional_evidence ?? '',
        ...(a['runtime-data']['image-digests'] ? { 'image-digests': a['runtime-data']['image-digests'] } : {}),
      },
      [s.tee]: raw,
      coffer: normalized,
      'coffer.evidence-digest': digest,
    };
    const token = await service.tokens.sign({
      eat_profile: 'tag:github.com,2024:confidential-containers/Trustee',
      'ear.verifier-id': { developer: 'https://github.com/coffer-dev/coffer', build: 'coffer-kbs 0.1.0' },
      submods: { cpu0: service.appraisal(outcome, annotated) },
    }, now);
    await store.putSession(id, { ...s, state: 'attested', token }, expiresAt);
    await audit(`session:${id}`, 'kbs.attest', s.tee, outcome.verdict.status, { evidenceDigest: digest, policy: service.policyIdOf(outcome), failures: outcome.verdict.failures.map((f) => f.code) });
    setCookie(reply, id, expiresAt);
    return { token };
  });

  const tokenOf = async (req: FastifyRequest): Promise<string> => {
    const id = readCookie(req.headers.cookie, KBS_SESSION_COOKIE);
    if (id) {
      const s = (await store.getSession(id, service.now())) as SessionData | undefined;
      if (s?.state === 'attested' && s.token) return s.token;
    }
    const m = /^Bearer\s+(\S+)$/.exec(req.headers.authorization ?? '');
    if (m) return m[1];
    throw new KbsError('TokenNotFound', 'no attestation token: attest first (session cookie) or send Authorization: Bearer <token>');
  };

  app.get('/v0/resource/*', async (req, reply) => {
    const path = resourcePath(req.params);
    const now = service.now();
    const token = await tokenOf(req);
    let claims: JWTPayload;
    try {
      claims = await service.tokens.verify(token, now);
    } catch (e) {
      await audit('unknown', 'resource.get', path, 'denied', { reason: `token rejected: ${(e as Error).message}` });
      throw new KbsError('TokenVerifierError', `attestation token rejected: ${(e as Error).message}`);
    }
    const facts = factsOf(claims);
    const who = `tee:${facts.tee ?? 'unknown'}`;
    const pdoc = await store.getDocument('resource-policy', RESOURCE_POLICY_ID);
    const policyRef = pdoc ? `${RESOURCE_POLICY_ID}@v${pdoc.version}` : `${RESOURCE_POLICY_ID}@default-deny`;
    const decision = pdoc ? decide(parseResourcePolicy(pdoc.body), path, facts) : { allow: false, reason: 'no resource policy is set (default deny)' };
    const auditDetails = { evidenceDigest: facts.evidenceDigest, status: facts.status, policy: policyRef, reason: decision.reason };
    if (!decision.allow) {
      await audit(who, 'resource.get', path, 'denied', auditDetails);
      throw new KbsError('PolicyDeny', `resource policy denies ${path}: ${decision.reason}`);
    }
    const key = teeKeyOf(claims);
    if (!key) {
      await audit(who, 'resource.get', path, 'denied', { ...auditDetails, reason: 'token carries no TEE public key' });
      throw new KbsError('JweError', 'the attestation token carries no TEE public key to encrypt the resource to');
    }
    const r = await store.getResource(path);
    if (!r) {
      await audit(who, 'resource.get', path, 'absent', auditDetails);
      throw new KbsError('PluginInternalError', `resource ${path} not found`);
    }
    const jwe = encryptResource(key, r.value);
    await audit(who, 'resource.get', path, 'released', { ...auditDetails, version: r.version });
    return reply.type('application/json').send(jwe);
  });

  app.post('/v0/resource/*', adminFirst, async (req) => {
    const who = await admin(req);
    const path = resourcePath(req.params);
    const body = req.body;
    const bytes = Buffer.isBuffer(body) ? body : typeof body === 'string' ? Buffer.from(body) : Buffer.from(JSON.stringify(body ?? ''));
    const version = await store.putResource(path, bytes, service.now());
    await audit(who.subject, 'resource.put', path, 'ok', { version, bytes: bytes.length });
    return '';
  });

  app.delete('/v0/resource/*', adminFirst, async (req) => {
    const who = await admin(req);
    const path = resourcePath(req.params);
    const ok = await store.deleteResource(path);
    await audit(who.subject, 'resource.delete', path, ok ? 'ok' : 'absent', {});
    if (!ok) throw new KbsError('PluginInternalError', `resource ${path} not found`);
    return '';
  });

  app.post('/v0/resource-policy', adminFirst, async (req) => {
    const who = await admin(req);
    const text = b64urlText((req.body as Record<string, unknown> | undefined)?.policy, 'policy');
    parseResourcePolicy(text);
    const doc = await store.putDocument('resource-policy', RESOURCE_POLICY_ID, text, who.subject, service.now());
    await audit(who.subject, 'resource-policy.put', RESOURCE_POLICY_ID, 'ok', { version: doc.version });
    return '';
  });

  app.get('/v0/resource-policy', adminFirst, async (req) => {
    await admin(req);
    const doc = await store.getDocument('resource-policy', RESOURCE_POLICY_ID);
    return { policy: doc ? Buffer.from(doc.body).toString('base64url') : null, version: doc?.version ?? null };
  });

  app.post('/v0/attestation-policy', adminFirst, async (req) => {
    const who = await admin(req);
    const b = (req.body ?? {}) as Record<string, unknown>;
    const id = typeof b.policy_id === 'string' && SEGMENT.test(b.policy_id) ? b.policy_id : 'default';
    const text = b64urlText(b.policy, 'policy');
    try {
      parseRulePolicy(text);
    } catch (e) {
      const hint = b.type === 'rego' ? ' (Rego is not supported: send a Coffer YAML/JSON policy)' : '';
      throw new KbsError('ParsePolicyError', `${e instanceof PolicyError ? e.message : 'invalid policy'}${hint}`);
    }
    const doc = await store.putDocument('policy', id, text, who.subject, service.now());
    await audit(who.subject, 'policy.put', id, 'ok', { version: doc.version, via: 'kbs' });
    return '';
  });

}
