import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { CollateralError, UsageError, VerificationError } from '../../common/errors.js';
import { bytesEqual, toHex } from '../../common/hex.js';
import { parseAkPublic, type AkPublic } from '../abi/public.js';
import { parseAttest, unwrapAttest } from '../abi/attest.js';
import { TPM_ST } from '../abi/constants.js';
import { resolveSignature, verifyTpmSignature } from './signature.js';

/**
 * How the verifier comes to trust the attestation key. A quote only proves "some key signed these PCRs"; which
 * key is acceptable is the caller's decision, and Coffer makes it explicit:
 *  - pinned: the caller vouches for this AK (e.g. recorded at enrolment). Also the default when only an AK
 *    attachment is given (`coffer verify --ak`), with a warning in the claims saying so.
 *  - certificate: an X.509 chain to the given roots certifies the AK, either directly (leaf SPKI = AK) or through
 *    TPM2_Certify: the leaf certifies a signing key (an IAK/EK-derived identity key) that signed a
 *    TPMS_ATTEST/CERTIFY whose certified name is Name(AK).
 *  - tee-report: a TEE report (SNP/TDX, e.g. Azure's HCL runtime data) binds the AK; the composite verifier
 *    supplies `bind`, which throws when the binding does not hold.
 *  - enrolled: a registry of AKs enrolled after an EK certificate check and credential activation (the
 *    attestation service's store). `lookup` finds the AK by its SPKI fingerprint; no record → TPM_AK_UNTRUSTED.
 *    The record's TPM2B_PUBLIC (whose Name was certified by activation) replaces the attached key, so the
 *    attributes checked are the enrolled ones whatever form the attachment had.
 */
export type AkTrust =
  | { kind: 'pinned'; ak: Uint8Array | KeyObject }
  | {
      kind: 'certificate';
      /** Leaf first (the AK's certificate, or the certifying key's), then intermediates; DER or PEM each. */
      chain: Uint8Array[];
      /** Trusted roots (DER or PEM). Never taken from the evidence. */
      roots: Uint8Array[];
      /** TPM2_Certify output when the leaf certifies another key that certified the AK. */
      certify?: { attest: Uint8Array; signature: Uint8Array };
    }
  | { kind: 'tee-report'; description: string; bind(ak: AkPublic): Promise<{ warnings?: string[]; platform?: Record<string, string> }> }
  | { kind: 'enrolled'; lookup(fingerprint: string, ak: AkPublic): Promise<EnrolledAk | undefined> };

/** What an AK registry answers for a known AK. A revoked AK is the registry's to refuse (it throws). */
export interface EnrolledAk {
  id: string;
  /** 'pinned' when the registry holds an operator pin (the dev swtpm) rather than an enrolment. */
  trust: 'enrolled' | 'pinned';
  /** The enrolled TPM2B_PUBLIC; absent for pins given as bare keys. */
  akPublic?: Uint8Array;
  platform?: Record<string, string>;
}

export interface TrustedAk {
  ak: AkPublic;
  trust: AkTrust['kind'] | 'pinned';
  warnings: string[];
  notes?: string[];
  platform: Record<string, string>;
}

function spki(k: KeyObject): Uint8Array {
  return new Uint8Array(k.export({ format: 'der', type: 'spki' }));
}

export function akFingerprint(k: KeyObject): string {
  return createHash('sha256').update(spki(k)).digest('hex');
}

/** The AK's fingerprint, memoized on the (verifier-cached) AkPublic. */
export function fingerprintOf(ak: AkPublic): string {
  return (ak.fingerprint ??= akFingerprint(ak.key));
}

function cert(b: Uint8Array, what: string, label: 'AK' | 'EK'): X509Certificate {
  try {
    return new X509Certificate(Buffer.from(b));
  } catch (e) {
    throw new CollateralError(`TPM_${label}_CERT_MALFORMED`, `${what} is not an X.509 certificate: ${(e as Error).message}`);
  }
}

/**
 * Verifies leaf → … → root at time `at`: signatures, validity windows, CA flags on every issuer. `label` names
 * the key in codes and messages (AK for AK certificates, EK for endorsement key certificates).
 */
export function verifyChain(chainBytes: Uint8Array[], rootBytes: Uint8Array[], at: Date, label: 'AK' | 'EK' = 'AK'): X509Certificate {
  if (chainBytes.length === 0) throw new UsageError(`TPM_${label}_TRUST`, `${label} certificate chain is empty`);
  if (rootBytes.length === 0) throw new UsageError(`TPM_${label}_TRUST`, `no roots were given for the ${label} certificate chain`);
  const chain = chainBytes.map((b, i) => cert(b, `${label} chain certificate ${i}`, label));
  const roots = rootBytes.map((b, i) => cert(b, `${label} trust root ${i}`, label));
  const inWindow = (c: X509Certificate, what: string) => {
    if (at < new Date(c.validFrom) || at > new Date(c.validTo)) {
      throw new VerificationError(`TPM_${label}_CERT_EXPIRED`, `${what} (${c.subject.replace(/\n/g, ', ')}) is not valid at ${at.toISOString()}: window ${c.validFrom} .. ${c.validTo}`);
    }
  };
  for (let i = 0; i < chain.length; i++) {
    const c = chain[i];
    inWindow(c, `${label} chain certificate ${i}`);
    const issuer = chain[i + 1];
    if (issuer) {
      if (!issuer.ca) throw new VerificationError(`TPM_${label}_CHAIN_INVALID`, `${label} chain certificate ${i + 1} is not a CA but issued certificate ${i}`);
      if (!c.checkIssued(issuer) || !c.verify(issuer.publicKey)) {
        throw new VerificationError(`TPM_${label}_CHAIN_INVALID`, `${label} chain certificate ${i} is not signed by certificate ${i + 1}`);
      }
      continue;
    }
    // Last in the chain: it is a root itself, or a root issued it.
    const asRoot = roots.find((r) => r.raw.equals(c.raw));
    if (asRoot) return chain[0];
    const root = roots.find((r) => c.checkIssued(r) && c.verify(r.publicKey));
    if (!root) throw new VerificationError(`TPM_${label}_CHAIN_UNTRUSTED`, `${label} chain does not end at a trusted root (last: ${c.issuer.replace(/\n/g, ', ')})`);
    if (!root.ca) throw new VerificationError(`TPM_${label}_CHAIN_INVALID`, `the trusted root that issued the ${label} chain is not a CA`);
    inWindow(root, `${label} trust root`);
  }
  return chain[0];
}

const PINNED_BY_CALLER = 'AK_PINNED_BY_CALLER: the AK was pinned by the caller (--ak / the "ak" attachment) and is trusted as given; no enrolment, EK certificate or TEE report binds it to a TPM';

/**
 * Decides whether the AK may be trusted; throws a typed rejection otherwise. Synchronous except for a TEE-report
 * binding (the only kind that awaits), so the hot pinned path costs no promise.
 */
export function establishAkTrust(
  akAttachment: Uint8Array | undefined,
  trust: AkTrust | undefined,
  at: Date,
  parseAk: (b: Uint8Array) => AkPublic = parseAkPublic,
): TrustedAk | Promise<TrustedAk> {
  const given = akAttachment ? parseAk(akAttachment) : undefined;
  if (!trust) {
    if (!given) throw new VerificationError('TPM_AK_MISSING', 'no attestation key was given (attachment "ak" / --ak) and no AK trust was configured');
    return {
      ak: given,
      trust: 'pinned',
      warnings: [PINNED_BY_CALLER],
      platform: {},
    };
  }
  if (trust.kind === 'pinned') {
    const pinned = trust.ak instanceof Uint8Array ? parseAk(trust.ak) : { key: trust.ak, format: 'der' as const };
    if (given && fingerprintOf(given) !== fingerprintOf(pinned)) {
      throw new VerificationError('TPM_AK_UNTRUSTED', `the AK (${fingerprintOf(given)}) is not the pinned AK (${fingerprintOf(pinned)})`);
    }
    return { ak: given ?? pinned, trust: 'pinned', warnings: [], platform: {} };
  }
  if (trust.kind === 'certificate') {
    const leaf = verifyChain(trust.chain, trust.roots, at);
    if (!trust.certify) {
      const leafKey = { key: leaf.publicKey, format: 'der' as const };
      if (given && !bytesEqual(spki(given.key), spki(leaf.publicKey))) {
        throw new VerificationError('TPM_AK_UNTRUSTED', 'the AK is not the key certified by the AK certificate');
      }
      return { ak: given ?? leafKey, trust: 'certificate', warnings: [], platform: { akCertSubject: leaf.subject.replace(/\n/g, ', ') } };
    }
    if (!given?.name) {
      throw new VerificationError('TPM_AK_UNTRUSTED', 'TPM2_Certify binds the AK by its Name: give the AK as a TPM2B_PUBLIC (tpm2_readpublic -f tss), not PEM');
    }
    const certifyBytes = unwrapAttest(trust.certify.attest);
    const attest = parseAttest(certifyBytes);
    if (attest.type !== TPM_ST.ATTEST_CERTIFY || attest.attested.kind !== 'certify') {
      throw new VerificationError('TPM_AK_UNTRUSTED', `the certify attestation has type 0x${attest.type.toString(16)}, not TPM_ST_ATTEST_CERTIFY`);
    }
    const certifier = { key: leaf.publicKey, format: 'der' as const };
    verifyTpmSignature(certifyBytes, resolveSignature(trust.certify.signature, certifier), certifier, 'TPM2_Certify');
    if (!bytesEqual(attest.attested.name, given.name)) {
      throw new VerificationError('TPM_AK_UNTRUSTED', `TPM2_Certify certified name ${toHex(attest.attested.name)}, not the AK's name ${toHex(given.name)}`);
    }
    return { ak: given, trust: 'certificate', warnings: [], platform: { akCertifierSubject: leaf.subject.replace(/\n/g, ', ') } };
  }
  if (trust.kind === 'tee-report') {
    if (!given) throw new VerificationError('TPM_AK_MISSING', 'a TEE-report AK binding needs the AK itself');
    const description = trust.description;
    return trust.bind(given).then((r) => ({ ak: given, trust: 'tee-report' as const, warnings: r.warnings ?? [], platform: { akBoundBy: description, ...(r.platform ?? {}) } }));
  }
  if (trust.kind === 'enrolled') {
    if (!given) throw new VerificationError('TPM_AK_MISSING', 'no attestation key was given (attachment "ak"): the service finds the enrolled AK by its fingerprint');
    const fp = fingerprintOf(given);
    return trust.lookup(fp, given).then((rec) => {
      if (!rec) throw new VerificationError('TPM_AK_UNTRUSTED', `the AK ${fp} is not enrolled here: nothing the operator configured vouches for it (enrol it with POST /v1/tpm/enrol)`);
      const ak = rec.akPublic ? parseAk(rec.akPublic) : given;
      if (fingerprintOf(ak) !== fp) throw new VerificationError('TPM_AK_UNTRUSTED', `the registry answered for another AK than ${fp}`);
      return { ak, trust: rec.trust, warnings: [], platform: { akId: rec.id, ...(rec.platform ?? {}) } };
    });
  }
  throw new UsageError('TPM_AK_TRUST', `unknown akTrust kind '${(trust as { kind: string }).kind}'`);
}
