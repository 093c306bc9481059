import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { JWTPayload } from 'jose';
import type { TeeType } from '../tee/common/claims.js';
import { parseRulePolicy } from '../policy/rules.js';
import { PolicyError } from '../policy/load.js';
import type { AdminAuth, AdminIdentity } from '../attestation/admin-auth.js';
import { HttpProblem } from '../attestation/problem.js';
import { isKbsAdminRequest } from '../attestation/admin-paths.js';
import type { AttestationService } from '../attestation/service.js';
import { installKbsErrorHandlers, KbsError, sendKbsError } from './errors.js';
import { encryptResource, type TeePubKey } from './jwe.js';
import {
  checkAttestedTeePubKey, KBS_SESSION_COOKIE, parseAttestation, parseRequest, parseTeePubKey, primaryEvidenceInput, readCookie, runtimeDataBinding,
} from './protocol.js';
import { alwaysDenied, decide, parseResourcePolicy, type TokenFacts } from './resource-policy.js';

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

/** A token's id in the audit log: the first 16 hex digits of its SHA-256 (KBS tokens carry no jti; this names any token the same way). */
export function tokenId(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 16);
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

const TIERS: Record<string, number> = { affirming: 2, warning: 32, contraindicated: 96 };

/** The token's status is its worst submod's (EAR); a submod without a known status makes the whole token unknown. */
function worstStatus(submods: Record<string, Record<string, unknown>>): string | undefined {
  let worst: string | undefined;
  const all = Object.values(submods);
  if (all.length === 0) return undefined;
  for (const sub of all) {
    const s = sub?.['ear.status'];
    if (typeof s !== 'string' || !(s in TIERS)) return undefined;
    if (worst === undefined || TIERS[s] > TIERS[worst]) worst = s;
  }
  return worst;
}

function factsOf(claims: JWTPayload): TokenFacts & { evidenceDigest?: string } {
  const submods = (claims.submods ?? {}) as Record<string, Record<string, unknown>>;
  const [name, sub] = Object.entries(submods)[0] ?? [];
  const ae = (sub?.['ear.veraison.annotated-evidence'] ?? {}) as Record<string, unknown>;
  // KBS tokens keep normalized claims under `coffer`; /v1 tokens carry them as the annotated evidence itself.
  const norm = (name === 'cpu0' ? ae.coffer : ae) as { tee?: string; measurements?: Record<string, string> } | undefined;
  const imgs = (ae.runtime_data_claims as Record<string, unknown> | undefined)?.['image-digests'];
  return {
    tee: norm?.tee, status: worstStatus(submods), measurements: norm?.measurements ?? {},
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
      const detail = e instanceof HttpProblem ? e.detail : 'admin authentication failed';
      // Every refusal is audited; the path only (no query, no body: nothing of it was read).
      await audit('unauthenticated', 'kbs.admin', `${req.method} ${req.url.split('?')[0].slice(0, 256)}`, 'denied', { reason: detail });
      throw new KbsError('AdminAuthAccess', detail);
    }
  };
  // Admin routes authenticate in onRequest, before the body is even parsed: an unauthenticated caller learns nothing.
  // The identity is kept on the request so the handler does not verify the token a second time.
  const adminIds = new WeakMap<FastifyRequest, AdminIdentity>();
  const adminFirst = { onRequest: async (req: FastifyRequest) => void (adminIds.has(req) || adminIds.set(req, await admin(req))) };
  // Also every admin-looking request no route matches (its 404 would otherwise come first).
  app.addHook('onRequest', async (req) => {
    if (isKbsAdminRequest(req.method, req.url)) adminIds.set(req, await admin(req));
  });
  const adminOf = async (req: FastifyRequest) => adminIds.get(req) ?? admin(req);
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
      await audit(`attester@${req.ip}`, 'kbs.auth', r.tee, 'rejected', { detail: `TEE ${r.tee} is not enabled on this KBS` });
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
    if (!id || !s) {
      await audit(`attester@${req.ip}`, 'kbs.attest', 'unknown', 'rejected', { detail: 'no live KBS session' });
      throw new KbsError('SessionExpired', 'no live KBS session: POST /kbs/v0/auth first (sessions last 5 minutes)');
    }
    const expiresAt = s.expiresAt;
    if (s.state === 'attested' && s.token) {
      setCookie(reply, id, expiresAt);
      return { token: s.token };
    }
    let a;
    try {
      a = parseAttestation(req.body);
    } catch (e) {
      if (e instanceof KbsError) await audit(`session:${id}`, 'kbs.attest', s.tee, 'rejected', { detail: e.detail });
      throw e;
    }
    if (a['runtime-data'].nonce !== s.nonce) {
      await audit(`session:${id}`, 'kbs.attest', s.tee, 'rejected', { detail: 'runtime-data nonce does not match the session challenge' });
      throw new KbsError('AttestationError', 'runtime-data nonce does not match the session challenge');
    }
    try {
      checkAttestedTeePubKey(a['runtime-data']['tee-pubkey']);
    } catch (e) {
      if (e instanceof KbsError) await audit(`session:${id}`, 'kbs.attest', s.tee, 'rejected', { detail: e.detail });
      throw e;
    }
    const tee = s.cofferTee as TeeType;
    let input;
    try {
      input = primaryEvidenceInput(tee, a['tee-evidence'].primary_evidence);
    } catch (e) {
      if (e instanceof KbsError) await audit(`session:${id}`, 'kbs.attest', s.tee, 'rejected', { detail: e.detail });
      throw e;
    }
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
    await audit(`session:${id}`, 'kbs.attest', s.tee, outcome.verdict.status, { evidenceDigest: digest, policy: service.policyIdOf(outcome), failures: outcome.verdict.failures.map((f) => f.code), ...service.tcbDetails(outcome), tokenId: tokenId(token) });
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
    let path: string;
    try {
      path = resourcePath(req.params);
    } catch (e) {
      if (e instanceof KbsError) await audit('unknown', 'resource.get', String((req.params as Record<string, string>)['*'] ?? '').slice(0, 256), 'denied', { reason: e.detail });
      throw e;
    }
    const now = service.now();
    let token: string;
    try {
      token = await tokenOf(req);
    } catch (e) {
      await audit('unknown', 'resource.get', path, 'denied', { reason: 'no attestation token' });
      throw e;
    }
    let claims: JWTPayload;
    try {
      claims = await service.tokens.verify(token, now);
    } catch (e) {
      await audit('unknown', 'resource.get', path, 'denied', { reason: `token rejected: ${(e as Error).message}`, rule: null, tokenId: tokenId(token) });
      throw new KbsError('TokenVerifierError', `attestation token rejected: ${(e as Error).message}`);
    }
    const facts = factsOf(claims);
    const who = `tee:${facts.tee ?? 'unknown'}`;
    const pdoc = await store.getDocument('resource-policy', RESOURCE_POLICY_ID);
    const policyRef = pdoc ? `${RESOURCE_POLICY_ID}@v${pdoc.version}` : `${RESOURCE_POLICY_ID}@default-deny`;
    // Trust before policy: a contraindicated token is refused even where no policy (or a broken one) is stored.
    const never = alwaysDenied(facts);
    let decision: ReturnType<typeof decide>;
    try {
      decision = never ? { allow: false, reason: never } : pdoc ? decide(parseResourcePolicy(pdoc.body), path, facts) : { allow: false, reason: 'no resource policy is set (default deny)' };
    } catch (e) {
      await audit(who, 'resource.get', path, 'denied', { evidenceDigest: facts.evidenceDigest, status: facts.status, policy: policyRef, reason: `stored resource policy unusable: ${(e as Error).message}`, tokenId: tokenId(token) });
      throw e;
    }
    // tokenId: a fingerprint of the token (never the token), so a refusal can be matched to the attestation that issued it.
    const auditDetails = { evidenceDigest: facts.evidenceDigest, status: facts.status, policy: policyRef, rule: decision.rule ?? null, reason: decision.reason, tokenId: tokenId(token) };
    if (!decision.allow) {
      await audit(who, 'resource.get', path, 'denied', auditDetails);
      // Trustee's PolicyDeny detail is "Access denied by policy"; Coffer appends the reason.
      throw new KbsError('PolicyDeny', `Access denied by policy: ${path}: ${decision.reason}`);
    }
    let key: TeePubKey | undefined;
    try {
      key = teeKeyOf(claims);
    } catch (e) {
      await audit(who, 'resource.get', path, 'denied', { ...auditDetails, reason: `token TEE key unusable: ${(e as Error).message}` });
      throw e;
    }
    if (!key) {
      await audit(who, 'resource.get', path, 'denied', { ...auditDetails, reason: 'token carries no TEE public key' });
      throw new KbsError('JweError', 'the attestation token carries no TEE public key to encrypt the resource to');
    }
    const r = await store.getResource(path);
    if (!r) {
      await audit(who, 'resource.get', path, 'absent', auditDetails);
      throw new KbsError('PluginInternalError', `resource ${path} not found`);
    }
    let jwe;
    try {
      jwe = encryptResource(key, r.value);
    } catch (e) {
      await audit(who, 'resource.get', path, 'denied', { ...auditDetails, reason: `not encrypted: ${(e as Error).message}` });
      throw e;
    }
    await audit(who, 'resource.get', path, 'released', { ...auditDetails, version: r.version });
    return reply.type('application/json').send(jwe);
  });

  app.post('/v0/resource/*', adminFirst, async (req) => {
    const who = await adminOf(req);
    const path = resourcePath(req.params);
    const body = req.body;
    const bytes = Buffer.isBuffer(body) ? body : typeof body === 'string' ? Buffer.from(body) : Buffer.from(JSON.stringify(body ?? ''));
    const version = await store.putResource(path, bytes, service.now());
    await audit(who.subject, 'resource.put', path, 'ok', { version, bytes: bytes.length });
    return '';
  });

  app.delete('/v0/resource/*', adminFirst, async (req) => {
    const who = await adminOf(req);
    const path = resourcePath(req.params);
    const ok = await store.deleteResource(path);
    await audit(who.subject, 'resource.delete', path, ok ? 'ok' : 'absent', {});
    if (!ok) throw new KbsError('PluginInternalError', `resource ${path} not found`);
    return '';
  });

  app.post('/v0/resource-policy', adminFirst, async (req) => {
    const who = await adminOf(req);
    const text = b64urlText((req.body as Record<string, unknown> | undefined)?.policy, 'policy');
    parseResourcePolicy(text);
    const doc = await store.putDocument('resource-policy', RESOURCE_POLICY_ID, text, who.subject, service.now());
    await audit(who.subject, 'resource-policy.put', RESOURCE_POLICY_ID, 'ok', { version: doc.version });
    return '';
  });

  app.get('/v0/resource-policy', adminFirst, async (req) => {
    await adminOf(req);
    const doc = await store.getDocument('resource-policy', RESOURCE_POLICY_ID);
    return { policy: doc ? Buffer.from(doc.body).toString('base64url') : null, version: doc?.version ?? null };
  });

  app.post('/v0/attestation-policy', adminFirst, async (req) => {
    const who = await adminOf(req);
    const b = (req.body ?? {}) as Record<string, unknown>;
    // An invalid id is refused: silently falling back to 'default' let `--id 'bad id!'` overwrite the default policy.
    if (b.policy_id !== undefined && !(typeof b.policy_id === 'string' && SEGMENT.test(b.policy_id))) {
      throw new KbsError('ParsePolicyError', `policy_id ${JSON.stringify(b.policy_id).slice(0, 80)} is not a valid id (${SEGMENT.source})`);
    }
    const id = (b.policy_id as string | undefined) ?? 'default';
    const text = b64urlText(b.policy, 'policy');
    if (text.trim() === '') throw new KbsError('ParsePolicyError', 'the policy is empty');
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
