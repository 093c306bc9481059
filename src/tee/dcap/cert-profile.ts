/**
 * The certificate and CRL profile Intel's QVL holds DCAP chains to (QVL X509Constants.h, CommonVerifier,
 * PckCrlVerifier): roles by common name, basicConstraints / keyUsage per role, key-identifier linkage, no critical
 * extension the verifier does not understand, and ecdsa-with-SHA256 on P-256 everywhere. Everything here depends
 * only on certificate/CRL content, so the caller runs it once per chain or CRL content and caches the outcome.
 */
import { authorityKeyId, basicConstraints, keyUsage, subjectKeyId, type DerExtension } from '../common/der.js';
import { certExtension, cnOf, type ParsedCert, type ParsedCrl } from './pki.js';

/** RFC 5280 keyUsage bits as der.ts's keyUsage() numbers them (bit 0 = 1). */
const KeyUsageFlags = { digitalSignature: 1, keyCertSign: 32, cRLSign: 64 } as const;

export const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';

/** Intel's common names (QVL X509Constants.h). */
export const INTEL_CN = {
  root: 'Intel SGX Root CA',
  platformCa: 'Intel SGX PCK Platform CA',
  processorCa: 'Intel SGX PCK Processor CA',
  pck: 'Intel SGX PCK Certificate',
  tcbSigning: 'Intel SGX TCB Signing',
} as const;

const OID = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  ski: '2.5.29.14',
  aki: '2.5.29.35',
  crlNumber: '2.5.29.20',
  deltaCrl: '2.5.29.27',
  idp: '2.5.29.28',
};

/** Critical certificate extensions this verifier understands; any other critical one is a rejection (RFC 5280 4.2). */
const KNOWN_CRITICAL_CERT_EXT = new Set([OID.basicConstraints, OID.keyUsage]);
/** Critical CRL extensions this verifier understands (IDP scope is not used by Intel; a delta CRL is refused). */
const KNOWN_CRITICAL_CRL_EXT = new Set<string>();

export class ProfileError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The decoded bits of a certificate the profile needs. */
interface CertFacts {
  sigAlg: string;
  tbsSigAlg: string;
  sigAlgParams: boolean;
  extensions: DerExtension[];
  ca?: boolean;
  pathLen?: number;
  keyUsage?: number;
  ski?: string;
  aki?: string;
}

function certFacts(c: ParsedCert): CertFacts {
  const parts = c.parts;
  const f: CertFacts = { sigAlg: parts.sigAlg, tbsSigAlg: parts.tbsSigAlg, sigAlgParams: parts.sigAlgParams, extensions: parts.extensions };
  const seen = new Set<string>();
  for (const e of parts.extensions) {
    if (seen.has(e.id)) throw new ProfileError('CERT_EXTENSION_INVALID', `certificate '${cnOf(c.subject)}' repeats extension ${e.id}`);
    seen.add(e.id);
    if (e.id === OID.basicConstraints) {
      const bc = basicConstraints(e.value);
      f.ca = bc.ca;
      f.pathLen = bc.pathLen;
    } else if (e.id === OID.keyUsage) f.keyUsage = keyUsage(e.value);
    else if (e.id === OID.ski) f.ski = subjectKeyId(e.value);
    else if (e.id === OID.aki) f.aki = authorityKeyId(e.value);
  }
  return f;
}

function facts(c: ParsedCert): CertFacts {
  try {
    return certFacts(c);
  } catch (e) {
    if (e instanceof ProfileError) throw e;
    throw new ProfileError('CERT_EXTENSION_INVALID', `certificate '${cnOf(c.subject)}' has an extension that does not decode: ${(e as Error).message}`);
  }
}

/** ecdsa-with-SHA256 (no parameters) by a P-256 key: the only algorithm Intel uses, the only one accepted. */
function checkCertAlgorithms(c: ParsedCert, f: CertFacts): void {
  const who = `certificate '${cnOf(c.subject)}'`;
  if (f.sigAlg !== ECDSA_WITH_SHA256 || f.tbsSigAlg !== f.sigAlg || f.sigAlgParams) {
    throw new ProfileError('CERT_ALGORITHM_UNSUPPORTED', `${who} is signed with ${f.sigAlg}, only ecdsa-with-SHA256 is accepted`);
  }
  const d = c.key.asymmetricKeyDetails;
  if (c.key.asymmetricKeyType !== 'ec' || d?.namedCurve !== 'prime256v1') {
    throw new ProfileError('CERT_ALGORITHM_UNSUPPORTED', `${who} has a ${c.key.asymmetricKeyType} ${d?.namedCurve ?? ''} key, only ECDSA P-256 is accepted`);
  }
}

export type ChainKind = 'pck' | 'tcb';

/**
 * Checks a verified chain leaf..anchor (signatures already checked). `intelNames`: the chain ends at Intel's root
 * (or an anchor claiming its name), so every certificate must also carry the common name of its role.
 */
export function checkChainProfile(chain: ParsedCert[], kind: ChainKind, intelNames: boolean): void {
  const fs = chain.map(facts);
  const last = chain.length - 1;
  for (let i = 0; i <= last; i++) {
    const c = chain[i];
    const f = fs[i];
    const who = `certificate '${cnOf(c.subject)}'`;
    checkCertAlgorithms(c, f);
    for (const e of f.extensions) {
      if (e.critical && !KNOWN_CRITICAL_CERT_EXT.has(e.id)) {
        throw new ProfileError('CERT_UNKNOWN_CRITICAL_EXTENSION', `${who} has critical extension ${e.id}, which this verifier does not understand`);
      }
    }
    const isLeaf = i === 0 && last > 0;
    if (f.ca === undefined) throw new ProfileError('CERT_BASIC_CONSTRAINTS_INVALID', `${who} has no basicConstraints extension`);
    if (isLeaf) {
      if (f.ca) throw new ProfileError('CERT_BASIC_CONSTRAINTS_INVALID', `${who} is a leaf (${kind === 'pck' ? 'PCK' : 'TCB signing'} certificate) but says CA:TRUE`);
    } else {
      if (!f.ca) throw new ProfileError('CERT_BASIC_CONSTRAINTS_INVALID', `${who} issues certificates but is not CA:TRUE`);
      // CA certificates below this one on the path (the leaf does not count).
      const below = Math.max(0, i - 1);
      if (f.pathLen !== undefined && below > f.pathLen) {
        throw new ProfileError('CERT_BASIC_CONSTRAINTS_INVALID', `${who} allows ${f.pathLen} intermediate CA(s) below it, the path has ${below}`);
      }
    }
    if (f.keyUsage === undefined) throw new ProfileError('CERT_KEY_USAGE_INVALID', `${who} has no keyUsage extension`);
    const need = isLeaf ? KeyUsageFlags.digitalSignature : KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign;
    if ((f.keyUsage & need) !== need) {
      throw new ProfileError('CERT_KEY_USAGE_INVALID', `${who} keyUsage lacks ${isLeaf ? 'digitalSignature' : 'keyCertSign and cRLSign'}`);
    }
    // Key-identifier linkage where both sides carry one (the anchor's AKI, if any, must name itself).
    const issuerF = i < last ? fs[i + 1] : f;
    if (f.aki !== undefined && issuerF.ski !== undefined && f.aki !== issuerF.ski) {
      throw new ProfileError('CERT_KEY_ID_MISMATCH', `${who} authorityKeyIdentifier ${f.aki} is not its issuer's subjectKeyIdentifier ${issuerF.ski}`);
    }
  }
  if (intelNames) checkNames(chain, kind);
}

function checkNames(chain: ParsedCert[], kind: ChainKind): void {
  const role = (c: ParsedCert, field: 'subject' | 'issuer', want: readonly string[], what: string) => {
    const cn = cnOf(c[field]);
    if (!want.includes(cn)) {
      throw new ProfileError('CERT_ROLE_MISMATCH', `the ${what} ${field} common name is '${cn}', expected ${want.map((w) => `'${w}'`).join(' or ')}`);
    }
  };
  const root = chain[chain.length - 1];
  role(root, 'subject', [INTEL_CN.root], 'root CA');
  role(root, 'issuer', [INTEL_CN.root], 'root CA');
  // Path lengths (PCK: 3, TCB signing: 2) are enforced by the caller before the profile runs.
  if (kind === 'tcb') {
    role(chain[0], 'subject', [INTEL_CN.tcbSigning], 'TCB signing certificate');
    role(chain[0], 'issuer', [INTEL_CN.root], 'TCB signing certificate');
    return;
  }
  role(chain[1], 'subject', [INTEL_CN.platformCa, INTEL_CN.processorCa], 'PCK CA');
  role(chain[1], 'issuer', [INTEL_CN.root], 'PCK CA');
  role(chain[0], 'subject', [INTEL_CN.pck], 'PCK certificate');
  role(chain[0], 'issuer', [cnOf(chain[1].subject)], 'PCK certificate');
}

/** Content-only CRL checks (QVL PckCrlVerifier / CommonVerifier): v2, CRL number, algorithms, critical extensions. */
export function crlProblem(c: ParsedCrl): ProfileError | undefined {
  const p = c.parts; // read when the CRL was parsed (a CRL that does not decode never gets here)
  const who = `the CRL of '${cnOf(c.issuer)}'`;
  if (p.sigAlg !== ECDSA_WITH_SHA256 || p.tbsSigAlg !== ECDSA_WITH_SHA256 || p.sigAlgParams) {
    return new ProfileError('CRL_ALGORITHM_UNSUPPORTED', `${who} is signed with ${p.sigAlg}, only ecdsa-with-SHA256 is accepted`);
  }
  if (p.version !== 1) return new ProfileError('CRL_VERSION_INVALID', `${who} is not a version 2 CRL`);
  // RFC 5280 5.1.2.5: issuers MUST set nextUpdate; without it a CRL would never go stale.
  if (!p.nextUpdate) return new ProfileError('CRL_INVALID', `${who} has no nextUpdate`);
  for (const e of p.extensions) {
    if (e.id === OID.deltaCrl) return new ProfileError('CRL_UNKNOWN_CRITICAL_EXTENSION', `${who} is a delta CRL, which this verifier does not support`);
    if (e.critical && !KNOWN_CRITICAL_CRL_EXT.has(e.id)) {
      return new ProfileError('CRL_UNKNOWN_CRITICAL_EXTENSION', `${who} has critical extension ${e.id}, which this verifier does not understand`);
    }
  }
  for (const r of p.revoked) {
    for (const e of r.extensions) {
      if (e.critical) return new ProfileError('CRL_UNKNOWN_CRITICAL_EXTENSION', `${who} has an entry with critical extension ${e.id}`);
    }
  }
  const num = p.extensions.find((e) => e.id === OID.crlNumber);
  // RFC 5280 5.2.3: a CRL number is mandatory, a non-negative INTEGER of at most 20 octets.
  const v = num?.value;
  if (!v || v.length < 3 || v[0] !== 0x02 || v[1] !== v.length - 2 || v[1] > 21 || v[2] & 0x80) {
    return new ProfileError('CRL_VERSION_INVALID', `${who} has ${v ? 'a malformed' : 'no'} CRL number`);
  }
  return undefined;
}

/** The CRL's authorityKeyIdentifier (hex), if it has one. */
export function crlAki(c: ParsedCrl): string | undefined {
  const e = c.parts.extensions.find((x) => x.id === OID.aki);
  return e ? authorityKeyId(e.value) : undefined;
}

/** The certificate's subjectKeyIdentifier (hex), if it has one. */
export function certSki(c: ParsedCert): string | undefined {
  const e = certExtension(c, OID.ski);
  return e ? subjectKeyId(e.value) : undefined;
}
