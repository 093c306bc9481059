import { createHash, randomBytes, timingSafeEqual, X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CofferError, EvidenceFormatError, VerificationError } from '../tee/common/errors.js';
import { TPMA_OBJECT, attributeNames, hashAlgById } from '../tee/tpm/abi/constants.js';
import { objectName, parseAkPublic, parsePublic2b, publicToKeyObject, serializePublic2b, type TpmtPublic } from '../tee/tpm/abi/public.js';
import { checkAkAttributes } from '../tee/tpm/verify/ak-attributes.js';
import { akFingerprint, type AkTrust, type EnrolledAk } from '../tee/tpm/verify/ak-trust.js';
import { makeCredential } from '../tee/tpm/verify/credential.js';
import { verifyEkCertificate } from '../tee/tpm/verify/ek-cert.js';
import { toHex } from '../tee/common/hex.js';
import type { Store, TpmAkRecord } from '../store/types.js';
import { HttpProblem } from './problem.js';
import { decodeBase64 } from './service.js';

/**
 * TPM attestation-key enrolment, modelled on Keylime's registrar:
 *  1. `enrol`: the attester sends its EK certificate, EK public area and AK public area. The EK certificate must
 *     chain to a TPM manufacturer CA the operator configured and certify that EK; the AK must be a fixedTPM,
 *     fixedParent, sensitiveDataOrigin restricted signing key. The service runs TPM2_MakeCredential to the EK for
 *     Name(AK) and keeps only a hash of the secret, under a one-time challenge id.
 *  2. `activate`: only a TPM holding that EK *and* an object with that Name can run TPM2_ActivateCredential and
 *     return the secret; the AK is then registered and trusted for quotes until an admin revokes it.
 * No CA configured → enrolment refused (fail closed). Every outcome is audited.
 */
export interface TpmEnrolmentOptions {
  store: Store;
  /** Manufacturer CA certificates (DER or PEM): self-signed ones are roots, others intermediates. */
  caCerts: Uint8Array[];
  /** Operator pins (the dev swtpm's AK under `coffer up --dev`): AK files in any form parseAkPublic reads. */
  pins?: Uint8Array[];
  challengeTtlMs?: number;
  clock: () => number;
}

export interface EnrolRequest {
  attester: string;
  ekCert: string;
  ekChain?: string[];
  ekPublic: string;
  akPublic: string;
}

export interface EnrolResponse {
  challengeId: string;
  /** TPM2B_ID_OBJECT, base64: the credentialBlob of TPM2_ActivateCredential. */
  credentialBlob: string;
  /** TPM2B_ENCRYPTED_SECRET, base64: the secret parameter of TPM2_ActivateCredential. */
  encryptedSecret: string;
  expiresAt: string;
}

export interface ActivateRequest {
  challengeId: string;
  secret: string;
}

export interface AkView {
  id: string;
  fingerprint: string;
  attester: string;
  akName: string;
  ekFingerprint: string;
  ekCertSubject: string;
  ekCertIssuer: string;
  enrolledAt: string;
  revokedAt: string | null;
  revokedBy: string | null;
}

const CHAIN_MAX = 8;

/** A refusal with a stable code, as problem+json (the code in `code`) and in the audit log. */
function refuse(status: number, code: string, detail: string): HttpProblem {
  return new HttpProblem(status, 'tpm-enrolment-refused', 'TPM enrolment refused', detail, { code });
}

function cert(b: Uint8Array, what: string): X509Certificate {
  try {
    return new X509Certificate(Buffer.from(b));
  } catch (e) {
    throw refuse(400, 'TPM_EK_CERT_MALFORMED', `${what} is not an X.509 certificate: ${(e as Error).message}`);
  }
}

function selfSigned(c: X509Certificate): boolean {
  return c.checkIssued(c) && c.verify(c.publicKey);
}

/** Splits PEM bundles into DER certificates; a file without PEM markers is taken as one DER certificate. */
export function certificatesOf(bytes: Uint8Array): Uint8Array[] {
  const text = Buffer.from(bytes).toString('latin1');
  if (!text.includes('-----BEGIN')) return [bytes];
  const out: Uint8Array[] = [];
  for (const m of text.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)) out.push(new Uint8Array(Buffer.from(m[1].replace(/\s+/g, ''), 'base64')));
  return out;
}

/** Reads every *.pem / *.crt / *.cer / *.der in `dir` (not recursive): the operator's TPM manufacturer CAs. */
export function loadTpmCaDir(dir: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const f of readdirSync(dir).sort()) {
    if (!/\.(pem|crt|cer|der)$/i.test(f)) continue;
    const p = join(dir, f);
    if (!statSync(p).isFile()) continue;
    for (const der of certificatesOf(new Uint8Array(readFileSync(p)))) {
      new X509Certificate(Buffer.from(der)); // a bad file is the operator's error: refuse to start rather than skip it
      out.push(der);
    }
  }
  return out;
}

function view(r: TpmAkRecord): AkView {
  return {
    id: r.id, fingerprint: r.fingerprint, attester: r.attester, akName: r.akName, ekFingerprint: r.ekFingerprint,
    ekCertSubject: r.ekCertSubject, ekCertIssuer: r.ekCertIssuer, enrolledAt: new Date(r.enrolledAt).toISOString(),
    revokedAt: r.revokedAt === null ? null : new Date(r.revokedAt).toISOString(), revokedBy: r.revokedBy,
  };
}

export class TpmEnrolment {
  private readonly roots: X509Certificate[] = [];
  private readonly intermediates: X509Certificate[] = [];
  private readonly pins = new Map<string, Uint8Array | undefined>();
  private readonly ttl: number;

  constructor(private readonly o: TpmEnrolmentOptions) {
    for (const [i, b] of o.caCerts.entries()) {
      const c = cert(b, `TPM manufacturer CA ${i}`);
      (selfSigned(c) ? this.roots : this.intermediates).push(c);
    }
    for (const p of o.pins ?? []) {
      const ak = parseAkPublic(p);
      this.pins.set(akFingerprint(ak.key), ak.tpmPublic ? serializePublic2b(ak.tpmPublic) : undefined);
    }
    this.ttl = o.challengeTtlMs ?? 5 * 60_000;
  }

  /** True when a manufacturer root is configured, i.e. enrolment can succeed at all. */
  get enabled(): boolean {
    return this.roots.length > 0;
  }

  /** The AK trust the services hand the TPM verifier: operator pins, then the enrolment registry. */
  akTrust(): AkTrust {
    return { kind: 'enrolled', lookup: (fp) => this.lookup(fp) };
  }

  async lookup(fingerprint: string): Promise<EnrolledAk | undefined> {
    if (this.pins.has(fingerprint)) return { id: `pin-${fingerprint.slice(0, 16)}`, trust: 'pinned', akPublic: this.pins.get(fingerprint) };
    const recs = await this.o.store.findTpmAks(fingerprint);
    if (recs.length === 0) return undefined;
    const active = recs.find((r) => r.revokedAt === null);
    if (!active) throw new VerificationError('TPM_AK_REVOKED', `the AK ${fingerprint} (${recs[0].id}) was revoked at ${new Date(recs[0].revokedAt!).toISOString()} by ${recs[0].revokedBy}`);
    return { id: active.id, trust: 'enrolled', akPublic: active.akPublic, platform: { akAttester: active.attester, ekIssuer: active.ekCertIssuer } };
  }

  /** Orders leaf → … → root from the configured intermediates plus those the attester sent. */
  private chainFor(leaf: X509Certificate, extra: X509Certificate[]): X509Certificate[] {
    const pool = [...this.intermediates, ...extra];
    const chain = [leaf];
    for (let cur = leaf; chain.length <= CHAIN_MAX; ) {
      if (this.roots.some((r) => cur.checkIssued(r))) return chain;
      const next = pool.find((c) => !chain.includes(c) && cur.checkIssued(c) && cur.verify(c.publicKey));
      if (!next) return chain; // verifyEkCertificate names the untrusted end
      chain.push(next);
      cur = next;
    }
    throw refuse(403, 'TPM_EK_CHAIN_INVALID', `the EK certificate chain is longer than ${CHAIN_MAX}`);
  }

  private async audit(action: string, actor: string, target: string, result: string, details: Record<string, unknown>): Promise<void> {
    await this.o.store.appendAudit({ at: this.o.clock(), actor, action, target, result, details });
  }

  /** Runs `fn`; a refusal is audited with its code before it is thrown. */
  private async audited<T>(action: string, actor: string, target: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      const p = e instanceof HttpProblem ? e : e instanceof CofferError ? refuse(e instanceof EvidenceFormatError ? 400 : 403, e.code, e.message) : undefined;
      if (!p) throw e;
      await this.audit(action, actor, target, 'rejected', { code: p.extra.code ?? p.slug, detail: p.detail });
      throw p;
    }
  }

  async enrol(req: EnrolRequest, actor: string): Promise<EnrolResponse> {
    return this.audited('tpm.enrol', actor, req.attester, async () => {
      if (!this.enabled) throw refuse(403, 'TPM_ENROLMENT_DISABLED', 'no TPM manufacturer CA is configured on this service (--tpm-ca-dir): enrolment is refused');
      const now = this.o.clock();
      const ekCertDer = decodeBase64(req.ekCert, 'ekCert');
      const leaf = cert(ekCertDer, 'ekCert');
      const extra = (req.ekChain ?? []).map((c, i) => cert(decodeBase64(c, `ekChain[${i}]`), `ekChain[${i}]`));
      const ek = parsePublic2b(decodeBase64(req.ekPublic, 'ekPublic'));
      const chain = this.chainFor(leaf, extra);
      // The EK certificate to a configured manufacturer root, and for this very EK.
      const check = verifyEkCertificate(ekCertDer, chain.slice(1).map((c) => new Uint8Array(c.raw)), this.roots.map((r) => new Uint8Array(r.raw)), new Date(now), ek);
      checkEk(ek);
      const akBytes = decodeBase64(req.akPublic, 'akPublic');
      const ak = parsePublic2b(akBytes);
      checkAkAttributes(ak);
      const fingerprint = akFingerprint(publicToKeyObject(ak));
      const earlier = await this.o.store.findTpmAks(fingerprint);
      const revoked = earlier.find((r) => r.revokedAt !== null);
      if (revoked) throw refuse(403, 'TPM_AK_REVOKED', `the AK ${fingerprint} was revoked (${revoked.id}); a revoked AK is never enrolled again: create a new AK`);
      const ekFingerprint = akFingerprint(publicToKeyObject(ek));
      await this.checkNameBinding(req.attester, ekFingerprint);
      const name = objectName(ak);
      const h = hashAlgById(ek.nameAlg)!;
      const secret = new Uint8Array(randomBytes(Math.min(32, h.size)));
      const cred = makeCredential(ek, name, secret);
      const challengeId = randomBytes(18).toString('base64url');
      const expiresAt = now + this.ttl;
      await this.o.store.createTpmChallenge({
        id: challengeId,
        secretHash: createHash('sha256').update(secret).digest('hex'),
        expiresAt,
        data: {
          attester: req.attester, akPublic: Buffer.from(serializePublic2b(ak)).toString('base64'), akName: toHex(name), fingerprint,
          ekFingerprint, ekCertSubject: check.subject, ekCertIssuer: check.issuer,
        },
      });
      await this.audit('tpm.enrol', actor, req.attester, 'challenged', { challengeId, fingerprint, akName: toHex(name), ekCertIssuer: check.issuer });
      return {
        challengeId,
        credentialBlob: Buffer.from(cred.credentialBlob).toString('base64'),
        encryptedSecret: Buffer.from(cred.secret).toString('base64'),
        expiresAt: new Date(expiresAt).toISOString(),
      };
    });
  }

  async activate(req: ActivateRequest, actor: string): Promise<{ akId: string; fingerprint: string; attester: string }> {
    return this.audited('tpm.activate', actor, req.challengeId, async () => {
      const now = this.o.clock();
      const answer = decodeBase64(req.secret, 'secret');
      // Taken before comparing: one answer per challenge, right or wrong.
      const t = await this.o.store.takeTpmChallenge(req.challengeId, now);
      if (t.outcome === 'used') throw refuse(409, 'TPM_CHALLENGE_REPLAYED', 'this activation challenge was already answered; enrol again for a new one');
      if (t.outcome === 'expired') throw refuse(403, 'TPM_CHALLENGE_EXPIRED', 'this activation challenge has expired; enrol again');
      if (t.outcome !== 'ok' || !t.challenge) throw refuse(404, 'TPM_CHALLENGE_UNKNOWN', 'no such activation challenge');
      const want = Buffer.from(t.challenge.secretHash, 'hex');
      const got = createHash('sha256').update(answer).digest();
      if (!timingSafeEqual(want, got)) {
        throw refuse(403, 'TPM_ACTIVATION_FAILED', 'the secret is not the one made for this AK and EK: the AK does not live in the TPM that holds the certified EK');
      }
      const d = t.challenge.data as Record<string, string>;
      const earlier = await this.o.store.findTpmAks(d.fingerprint);
      // Revoked while the challenge was out: revocation wins.
      if (earlier.some((r) => r.revokedAt !== null)) throw refuse(403, 'TPM_AK_REVOKED', `the AK ${d.fingerprint} was revoked; a revoked AK is never enrolled again`);
      // Again at registration: another TPM may have taken the name while this challenge was out.
      await this.checkNameBinding(d.attester, d.ekFingerprint);
      const active = earlier.find((r) => r.revokedAt === null);
      if (active) {
        await this.audit('tpm.activate', actor, active.id, 'ok', { fingerprint: d.fingerprint, attester: d.attester, existing: true });
        return { akId: active.id, fingerprint: d.fingerprint, attester: active.attester };
      }
      const rec: TpmAkRecord = {
        id: `ak-${randomBytes(12).toString('hex')}`, fingerprint: d.fingerprint, attester: d.attester, akPublic: new Uint8Array(Buffer.from(d.akPublic, 'base64')),
        akName: d.akName, ekFingerprint: d.ekFingerprint, ekCertSubject: d.ekCertSubject, ekCertIssuer: d.ekCertIssuer, enrolledAt: now, revokedAt: null, revokedBy: null,
      };
      await this.o.store.putTpmAk(rec);
      await this.audit('tpm.activate', actor, rec.id, 'ok', { fingerprint: rec.fingerprint, attester: rec.attester, akName: rec.akName, ekCertIssuer: rec.ekCertIssuer });
      return { akId: rec.id, fingerprint: rec.fingerprint, attester: rec.attester };
    });
  }

  /**
   * Name binding, as Keylime's registrar binds an agent id to its EK: the node-trust controller trusts a node only
   * on a token whose AK is enrolled under that node's name, so the name must not be for the taking.
   *  - A name bound to an active AK of another EK (another TPM) is refused until an admin revokes that AK: root
   *    on node A must not enrol A's TPM as B. The same EK enrolling again (AK rotation, re-install) is allowed.
   *  - One EK holds active AKs under one name only: a TPM is one machine, and a second name would let a
   *    compromised node claim a name not yet enrolled (a node still being provisioned). Renaming a node is an
   *    admin revoke, then a new enrolment.
   * One store query per check (enrol and activate); the attest path is untouched.
   */
  private async checkNameBinding(attester: string, ekFingerprint: string): Promise<void> {
    const active = await this.o.store.findActiveTpmAks(attester, ekFingerprint);
    const taken = active.find((r) => r.attester === attester && r.ekFingerprint !== ekFingerprint);
    if (taken) {
      throw refuse(409, 'TPM_ATTESTER_BOUND', `attester ${JSON.stringify(attester)} is bound to the active AK ${taken.id} of another TPM (EK ${taken.ekFingerprint.slice(0, 16)}…, ${taken.ekCertSubject}); an admin must revoke it (DELETE /v1/admin/tpm/aks/${taken.id}) before another TPM may enrol under this name`);
    }
    const other = active.find((r) => r.ekFingerprint === ekFingerprint && r.attester !== attester);
    if (other) {
      throw refuse(409, 'TPM_EK_BOUND', `this TPM's EK already holds the active AK ${other.id} enrolled as ${JSON.stringify(other.attester)}; one TPM enrols under one name: an admin must revoke that AK (DELETE /v1/admin/tpm/aks/${other.id}) to rename the node`);
    }
  }

  async list(): Promise<AkView[]> {
    return (await this.o.store.listTpmAks()).map(view);
  }

  async get(id: string): Promise<AkView | undefined> {
    const r = await this.o.store.getTpmAk(id);
    return r ? view(r) : undefined;
  }

  async revoke(id: string, actor: string): Promise<boolean> {
    const ok = await this.o.store.revokeTpmAk(id, this.o.clock(), actor);
    await this.audit('tpm.revoke', actor, id, ok ? 'ok' : 'absent', {});
    return ok;
  }

  /** Housekeeping: expired challenges are refused anyway; this only bounds the table. */
  purge(now: number): Promise<number> {
    return this.o.store.purgeTpmChallenges(now);
  }
}

/** The EK must be a restricted decryption key that never leaves its TPM (a storage key, as the TCG EK templates are). */
function checkEk(ek: TpmtPublic): void {
  const need = TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt | TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent;
  if ((ek.objectAttributes & need) !== need || ek.objectAttributes & TPMA_OBJECT.sign) {
    throw refuse(403, 'TPM_EK_BAD_ATTRIBUTES', `the EK is not a fixedTPM restricted decryption key (attributes: ${attributeNames(ek.objectAttributes).join('|')})`);
  }
}
