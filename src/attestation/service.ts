import { hash as oneShotHash, randomUUID } from 'node:crypto';
import type { JWK } from 'jose';
import type { Claims, TeeType } from '../tee/common/claims.js';
import type { EvidenceInput, VerifyOptions } from '../tee/common/verifier.js';
import { canonicalJson } from '../tee/common/jcs.js';
import type { VerifierRegistry } from '../tee/registry.js';
import type { AkTrust } from '../tee/tpm/verify/ak-trust.js';
import { verifyEvidenceWith, type VerificationResult } from '../tee/verify-evidence.js';
import { evaluatePolicy, type PolicyVerdict } from '../policy/rules.js';
import type { Store } from '../store/types.js';
import type { CollateralCache } from './collateral.js';
import type { UpstreamCollateral } from './upstream-collateral.js';
import { NONCE_SCOPE, type NonceService } from './nonces.js';
import { HttpProblem } from './problem.js';
import { PolicyCache, type ResolvedPolicy } from './policies.js';
import type { TokenIssuer } from './tokens.js';
import { Metrics } from './metrics.js';
import type { TpmEnrolment } from './tpm-enrol.js';
import { checkTeePublicKey, TeeKeyError } from '../tee/common/tee-pubkey.js';
import { CryptoBatch } from './crypto-batch.js';

export const EAR_PROFILE = 'tag:github.com,2023:veraison/ear';
export const VERIFIER_ID = { developer: 'https://github.com/coffer-dev/coffer', build: 'coffer 0.1.0' };

export interface AttestationServiceOptions {
  store: Store;
  registry: VerifierRegistry;
  tokens: TokenIssuer;
  nonces: NonceService;
  collateral?: CollateralCache;
  /** Intel PCS / AMD KDS collateral for real TEEs, cached in the store (see UpstreamCollateral). */
  upstream?: UpstreamCollateral;
  /**
   * Turns cached collateral (store key → bytes) into the options a TEE's verifier reads (e.g. PCS items → `dcap`,
   * KDS certificates → `snp`). Default: `{ collateral: entries }`.
   */
  collateralOptions?: (tee: TeeType, entries: Record<string, Uint8Array>) => Record<string, unknown>;
  /** Extra verifier options (e.g. `{ sample: { devKeys } }`). */
  verifyOptions?: Record<string, unknown>;
  /**
   * TPM AK enrolment: its registry is the only AK trust of the `tpm` verifier here (it replaces any
   * `verifyOptions.tpm.akTrust`): an AK that is neither enrolled nor pinned is TPM_AK_UNTRUSTED.
   */
  tpm?: TpmEnrolment;
  /** Dev mode (`coffer up --dev`): reference values marked `dev` may be used. */
  dev?: boolean;
  clock?: () => number;
  /**
   * Where evidence signatures are checked (verifier option `verifySignature`) and, when the TokenIssuer was given
   * the same one, tokens signed: requests of one event-loop turn share a batch (see crypto-batch.ts). Default: a
   * batch of this service's own; null: every check at once; a `verifySignature` in verifyOptions wins.
   */
  crypto?: CryptoBatch | null;
}

export interface AppraisalOutcome {
  tee: TeeType;
  claims: Claims;
  verdict: PolicyVerdict;
  policy: ResolvedPolicy;
  evidenceDigest: string;
  staleCollateral: string[];
}

export interface AttestRequest {
  tee: string;
  evidence: string;
  attachments?: Record<string, string>;
  nonce: string;
  runtimeData?: unknown;
  publicKey?: JWK;
  policyId?: string;
  /** Becomes the token's `aud`. */
  audience?: string;
}

export interface AttestResponse {
  token: string;
  status: string;
  failures: PolicyVerdict['failures'];
  warnings: string[];
}

/**
 * Strict base64 / base64url. Node's decoder skips characters outside the alphabet, so a decoded length short of
 * what the text's length implies means the text held something else: checked that way instead of a regex pass
 * over every character (evidence is several KB on every attestation). Padding only at the end, at most two.
 */
export function decodeBase64(s: string, what: string): Uint8Array {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 61 /* = */) end--;
  if (s.length - end > 2 || end % 4 === 1) throw badEncoding(what);
  const buf = Buffer.from(s, 'base64'); // accepts both alphabets
  if (buf.length !== Math.floor((end * 3) / 4)) throw badEncoding(what);
  // Small Buffers are views of Node's shared pool: copied. A Buffer with its own ArrayBuffer (evidence, usually
  // above the pool's size) is re-viewed as a plain Uint8Array without copying.
  return buf.byteOffset === 0 && buf.buffer.byteLength === buf.length ? new Uint8Array(buf.buffer, 0, buf.length) : new Uint8Array(buf);
}

function badEncoding(what: string): HttpProblem {
  return new HttpProblem(400, 'bad-encoding', 'Bad encoding', `${what} is not base64`);
}

/** A public JWK the token can carry in `cnf`: known key type, no private members. */
export function checkPublicJwk(k: unknown, what: string): JWK {
  if (typeof k !== 'object' || k === null || Array.isArray(k)) throw new HttpProblem(400, 'bad-public-key', 'Bad public key', `${what} must be a JWK object`);
  const j = k as Record<string, unknown>;
  if (!['EC', 'RSA', 'OKP'].includes(j.kty as string)) throw new HttpProblem(400, 'bad-public-key', 'Bad public key', `${what} has unsupported kty ${String(j.kty)}`);
  for (const p of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) {
    if (p in j) throw new HttpProblem(400, 'bad-public-key', 'Bad public key', `${what} contains private key material ('${p}')`);
  }
  // The KBS encrypts resources to this key (cnf.jwk): refuse weak or off-curve keys now, not after a release.
  if (j.kty === 'OKP') {
    if (!['Ed25519', 'X25519'].includes(j.crv as string) || typeof j.x !== 'string' || Buffer.from(j.x, 'base64url').length !== 32) {
      throw new HttpProblem(400, 'bad-public-key', 'Bad public key', `${what}: OKP keys must be Ed25519 or X25519 with a 32-byte x`);
    }
  } else {
    try {
      checkTeePublicKey(j, { requireAlg: false });
    } catch (e) {
      if (e instanceof TeeKeyError) throw new HttpProblem(400, 'bad-public-key', 'Bad public key', `${what}: ${e.message}`, { code: e.code });
      throw e;
    }
  }
  return j as JWK;
}

/**
 * The binding rule of `/v1/attest`. N = the challenge nonce's 32 bytes. Without runtime data or key, the report
 * data must start with N or SHA-256/384/512(N). With them, B = N || UTF-8(JCS({"runtime-data": r, "tee-pubkey": k}))
 * (absent members omitted) and the report data must start with SHA-256/384/512(B) (or B itself when it fits).
 */
export function bindingValue(nonce: Uint8Array, runtimeData?: unknown, publicKey?: JWK): Uint8Array {
  if (runtimeData === undefined && publicKey === undefined) return nonce;
  const extra = Buffer.from(canonicalJson({ 'runtime-data': runtimeData, 'tee-pubkey': publicKey }), 'utf8');
  return new Uint8Array(Buffer.concat([nonce, extra]));
}

/** The verifier's first error code of a rejection (e.g. TPM_AK_UNTRUSTED), for the audit record. */
function firstCode(e: HttpProblem): string | undefined {
  const errs = e.extra.errors as { code?: unknown }[] | undefined;
  return typeof errs?.[0]?.code === 'string' ? errs[0].code : undefined;
}

/** A service built without enrolment trusts no AK: every TPM quote is TPM_AK_UNTRUSTED. */
const NO_AK_TRUST: AkTrust = { kind: 'enrolled', lookup: async () => undefined };

/** Verification + appraisal + token issuance, shared by the HTTP API and the KBS (Trustee's built-in AS shape). */
export class AttestationService {
  readonly store: Store;
  readonly tokens: TokenIssuer;
  readonly nonces: NonceService;
  readonly registry: VerifierRegistry;
  readonly collateral?: CollateralCache;
  readonly upstream?: UpstreamCollateral;
  readonly tpm?: TpmEnrolment;
  readonly metrics = new Metrics();
  readonly crypto?: CryptoBatch;
  private readonly clock: () => number;
  private readonly policies: PolicyCache;
  /** The registry's TEEs (a registry never changes): a set lookup per request instead of a list copy. */
  private readonly tees: ReadonlySet<string>;
  /** `opts.tpm` when the caller's verifyOptions.tpm reaches closeTrust unchanged: built once, frozen. */
  private readonly tpmOptions: Readonly<Record<string, unknown>>;
  /** policyIdOf's text per (frozen) resolved policy. */
  private readonly policyIds = new WeakMap<ResolvedPolicy, string>();

  constructor(private readonly o: AttestationServiceOptions) {
    this.store = o.store;
    this.tokens = o.tokens;
    this.nonces = o.nonces;
    this.registry = o.registry;
    this.collateral = o.collateral;
    this.upstream = o.upstream;
    this.tpm = o.tpm;
    this.clock = o.clock ?? Date.now;
    this.crypto = o.crypto === null ? undefined : (o.crypto ?? new CryptoBatch());
    this.policies = new PolicyCache(o.store);
    this.tees = new Set(o.registry.list());
    // The AK trust closes over the enrolment registry only (no per-request state): one object for every request.
    this.tpmOptions = Object.freeze({ ...(o.verifyOptions?.tpm as object | undefined), akTrust: Object.freeze(o.tpm ? o.tpm.akTrust() : NO_AK_TRUST) });
  }

  now(): number {
    return this.clock();
  }

  supportedTees(): TeeType[] {
    return this.registry.list();
  }

  checkTee(tee: string): TeeType {
    if (!this.tees.has(tee)) {
      throw new HttpProblem(400, 'unknown-tee', 'Unknown TEE', `TEE '${tee}' is not supported here (supported: ${this.registry.list().join(', ')})`);
    }
    return tee as TeeType;
  }

  async verifyAndAppraise(tee: TeeType, input: EvidenceInput, binding: Uint8Array | undefined, policyId?: string): Promise<AppraisalOutcome> {
    const now = this.clock();
    const policy = await this.policies.resolve(policyId);
    // Object.assign, not a spread with conditional members: same keys in the same order, without V8's slow
    // generic spread path on every attestation.
    const opts: VerifyOptions = Object.assign({}, this.o.verifyOptions);
    opts.tee = tee;
    opts.at = new Date(now);
    if (binding) opts.nonce = binding;
    if (this.crypto) opts.verifySignature ??= this.crypto.verify;
    // The store-backed cache is asynchronous; without one (the usual service) nothing here awaits.
    let stale = this.collateral ? await this.addCachedCollateral(tee, opts, now) : [];
    const upstreamStale = this.addUpstreamCollateral(tee, opts);
    this.closeTrust(tee, opts);
    const r = await verifyEvidenceWith(this.registry, input, opts);
    if (upstreamStale) stale = [...stale, ...upstreamStale];
    // A CRL nobody supplied (not in the evidence, not configured, not from KDS) is missing collateral.
    for (const e of r.errors) if (e.code === 'CRL_MISSING') Object.assign(e, { code: 'COLLATERAL_MISSING', message: `${e.message} (AMD KDS CRL required)` });
    const evidenceDigest = oneShotHash('sha256', input.evidence, 'hex');
    if (!r.verified || !r.claims) {
      const code = r.errors[0]?.code;
      const detail = r.errors.map((e) => `${e.code}: ${e.message}`).join('; ');
      if (code === 'UNSUPPORTED_TEE') throw new HttpProblem(400, 'unknown-tee', 'Unknown TEE', detail);
      if (code === 'NONCE_MISMATCH') throw new HttpProblem(400, 'nonce-mismatch', 'Evidence not bound to the nonce', detail, { evidenceDigest });
      throw new HttpProblem(422, 'evidence-rejected', 'Evidence rejected', detail, { errors: r.errors, evidenceDigest });
    }
    const verdict = evaluatePolicy(r.claims, policy.referenceValues, policy.rules, { devMode: this.o.dev === true });
    if (stale.length) {
      // Stale collateral: the verdict can be right but is not current; never better than warning.
      verdict.failures.push({ rule: 'collateral', code: 'COLLATERAL_STALE', status: 'warning', message: `stale collateral (served from the cache): ${stale.join('; ')}` });
      verdict.trustVector.hardware = Math.max(verdict.trustVector.hardware, 32);
      if (verdict.status === 'affirming') verdict.status = 'warning';
    }
    return { tee, claims: r.claims, verdict, policy, evidenceDigest, staleCollateral: stale };
  }

  /**
   * What the services require beyond the verifier library's defaults. A TPM AK is trusted only through the
   * enrolment registry (or an operator pin it holds), never because the evidence attaches it; an SNP chain must be
   * checked for revocation.
   */
  private closeTrust(tee: TeeType | undefined, opts: VerifyOptions): void {
    // What verifyOptions gave, unless collateral options replaced it: then merged here as before.
    opts.tpm = opts.tpm === this.o.verifyOptions?.tpm ? this.tpmOptions : { ...(opts.tpm as object | undefined), akTrust: this.tpmOptions.akTrust };
    if (tee === 'snp' || tee === 'az-snp-vtpm') opts.snp = { ...((opts.snp as Record<string, unknown> | undefined) ?? {}), requireCrl: true };
  }

  /** Cached collateral and the upstream cache's options into `opts` (what is already there wins). */
  private async addCollateral(tee: TeeType, opts: VerifyOptions, now: number): Promise<{ stale: string[]; upstreamStale?: string[] }> {
    const stale = this.collateral ? await this.addCachedCollateral(tee, opts, now) : [];
    return { stale, upstreamStale: this.addUpstreamCollateral(tee, opts) };
  }

  /** The configured collateral cache's entries for `tee` into `opts`; returns its stale reasons. */
  private async addCachedCollateral(tee: TeeType, opts: VerifyOptions, now: number): Promise<string[]> {
    const c = await this.collateral!.forTee(tee, now);
    if (Object.keys(c.entries).length) Object.assign(opts, this.o.collateralOptions ? this.o.collateralOptions(tee, c.entries) : { collateral: c.entries });
    return c.stale;
  }

  /** The upstream cache's options into `opts`; returns the list its provider fills with stale reasons. */
  private addUpstreamCollateral(tee: TeeType, opts: VerifyOptions): string[] | undefined {
    const up = this.upstream?.forRequest(tee);
    if (!up) return undefined;
    // Caller-given collateral or providers (verifyOptions) win; the upstream cache fills the gap.
    for (const k of Object.keys(up.options)) {
      const v = up.options[k];
      const given = opts[k] as Record<string, unknown> | undefined;
      opts[k] = given ? { ...(v as object), ...given } : v;
    }
    return up.stale;
  }

  /** TCB facts for the audit record: what the dashboard's fleet TCB view and stale-collateral view read. */
  tcbDetails(o: AppraisalOutcome): Record<string, unknown> {
    return { tcbStatus: o.claims.tcbStatus ?? null, advisories: o.claims.advisories, ...(o.staleCollateral.length ? { staleCollateral: o.staleCollateral } : {}) };
  }

  /**
   * The dashboard's Verify page: the same verifyEvidence as `coffer verify`, with this service's trust anchors and
   * verifier options (caller-given collateral wins over the cache), then appraisal against the default policy's
   * reference values. Nothing is stored, no nonce is consumed, no token is issued.
   */
  async inspect(input: EvidenceInput, o: { tee?: TeeType | 'auto'; at?: Date; collateral?: Record<string, unknown> } = {}): Promise<{ result: VerificationResult; verdict?: PolicyVerdict; policy?: string; staleCollateral: string[] }> {
    const now = this.clock();
    const opts: VerifyOptions = { ...this.o.verifyOptions, tee: o.tee ?? 'auto', at: o.at ?? new Date(now), ...o.collateral };
    let stale: string[] = [];
    let tee: TeeType | undefined;
    try {
      tee = !o.tee || o.tee === 'auto' ? this.registry.detect(input).tee : o.tee;
    } catch {
      tee = undefined; // unrecognized: verifyEvidenceWith reports it as the failed check
    }
    if (tee) {
      const c = await this.addCollateral(tee, opts, now);
      stale = [...c.stale, ...(c.upstreamStale ?? [])];
    }
    this.closeTrust(tee, opts);
    const result = await verifyEvidenceWith(this.registry, input, opts);
    if (!result.verified || !result.claims) return { result, staleCollateral: stale };
    const policy = await this.policies.resolve();
    return { result, verdict: evaluatePolicy(result.claims, policy.referenceValues, policy.rules), policy: policy.version === null ? `${policy.id}@builtin` : `${policy.id}@v${policy.version}`, staleCollateral: stale };
  }

  policyIdOf(o: AppraisalOutcome): string {
    // A resolved policy is frozen (PolicyCache), so its id text is a function of the object: built once per policy
    // version instead of twice per attestation (the EAR and the audit record).
    let s = this.policyIds.get(o.policy);
    if (s === undefined) {
      s = o.policy.version === null ? `${o.policy.id}@builtin` : `${o.policy.id}@v${o.policy.version}`;
      if (Object.isFrozen(o.policy)) this.policyIds.set(o.policy, s);
    }
    return s;
  }

  /** One EAR submod (appraisal) for the outcome. */
  appraisal(o: AppraisalOutcome, annotatedEvidence: unknown): Record<string, unknown> {
    // Built by assignment, members in the order the spread form gave (the token payload is pinned byte for byte).
    const claims: Record<string, unknown> = { failures: o.verdict.failures, warnings: o.verdict.warnings };
    const ref = o.policy.referenceValuesRef;
    if (ref) claims['reference-values'] = `${ref.id}@v${ref.version}`;
    return {
      'ear.status': o.verdict.status,
      'ear.trustworthiness-vector': o.verdict.trustVector,
      'ear.appraisal-policy-id': this.policyIdOf(o),
      'ear.veraison.annotated-evidence': annotatedEvidence,
      'ear.veraison.policy-claims': claims,
    };
  }

  async attest(req: AttestRequest, actor: string): Promise<AttestResponse> {
    const now = this.clock();
    let tee: TeeType;
    let evidence: Uint8Array;
    let publicKey: JWK | undefined;
    let nonceBytes: Uint8Array;
    const attachments: Record<string, Uint8Array> = {};
    try {
      tee = this.checkTee(req.tee);
      evidence = decodeBase64(req.evidence, 'evidence');
      if (req.attachments) for (const [k, v] of Object.entries(req.attachments)) attachments[k] = decodeBase64(v, `attachment ${k}`);
      publicKey = req.publicKey === undefined ? undefined : checkPublicJwk(req.publicKey, 'publicKey');
      nonceBytes = decodeBase64(req.nonce, 'nonce');
    } catch (e) {
      // Refused before verification (unknown or disabled TEE such as `sample` without --dev, a weak key): audited too.
      if (e instanceof HttpProblem) {
        await this.store.appendAudit({ at: now, actor, action: 'attest', target: String(req.tee).slice(0, 32), result: 'rejected', details: { type: e.slug, detail: e.detail } });
      }
      throw e;
    }
    // A nonce buys one verification attempt, success or not. A spent, expired or unknown nonce is refused before
    // any verification; the nonce is then consumed in the same commit as the attempt's audit record (one commit
    // per attestation instead of two), and no answer leaves before that commit. Two concurrent requests with one
    // nonce may both be verified, but only the one whose commit consumes it gets a token (the other gets 409).
    await this.nonces.check(req.nonce, now);
    const binding = bindingValue(nonceBytes, req.runtimeData, publicKey);
    let outcome: AppraisalOutcome;
    try {
      outcome = await this.verifyAndAppraise(tee, { evidence, attachments }, binding, req.policyId);
    } catch (e) {
      if (e instanceof HttpProblem) {
        await this.nonces.consumeWithAudit(req.nonce, now, {
          at: now, actor, action: 'attest', target: tee, result: 'rejected',
          details: { type: e.slug, ...(firstCode(e) ? { code: firstCode(e) } : {}), detail: e.detail, evidenceDigest: oneShotHash('sha256', evidence, 'hex') },
        });
      } else {
        await this.store.consumeNonce(req.nonce, NONCE_SCOPE, now).catch(() => undefined); // spent all the same
      }
      this.metrics.attestations.inc({ api: 'v1', tee, result: e instanceof HttpProblem ? e.slug : 'error' });
      throw e;
    }
    // Built by assignment (no spreads of conditional members), members in the order the token payload test pins.
    const claims: Record<string, unknown> = {
      eat_profile: EAR_PROFILE,
      'ear.verifier-id': VERIFIER_ID,
      eat_nonce: req.nonce,
      // jti: relying parties (the node-trust controller) name and order tokens by it; aud: who the token is for.
      jti: randomUUID(),
    };
    if (req.audience !== undefined) claims.aud = req.audience;
    // The runtime data is bound by the evidence (bindingValue), so it is a verified claim: echoed as Trustee's
    // runtime_data_claims in the annotated evidence (the node-trust controller reads the node name from it).
    const submods: Record<string, unknown> = {};
    submods[tee] = this.appraisal(outcome, req.runtimeData === undefined ? outcome.claims : { ...outcome.claims, runtime_data_claims: req.runtimeData });
    claims.submods = submods;
    if (publicKey) claims.cnf = { jwk: publicKey };
    // Signed (in the CryptoBatch's next run) while the commit below is in flight. The token leaves only after that
    // commit consumed the nonce; if the commit refuses it (409),
    // the token is dropped (hence the catch: no unhandled rejection), and a signature that fails is a 500 after
    // an audit record that says what the appraisal found.
    const tokenP = this.tokens.sign(claims, now);
    tokenP.catch(() => undefined);
    const failures = outcome.verdict.failures;
    const codes: string[] = new Array(failures.length);
    for (let i = 0; i < failures.length; i++) codes[i] = failures[i].code;
    // The audit details as tcbDetails gives them, without its spread.
    const details: Record<string, unknown> = {
      evidenceDigest: outcome.evidenceDigest, policy: this.policyIdOf(outcome), failures: codes,
      tcbStatus: outcome.claims.tcbStatus ?? null, advisories: outcome.claims.advisories,
    };
    if (outcome.staleCollateral.length) details.staleCollateral = outcome.staleCollateral;
    await this.nonces.consumeWithAudit(req.nonce, now, { at: now, actor, action: 'attest', target: tee, result: outcome.verdict.status, details });
    const token = await tokenP;
    this.metrics.attestations.inc({ api: 'v1', tee, result: outcome.verdict.status });
    return { token, status: outcome.verdict.status, failures: outcome.verdict.failures, warnings: outcome.verdict.warnings };
  }
}
