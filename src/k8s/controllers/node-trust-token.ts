/**
 * Node-trust tokens: an EAR token (JWT) from Coffer's attestation service that a node agent delivers to the
 * controller. Verified here against the service's JWKS — signature (ES256 by a published key), issuer, audience,
 * iat/exp, a jti — and reduced to a NodeReport: which node it names (the agent's runtime data, which the evidence
 * binds through the report data/extraData, echoed by the service as `runtime_data_claims`), and per TEE the
 * appraisal status, TCB status, advisories and measurements. Appraisal against the node policy is separate
 * (node-trust-appraise.ts); this module only establishes what the service vouched for.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';

// Identity rules live apart from the signature check (node-trust-identity.ts).
import { identityConflict, submodIdentity, type NodeIdentity } from './node-trust-identity.js';

export const NODE_TOKEN_MAX_BYTES = 256 * 1024;
const NODE_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export class NodeTokenError extends Error {
  constructor(
    readonly code: 'TOKEN_MALFORMED' | 'TOKEN_TOO_LARGE' | 'TOKEN_SIGNATURE' | 'TOKEN_CLAIMS' | 'TOKEN_EXPIRED' | 'TOKEN_UNKNOWN_KEY' | 'TOKEN_NODE_BINDING' | 'TOKEN_NODE_IDENTITY',
    message: string,
    /** TOKEN_NODE_IDENTITY: the node the token names (the one another node tried to speak for). */
    readonly node?: string,
  ) {
    super(message);
    this.name = 'NodeTokenError';
  }
}

export interface TeeAppraisal {
  tee: string;
  /** ear.status of the submod: affirming | warning | contraindicated | none. */
  status: string;
  tcbStatus?: string;
  advisories: string[];
  measurements: Record<string, string>;
  /** Failure codes the service recorded (policy-claims). */
  failures: string[];
  debug?: boolean;
  /** Who the service vouched the evidence's key belongs to (node-trust-identity.ts). */
  identity: NodeIdentity;
}

export interface NodeReport {
  node: string;
  tokenId: string;
  issuedAt: number; // ms
  expiresAt: number; // ms
  tees: TeeAppraisal[];
}

export interface NodeTokenOptions {
  issuer: string;
  audience: string;
  now: number;
  /** Allowed clock difference between service and controller, seconds (default 30). */
  clockToleranceSec?: number;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** The token's `kid` (undefined when the header does not parse); the JWKS source uses it to decide on a reload. */
export function tokenKid(token: string): string | undefined {
  try {
    const kid = JSON.parse(Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString('utf8'))?.kid;
    return typeof kid === 'string' ? kid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The service's published ES256 keys, imported once as KeyObjects (per token, jose's jwtVerify re-derives the
 * key lookup and costs about twice a bare verify; the controller verifies one token per node per interval).
 * Keys that are not EC P-256 signing keys for ES256 are left out, as jose's key selection would skip them.
 */
export class NodeKeyRing {
  private readonly keys: { kid?: string; key: KeyObject }[] = [];
  constructor(jwks: { keys: JWK[] }) {
    for (const k of jwks.keys ?? []) {
      if (!isObj(k) || k.kty !== 'EC' || k.crv !== 'P-256' || (k.alg !== undefined && k.alg !== 'ES256') || (k.use !== undefined && k.use !== 'sig')) continue;
      if (Array.isArray(k.key_ops) && !k.key_ops.includes('verify')) continue;
      try {
        this.keys.push({ kid: typeof k.kid === 'string' ? k.kid : undefined, key: createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: k.x as string, y: k.y as string }, format: 'jwk' }) });
      } catch {
        // A malformed key cannot verify anything: skipped, like jose's import failure.
      }
    }
  }
  /** Keys that may have signed a token with this kid (all, when the token names none). */
  candidates(kid: string | undefined): KeyObject[] {
    return this.keys.filter((k) => kid === undefined || k.kid === kid).map((k) => k.key);
  }
}

/** A key set: the JWKS document, or a NodeKeyRing made once from it. */
export type NodeKeySet = { keys: JWK[] } | NodeKeyRing;

const B64URL = /^[A-Za-z0-9_-]*$/;

function decodeJson(part: string, what: string): Obj {
  if (!B64URL.test(part)) throw new NodeTokenError('TOKEN_MALFORMED', `token: the ${what} is not base64url`);
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw new NodeTokenError('TOKEN_MALFORMED', `token: the ${what} is not JSON`);
  }
  if (!isObj(v)) throw new NodeTokenError('TOKEN_MALFORMED', `token: the ${what} is not a JSON object`);
  return v;
}

/**
 * JWS compact ES256 verification and the JWT claim checks (RFC 7515/7519, as jose's jwtVerify makes them, by hand
 * over node:crypto): protected header alg ES256 only, no crit, no b64=false; a 64-byte r‖s signature over
 * `header.payload` by one of the candidate keys; iss equal; aud equal or containing ours; exp, iat, jti required;
 * exp in the past (with tolerance) → expired; nbf in the future → refused.
 */
function verifyJwt(token: string, ring: NodeKeyRing, o: NodeTokenOptions): Obj {
  const dot1 = token.indexOf('.');
  const dot2 = dot1 < 0 ? -1 : token.indexOf('.', dot1 + 1);
  if (dot1 < 0 || dot2 < 0 || token.indexOf('.', dot2 + 1) >= 0) throw new NodeTokenError('TOKEN_MALFORMED', 'token: not a JWS compact serialization');
  const header = decodeJson(token.slice(0, dot1), 'protected header');
  if (header.alg !== 'ES256') throw new NodeTokenError('TOKEN_MALFORMED', `token: alg ${JSON.stringify(header.alg)} is not allowed (ES256 only)`);
  if (header.crit !== undefined) throw new NodeTokenError('TOKEN_MALFORMED', 'token: the crit header parameter is not supported');
  if (header.b64 !== undefined) throw new NodeTokenError('TOKEN_MALFORMED', 'token: the b64 header parameter is not supported');
  if (header.kid !== undefined && typeof header.kid !== 'string') throw new NodeTokenError('TOKEN_MALFORMED', 'token: kid is not a string');
  const keys = ring.candidates(header.kid as string | undefined);
  if (keys.length === 0) throw new NodeTokenError('TOKEN_UNKNOWN_KEY', `no published key matches the token's kid ${(header.kid as string | undefined) ?? '(none)'}`);
  const sigPart = token.slice(dot2 + 1);
  if (!B64URL.test(sigPart)) throw new NodeTokenError('TOKEN_MALFORMED', 'token: the signature is not base64url');
  const sig = Buffer.from(sigPart, 'base64url');
  const signed = Buffer.from(token.slice(0, dot2), 'ascii');
  // A wrong-length signature never verifies; node:crypto would say false as well.
  if (sig.length !== 64 || !keys.some((key) => verify('sha256', signed, { key, dsaEncoding: 'ieee-p1363' }, sig))) {
    throw new NodeTokenError('TOKEN_SIGNATURE', 'token signature does not verify');
  }
  const payload = decodeJson(token.slice(dot1 + 1, dot2), 'payload');
  const tol = o.clockToleranceSec ?? 30;
  const now = Math.floor(o.now / 1000);
  for (const c of ['exp', 'iat', 'jti', 'aud', 'iss']) if (payload[c] === undefined) throw new NodeTokenError('TOKEN_CLAIMS', `token claim ${c}: missing required "${c}" claim`);
  if (payload.iss !== o.issuer) throw new NodeTokenError('TOKEN_CLAIMS', 'token claim iss: unexpected "iss" claim value');
  const aud = payload.aud;
  if (!(aud === o.audience || (Array.isArray(aud) && aud.includes(o.audience)))) throw new NodeTokenError('TOKEN_CLAIMS', 'token claim aud: unexpected "aud" claim value');
  for (const c of ['exp', 'iat', 'nbf']) {
    if (payload[c] !== undefined && (typeof payload[c] !== 'number' || !Number.isFinite(payload[c]))) throw new NodeTokenError('TOKEN_CLAIMS', `token claim ${c}: "${c}" claim must be a number`);
  }
  if (payload.nbf !== undefined && (payload.nbf as number) > now + tol) throw new NodeTokenError('TOKEN_CLAIMS', 'token claim nbf: "nbf" claim timestamp check failed');
  if ((payload.exp as number) <= now - tol) throw new NodeTokenError('TOKEN_EXPIRED', 'token expired');
  return payload;
}

/** Verifies an EAR token for node trust and extracts the report; throws NodeTokenError with a stable code. */
export async function verifyNodeToken(token: string, jwks: NodeKeySet, o: NodeTokenOptions): Promise<NodeReport> {
  if (typeof token !== 'string' || token.length === 0) throw new NodeTokenError('TOKEN_MALFORMED', 'no token');
  if (token.length > NODE_TOKEN_MAX_BYTES) throw new NodeTokenError('TOKEN_TOO_LARGE', `token is ${token.length} bytes, more than ${NODE_TOKEN_MAX_BYTES}`);
  const payload = verifyJwt(token, jwks instanceof NodeKeyRing ? jwks : new NodeKeyRing(jwks), o);
  const iat = payload.iat as number;
  const exp = payload.exp as number;
  if (typeof payload.jti !== 'string' || payload.jti.length === 0 || payload.jti.length > 128) throw new NodeTokenError('TOKEN_CLAIMS', 'jti must be a non-empty string');
  if (iat * 1000 > o.now + (o.clockToleranceSec ?? 30) * 1000) throw new NodeTokenError('TOKEN_CLAIMS', 'token issued in the future');
  if (!(exp > iat)) throw new NodeTokenError('TOKEN_CLAIMS', 'exp is not after iat');
  if (!isObj(payload.submods) || Object.keys(payload.submods).length === 0) throw new NodeTokenError('TOKEN_CLAIMS', 'token has no submods');

  const tees: TeeAppraisal[] = [];
  let node: string | undefined;
  for (const [tee, sub] of Object.entries(payload.submods)) {
    if (!isObj(sub)) throw new NodeTokenError('TOKEN_CLAIMS', `submod ${tee} is not an object`);
    const ev = isObj(sub['ear.veraison.annotated-evidence']) ? sub['ear.veraison.annotated-evidence'] : {};
    const pc = isObj(sub['ear.veraison.policy-claims']) ? sub['ear.veraison.policy-claims'] : {};
    const rd = ev.runtime_data_claims;
    const named = isObj(rd) && typeof rd.node === 'string' ? rd.node : undefined;
    // Every submod must name the same node (composite evidence: each binds the same runtime data).
    if (named === undefined) throw new NodeTokenError('TOKEN_NODE_BINDING', `submod ${tee} carries no node name in its runtime data`);
    if (node !== undefined && named !== node) throw new NodeTokenError('TOKEN_NODE_BINDING', `submods name different nodes (${node}, ${named})`);
    node = named;
    // The name is the attester's to choose; the enrolled AK's name is the service's word (node-trust-identity.ts).
    const identity = submodIdentity(ev);
    const conflict = identityConflict(tee, identity, named);
    if (conflict) throw new NodeTokenError('TOKEN_NODE_IDENTITY', conflict, named);
    const measurements: Record<string, string> = {};
    if (isObj(ev.measurements)) for (const [k, v] of Object.entries(ev.measurements)) if (typeof v === 'string') measurements[k] = v.toLowerCase();
    tees.push({
      tee,
      status: typeof sub['ear.status'] === 'string' ? (sub['ear.status'] as string) : 'none',
      ...(typeof ev.tcbStatus === 'string' ? { tcbStatus: ev.tcbStatus } : {}),
      advisories: strings(ev.advisories),
      measurements,
      failures: Array.isArray(pc.failures) ? pc.failures.map((f) => (isObj(f) && typeof f.code === 'string' ? f.code : 'UNKNOWN')) : [],
      ...(typeof ev.debug === 'boolean' ? { debug: ev.debug } : {}),
      identity,
    });
  }
  if (!node || !NODE_NAME.test(node)) throw new NodeTokenError('TOKEN_NODE_BINDING', `node name ${JSON.stringify(node)} is not a valid Node name`);
  return { node, tokenId: payload.jti as string, issuedAt: iat * 1000, expiresAt: exp * 1000, tees };
}
