import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { certificateParts, type CertificateParts } from '../../common/der.js';
import { CollateralError } from '../../common/errors.js';
import { type ProductLine, productFromCertName, isProductLine } from '../abi/product.js';
import { readString, readTlv, readUint } from './der.js';

/** Role of a certificate in AMD's hierarchy, from its subject CN (go-sev-guest `intermediateKeyCommonName`). */
export type CertRole = 'ark' | 'ask' | 'asvk' | 'vcek' | 'vlek' | 'other';

export interface SnpCert {
  der: Uint8Array;
  /** SHA-256 of the DER, hex: cache key and identity. */
  hash: string;
  x509: X509Certificate;
  publicKey: KeyObject;
  cn: string;
  role: CertRole;
  /** Product named by the CN (ARK-Milan, SEV-Milan, SEV-VLEK-Milan); VCEK/VLEK carry it in an extension. */
  product?: ProductLine;
  /** Lower-case hex without leading zeros. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  sigAlgOid: string;
  /** AlgorithmIdentifier parameters (RSASSA-PSS params), hex; compared to the expected AMD values. */
  sigAlgParams: string;
  extensions: Map<string, Uint8Array>;
  /** DER of the subject Name (CRL issuer matching). */
  subjectDer: string;
}

export const OID_RSASSA_PSS = '1.2.840.113549.1.1.10';
/** RSASSA-PSS-params: SHA-384, MGF1-SHA-384, salt 48 (trailer 1 explicit or default): AMD's only choice. */
export const AMD_PSS_PARAMS = new Set([
  '3039a00f300d06096086480165030402020500a11c301a06092a864886f70d010108300d06096086480165030402020500a203020130a303020101',
  '3034a00f300d06096086480165030402020500a11c301a06092a864886f70d010108300d06096086480165030402020500a203020130',
]);

export function sha256Hex(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

function cnOf(subject: string): string {
  const line = subject.split('\n').find((l) => l.startsWith('CN='));
  return line ? line.slice(3) : '';
}

function classify(cn: string): { role: CertRole; product?: ProductLine } {
  if (cn === 'SEV-VCEK') return { role: 'vcek' };
  if (cn === 'SEV-VLEK') return { role: 'vlek' };
  let m = /^ARK-(\w+)$/.exec(cn);
  if (m && isProductLine(m[1])) return { role: 'ark', product: m[1] };
  m = /^SEV-VLEK-(\w+)$/.exec(cn);
  if (m && isProductLine(m[1])) return { role: 'asvk', product: m[1] };
  m = /^SEV-(\w+)$/.exec(cn);
  if (m && isProductLine(m[1])) return { role: 'ask', product: m[1] };
  return { role: 'other' };
}

/** Parses one DER certificate; malformed input is a CollateralError naming where it came from. */
export function parseCert(der: Uint8Array, where: string): SnpCert {
  let x509: X509Certificate;
  let asn: CertificateParts;
  let publicKey: KeyObject;
  let notBefore: Date;
  let notAfter: Date;
  try {
    x509 = new X509Certificate(der);
    // node:crypto parses; the extensions and algorithm parameters it does not expose come from the DER reader.
    asn = certificateParts(der);
    publicKey = x509.publicKey;
    notBefore = new Date(x509.validFrom);
    notAfter = new Date(x509.validTo);
    if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) throw new Error('unreadable validity dates');
  } catch (e) {
    throw new CollateralError('CERT_INVALID', `${where} is not a valid X.509 certificate: ${(e as Error).message}`);
  }
  const cn = cnOf(x509.subject);
  const extensions = new Map<string, Uint8Array>();
  for (const e of asn.extensions) extensions.set(e.id, e.value);
  const params = asn.sigAlgParamsDer;
  return {
    der,
    hash: sha256Hex(der),
    x509,
    publicKey,
    cn,
    ...classify(cn),
    serial: x509.serialNumber.toLowerCase().replace(/^0+(?=.)/, ''),
    notBefore,
    notAfter,
    sigAlgOid: asn.sigAlg,
    sigAlgParams: params ? Buffer.from(params).toString('hex') : '',
    extensions,
    subjectDer: Buffer.from(asn.subject.raw).toString('hex'),
  };
}

/** VCEK/VLEK extensions (AMD KDS spec 57230 §3; go-sev-guest kds.go Oid*). */
export const OID_PREFIX = '1.3.6.1.4.1.3704.1';
export interface VcekExtensions {
  structVersion?: number;
  productName: string;
  product?: ProductLine;
  blSPL: number;
  teeSPL: number;
  snpSPL: number;
  ucodeSPL: number;
  /** Turin only. */
  fmcSPL?: number;
  /** 64 bytes (Milan, Genoa) or 8 bytes (Turin). Absent in VLEKs. */
  hwId?: Uint8Array;
  /** VLEK only. */
  cspId?: string;
}

export function parseVcekExtensions(c: SnpCert): VcekExtensions {
  const bad = (why: string) => new CollateralError('CERT_INVALID', `${c.cn || 'certificate'} extension ${why}`);
  const ext = (arc: string) => c.extensions.get(`${OID_PREFIX}.${arc}`);
  const spl = (arc: string, name: string, required: boolean): number | undefined => {
    const v = ext(arc);
    if (v === undefined) {
      if (required) throw bad(`${name} (${OID_PREFIX}.${arc}) is missing`);
      return undefined;
    }
    const n = readUint(v);
    if (n === undefined || n > 255) throw bad(`${name} is not an INTEGER in 0..255`);
    return n;
  };
  const nameRaw = ext('2');
  const productName = nameRaw ? readString(nameRaw) : undefined;
  if (productName === undefined) throw bad('productName (1.3.6.1.4.1.3704.1.2) is missing or not a string');
  const sv = ext('1');
  const structVersion = sv ? readUint(sv) : undefined;
  if (sv && structVersion === undefined) throw bad('structVersion is not an INTEGER');
  let hwId: Uint8Array | undefined;
  const hw = ext('4');
  if (hw) {
    // Today's KDS certificates put the raw bytes in extnValue; accept an OCTET STRING wrapper too (go-sev-guest).
    if (hw.length === 64 || hw.length === 8) hwId = hw;
    else {
      const t = readTlv(hw);
      if (t && t.tag === 0x04 && t.size === hw.length && (t.value.length === 64 || t.value.length === 8)) hwId = t.value;
      else throw bad(`hwID has ${hw.length} bytes, expected 64 (Milan/Genoa) or 8 (Turin)`);
    }
  }
  const csp = ext('5');
  const cspId = csp ? readString(csp) : undefined;
  if (csp && cspId === undefined) throw bad('csp_id is not a string');
  if (hwId && cspId !== undefined) throw bad('carries both hwID and csp_id, which AMD never issues');
  return {
    structVersion,
    productName,
    product: productFromCertName(productName),
    blSPL: spl('3.1', 'blSPL', true)!,
    teeSPL: spl('3.2', 'teeSPL', true)!,
    snpSPL: spl('3.3', 'snpSPL', true)!,
    ucodeSPL: spl('3.8', 'ucodeSPL', true)!,
    fmcSPL: spl('3.9', 'fmcSPL', false),
    hwId,
    cspId,
  };
}

const PEM_RE = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

export interface CollateralItems {
  certs: SnpCert[];
  /** DER CRLs (verified later, against the ARK). */
  crls: Uint8Array[];
}

/**
 * Recognises certificates and CRLs by content: PEM (any number of CERTIFICATE / X509 CRL blocks) or a single DER
 * object (SEQUENCE; a certificate if node parses it as one, otherwise tried as a CRL by the caller).
 */
export function parseCollateralBlob(b: Uint8Array, where: string, into: CollateralItems): void {
  const text = Buffer.from(b).toString('latin1');
  if (text.includes('-----BEGIN ')) {
    let found = 0;
    for (const m of text.matchAll(PEM_RE)) {
      const der = new Uint8Array(Buffer.from(m[2].replace(/[^A-Za-z0-9+/=]/g, ''), 'base64'));
      if (m[1] === 'CERTIFICATE') into.certs.push(parseCert(der, `${where} (PEM #${found + 1})`));
      else if (m[1] === 'X509 CRL') into.crls.push(der);
      found++;
    }
    if (found === 0) throw new CollateralError('CERT_INVALID', `${where} has no complete PEM block`);
    return;
  }
  const t = readTlv(b);
  if (!t || t.tag !== 0x30 || t.size !== b.length) {
    throw new CollateralError('CERT_INVALID', `${where} is neither PEM nor a single DER certificate/CRL`);
  }
  if (isDerCrl(b)) into.crls.push(b);
  else into.certs.push(parseCert(b, where));
}

/** CertificateList vs Certificate: a CRL's TBS has no [0] version tag and no SubjectPublicKeyInfo; sniff the TBS. */
export function isDerCrl(b: Uint8Array): boolean {
  const outer = readTlv(b);
  if (!outer) return false;
  const tbs = readTlv(outer.value);
  if (!tbs || tbs.tag !== 0x30) return false;
  const first = readTlv(tbs.value);
  // Certificate TBS starts with [0] EXPLICIT version (0xA0) or the serial INTEGER followed by a SEQUENCE algId;
  // a v2 CRL TBS starts with INTEGER 1 followed by the signature AlgorithmIdentifier, a v1 CRL with the algId.
  if (!first) return false;
  if (first.tag === 0xa0) return false;
  if (first.tag === 0x30) return true;
  if (first.tag === 0x02) {
    const second = readTlv(tbs.value.subarray(first.size));
    const third = second ? readTlv(tbs.value.subarray(first.size + second.size)) : undefined;
    // CRL: version, algId, issuer Name(SEQUENCE), thisUpdate(Time). Cert v1: serial, algId, issuer, validity(SEQUENCE).
    const fourth = second && third ? readTlv(tbs.value.subarray(first.size + second.size + third.size)) : undefined;
    return !!fourth && (fourth.tag === 0x17 || fourth.tag === 0x18);
  }
  return false;
}
