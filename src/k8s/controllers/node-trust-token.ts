/**
 * Node-trust tokens: an EAR token (JWT) from Coffer's attestation service that a node agent delivers to the
 * controller. Verified here against the service's JWKS — signature (ES256 by a published key), issuer, audience,
 * iat/exp, a jti — and reduced to a NodeReport: which node it names (the agent's runtime data, which the evidence
 * binds through the report data/extraData, echoed by the service as `runtime_data_claims`), and per TEE the
 * appraisal status, TCB status, advisories and measurements. Appraisal against the node policy is separate
 * (node-trust-appraise.ts); this module only establishes what the service vouched for.
 */
import { createLocalJWKSet, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWK } from 'jose';

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
    const kid = decodeProtectedHeader(token).kid;
    return typeof kid === 'string' ? kid : undefined;
  } catch {
    return undefined;
  }
}

/** Verifies an EAR token for node trust and extracts the report; throws NodeTokenError with a stable code. */
/** A key set: the JWKS document, or a resolver made once from it (createLocalJWKSet imports each key once). */
export type NodeKeySet = { keys: JWK[] } | ReturnType<typeof createLocalJWKSet>;

export async function verifyNodeToken(token: string, jwks: NodeKeySet, o: NodeTokenOptions): Promise<NodeReport> {
  if (typeof token !== 'string' || token.length === 0) throw new NodeTokenError('TOKEN_MALFORMED', 'no token');
  if (token.length > NODE_TOKEN_MAX_BYTES) throw new NodeTokenError('TOKEN_TOO_LARGE', `token is ${token.length} bytes, more than ${NODE_TOKEN_MAX_BYTES}`);
  let payload: Obj;
  try {
    ({ payload } = await jwtVerify(token, typeof jwks === 'function' ? jwks : createLocalJWKSet(jwks), {
      issuer: o.issuer,
      audience: o.audience,
      algorithms: ['ES256'],
      currentDate: new Date(o.now),
      clockTolerance: o.clockToleranceSec ?? 30,
      requiredClaims: ['exp', 'iat', 'jti', 'aud', 'iss'],
    }));
  } catch (e) {
    if (e instanceof joseErrors.JWTExpired) throw new NodeTokenError('TOKEN_EXPIRED', 'token expired');
    if (e instanceof joseErrors.JWKSNoMatchingKey) throw new NodeTokenError('TOKEN_UNKNOWN_KEY', `no published key matches the token's kid ${tokenKid(token) ?? '(none)'}`);
    if (e instanceof joseErrors.JWSSignatureVerificationFailed) throw new NodeTokenError('TOKEN_SIGNATURE', 'token signature does not verify');
    if (e instanceof joseErrors.JWTClaimValidationFailed) throw new NodeTokenError('TOKEN_CLAIMS', `token claim ${e.claim}: ${e.message}`);
    if (e instanceof joseErrors.JOSEError) throw new NodeTokenError('TOKEN_MALFORMED', `token: ${e.message}`);
    throw e;
  }
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
