/**
 * A minimal strict DER reader for the few certificate structures node:crypto does not expose (extensions, the
 * signature algorithm identifiers, Intel's SGX extension). Decoding these with a generic schema-driven ASN.1 library
 * cost more than everything else in a first verification; reading them by tag is bounded and cheap. Definite
 * lengths only, every element must fit exactly inside its parent; anything else throws.
 */
export interface Tlv {
  tag: number;
  /** The whole element (tag, length, value). */
  raw: Uint8Array;
  value: Uint8Array;
}

export class DerError extends Error {}

/** The element at `off` of `buf`; `end` bounds it (its parent's end). */
export function readTlv(buf: Uint8Array, off: number, end = buf.length): Tlv {
  if (off + 2 > end) throw new DerError('DER element truncated');
  const tag = buf[off];
  if ((tag & 0x1f) === 0x1f) throw new DerError('DER high tag numbers are not used here');
  let len = buf[off + 1];
  let p = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw new DerError('DER indefinite length');
    if (n > 4 || p + n > end) throw new DerError('DER bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i];
    p += n;
  }
  if (p + len > end) throw new DerError('DER element overruns its parent');
  return { tag, raw: buf.subarray(off, p + len), value: buf.subarray(p, p + len) };
}

/** The children of a constructed element's value, in order. */
export function children(value: Uint8Array): Tlv[] {
  const out: Tlv[] = [];
  let off = 0;
  while (off < value.length) {
    const t = readTlv(value, off);
    out.push(t);
    off += t.raw.length;
  }
  return out;
}

/** Exactly one element of the given tag spanning the whole buffer. */
export function single(buf: Uint8Array, tag: number, what: string): Tlv {
  const t = readTlv(buf, 0);
  if (t.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, got 0x${t.tag.toString(16)}`);
  if (t.raw.length !== buf.length) throw new DerError(`${what}: trailing bytes`);
  return t;
}

export function oid(t: Tlv, what: string): string {
  if (t.tag !== 0x06 || t.value.length === 0) throw new DerError(`${what}: not an OBJECT IDENTIFIER`);
  const v = t.value;
  const arcs: number[] = [];
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    if (n === 0 && v[i] === 0x80) throw new DerError(`${what}: OID arc not minimal`);
    n = n * 128 + (v[i] & 0x7f);
    if (n > Number.MAX_SAFE_INTEGER / 128) throw new DerError(`${what}: OID arc too large`);
    if (!(v[i] & 0x80)) {
      arcs.push(n);
      n = 0;
    } else if (i === v.length - 1) throw new DerError(`${what}: OID truncated`);
  }
  const first = arcs[0] < 80 ? Math.floor(arcs[0] / 40) : 2;
  return [first, arcs[0] - first * 40, ...arcs.slice(1)].join('.');
}

export function bool(t: Tlv, what: string): boolean {
  if (t.tag !== 0x01 || t.value.length !== 1 || (t.value[0] !== 0 && t.value[0] !== 0xff)) throw new DerError(`${what}: not a DER BOOLEAN`);
  return t.value[0] === 0xff;
}

/** A non-negative INTEGER small enough for a JS number. */
export function smallUint(t: Tlv, what: string): number {
  const v = t.value;
  if (t.tag !== 0x02 || v.length === 0 || v.length > 6 || v[0] & 0x80) throw new DerError(`${what}: not a small non-negative INTEGER`);
  if (v.length > 1 && v[0] === 0 && !(v[1] & 0x80)) throw new DerError(`${what}: INTEGER not minimal`);
  let n = 0;
  for (const x of v) n = n * 256 + x;
  return n;
}

export interface DerExtension {
  id: string;
  critical: boolean;
  /** The contents of extnValue's OCTET STRING (the extension's own DER). */
  value: Uint8Array;
}

export interface CertificateParts {
  sigAlg: string;
  tbsSigAlg: string;
  /** Whether either algorithm identifier carries parameters (ecdsa-with-SHA256 has none). */
  sigAlgParams: boolean;
  /** The outer signatureAlgorithm's parameters, raw DER (RSASSA-PSS-params), if any. */
  sigAlgParamsDer?: Uint8Array;
  subject: Tlv;
  extensions: DerExtension[];
}

function algorithm(t: Tlv, what: string): { id: string; params: boolean; paramsDer?: Uint8Array } {
  if (t.tag !== 0x30) throw new DerError(`${what}: not an AlgorithmIdentifier`);
  const c = children(t.value);
  if (c.length < 1 || c.length > 2) throw new DerError(`${what}: not an AlgorithmIdentifier`);
  return { id: oid(c[0], what), params: c.length === 2, paramsDer: c[1]?.raw };
}

/** Extensions := SEQUENCE OF Extension; Extension := SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue }. */
export function extensionList(seq: Tlv): DerExtension[] {
  if (seq.tag !== 0x30) throw new DerError('extensions: not a SEQUENCE');
  return children(seq.value).map((e) => {
    if (e.tag !== 0x30) throw new DerError('extension: not a SEQUENCE');
    const c = children(e.value);
    if (c.length < 2 || c.length > 3) throw new DerError('extension: wrong number of fields');
    const id = oid(c[0], 'extnID');
    const critical = c.length === 3 ? bool(c[1], `extension ${id} critical`) : false;
    const v = c[c.length - 1];
    if (v.tag !== 0x04) throw new DerError(`extension ${id}: extnValue is not an OCTET STRING`);
    return { id, critical, value: v.value };
  });
}

/**
 * Certificate := SEQUENCE { tbs, signatureAlgorithm, signature }; TBSCertificate := SEQUENCE { [0] version?, serial,
 * signature, issuer, validity, subject, spki, [1] issuerUID?, [2] subjectUID?, [3] extensions? }.
 */
export function certificateParts(der: Uint8Array): CertificateParts {
  const cert = single(der, 0x30, 'certificate');
  const top = children(cert.value);
  if (top.length !== 3 || top[0].tag !== 0x30) throw new DerError('certificate: not tbs, algorithm, signature');
  const tbs = children(top[0].value);
  let i = tbs[0]?.tag === 0xa0 ? 1 : 0;
  if (tbs.length < i + 6) throw new DerError('tbsCertificate: fields missing');
  const tbsAlg = algorithm(tbs[i + 1], 'tbsCertificate signature');
  const outerAlg = algorithm(top[1], 'signatureAlgorithm');
  const subject = tbs[i + 4];
  if (subject.tag !== 0x30) throw new DerError('certificate subject: not a Name');
  i += 6;
  let extensions: DerExtension[] = [];
  for (; i < tbs.length; i++) {
    const t = tbs[i];
    if (t.tag === 0xa3) {
      const inner = children(t.value);
      if (inner.length !== 1) throw new DerError('extensions: [3] must hold one SEQUENCE');
      extensions = extensionList(inner[0]);
    } else if (t.tag !== 0x81 && t.tag !== 0x82 && t.tag !== 0xa1 && t.tag !== 0xa2) {
      throw new DerError(`tbsCertificate: unexpected field tag 0x${t.tag.toString(16)}`);
    }
  }
  return { sigAlg: outerAlg.id, tbsSigAlg: tbsAlg.id, sigAlgParams: outerAlg.params || tbsAlg.params, sigAlgParamsDer: outerAlg.paramsDer, subject, extensions };
}

/** BasicConstraints := SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }. */
export function basicConstraints(value: Uint8Array): { ca: boolean; pathLen?: number } {
  const c = children(single(value, 0x30, 'basicConstraints').value);
  let i = 0;
  let ca = false;
  if (c[i]?.tag === 0x01) ca = bool(c[i++], 'basicConstraints cA');
  const pathLen = c[i]?.tag === 0x02 ? smallUint(c[i++], 'pathLenConstraint') : undefined;
  if (i !== c.length) throw new DerError('basicConstraints: unexpected fields');
  return { ca, pathLen };
}

/** KeyUsage BIT STRING as flags: bit 0 (digitalSignature) = 1 … bit 8 (decipherOnly) = 256. */
export function keyUsage(value: Uint8Array): number {
  const t = single(value, 0x03, 'keyUsage');
  const v = t.value;
  if (v.length < 1 || v[0] > 7 || (v.length === 1 && v[0] !== 0)) throw new DerError('keyUsage: bad BIT STRING');
  let flags = 0;
  for (let bit = 0; bit < (v.length - 1) * 8 && bit < 16; bit++) if (v[1 + (bit >> 3)] & (0x80 >> (bit & 7))) flags |= 1 << bit;
  return flags;
}

export function subjectKeyId(value: Uint8Array): string {
  return Buffer.from(single(value, 0x04, 'subjectKeyIdentifier').value).toString('hex');
}

/** AuthorityKeyIdentifier := SEQUENCE { [0] keyIdentifier IMPLICIT OCTET STRING OPTIONAL, [1] …, [2] … }. */
export function authorityKeyId(value: Uint8Array): string | undefined {
  const c = children(single(value, 0x30, 'authorityKeyIdentifier').value);
  for (const t of c) if (t.tag !== 0x80 && t.tag !== 0xa1 && t.tag !== 0x82) throw new DerError('authorityKeyIdentifier: unexpected field');
  const k = c.find((t) => t.tag === 0x80);
  return k ? Buffer.from(k.value).toString('hex') : undefined;
}

const SHORT_NAMES: Record<string, string> = { '2.5.4.3': 'CN', '2.5.4.6': 'C', '2.5.4.7': 'L', '2.5.4.8': 'ST', '2.5.4.10': 'O', '2.5.4.11': 'OU' };

function directoryString(t: Tlv): string {
  const b = Buffer.from(t.value.buffer, t.value.byteOffset, t.value.byteLength);
  switch (t.tag) {
    case 0x0c: // UTF8String
      return b.toString('utf8');
    case 0x13: // PrintableString
    case 0x16: // IA5String
    case 0x14: // TeletexString (treated as Latin-1)
      return b.toString('latin1');
    case 0x1e: // BMPString (UCS-2 big-endian)
      return Buffer.from(b).swap16().toString('utf16le');
    default:
      return `#${b.toString('hex')}`;
  }
}

/** A Name as a display DN, `CN=..., O=...` in encoding order, RFC 4514 escapes (the form of pki.ts's nativeDn). */
export function nameDisplay(name: Tlv): string {
  if (name.tag !== 0x30) throw new DerError('Name: not a SEQUENCE');
  const parts: string[] = [];
  for (const rdn of children(name.value)) {
    if (rdn.tag !== 0x31) throw new DerError('Name: RDN is not a SET');
    for (const atv of children(rdn.value)) {
      const c = atv.tag === 0x30 ? children(atv.value) : [];
      if (c.length !== 2) throw new DerError('Name: attribute is not a SEQUENCE { type, value }');
      const type = oid(c[0], 'attribute type');
      parts.push(`${SHORT_NAMES[type] ?? type}=${directoryString(c[1]).replace(/[\\,+"<>;]/g, (x) => `\\${x}`)}`);
    }
  }
  return parts.join(', ');
}

/** UTCTime (YYMMDDHHMMSSZ, RFC 5280: 50..99 = 19xx) or GeneralizedTime (YYYYMMDDHHMMSSZ). */
export function time(t: Tlv, what: string): Date {
  const s = Buffer.from(t.value).toString('latin1');
  const m = t.tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : t.tag === 0x18 ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : null;
  if (!m) throw new DerError(`${what}: not a UTCTime or GeneralizedTime in Z form`);
  let year = Number(m[1]);
  if (t.tag === 0x17) year += year < 50 ? 2000 : 1900;
  const d = new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
  if (Number.isNaN(d.getTime()) || d.getUTCDate() !== Number(m[3])) throw new DerError(`${what}: not a valid date`);
  return d;
}

export interface CrlParts {
  /** 1 for v2, undefined when absent (v1). */
  version?: number;
  sigAlg: string;
  tbsSigAlg: string;
  sigAlgParams: boolean;
  sigAlgParamsDer?: Uint8Array;
  issuer: Tlv;
  thisUpdate: Date;
  nextUpdate?: Date;
  revoked: { serial: Uint8Array; extensions: DerExtension[] }[];
  extensions: DerExtension[];
  /** The to-be-signed bytes and the signature (BIT STRING contents without the unused-bits octet). */
  tbs: Uint8Array;
  signature: Uint8Array;
}

/**
 * CertificateList := SEQUENCE { tbsCertList, signatureAlgorithm, signature BIT STRING }; TBSCertList := SEQUENCE {
 * version INTEGER OPTIONAL, signature, issuer, thisUpdate, nextUpdate OPTIONAL, revokedCertificates SEQUENCE OF
 * SEQUENCE { userCertificate, revocationDate, crlEntryExtensions OPTIONAL } OPTIONAL, [0] crlExtensions OPTIONAL }.
 */
export function crlParts(der: Uint8Array): CrlParts {
  const crl = single(der, 0x30, 'CRL');
  const top = children(crl.value);
  if (top.length !== 3 || top[0].tag !== 0x30 || top[2].tag !== 0x03) throw new DerError('CRL: not tbsCertList, algorithm, signature');
  const sigBits = top[2].value;
  if (sigBits.length < 1 || sigBits[0] !== 0) throw new DerError('CRL signature: bad BIT STRING');
  const f = children(top[0].value);
  let i = 0;
  const version = f[i]?.tag === 0x02 ? smallUint(f[i++], 'CRL version') : undefined;
  if (f.length < i + 3) throw new DerError('tbsCertList: fields missing');
  const tbsAlg = algorithm(f[i++], 'tbsCertList signature');
  const outerAlg = algorithm(top[1], 'CRL signatureAlgorithm');
  const issuer = f[i++];
  if (issuer.tag !== 0x30) throw new DerError('CRL issuer: not a Name');
  const thisUpdate = time(f[i++], 'thisUpdate');
  const nextUpdate = f[i] && (f[i].tag === 0x17 || f[i].tag === 0x18) ? time(f[i++], 'nextUpdate') : undefined;
  const revoked: CrlParts['revoked'] = [];
  if (f[i]?.tag === 0x30) {
    for (const r of children(f[i++].value)) {
      const c = r.tag === 0x30 ? children(r.value) : [];
      if (c.length < 2 || c.length > 3 || c[0].tag !== 0x02 || c[0].value.length === 0) throw new DerError('CRL entry: not { serial, date, extensions? }');
      time(c[1], 'revocationDate');
      revoked.push({ serial: c[0].value, extensions: c.length === 3 ? extensionList(c[2]) : [] });
    }
  }
  let extensions: DerExtension[] = [];
  if (f[i]?.tag === 0xa0) {
    const inner = children(f[i++].value);
    if (inner.length !== 1) throw new DerError('crlExtensions: [0] must hold one SEQUENCE');
    extensions = extensionList(inner[0]);
  }
  if (i !== f.length) throw new DerError('tbsCertList: unexpected fields');
  return {
    version,
    sigAlg: outerAlg.id,
    tbsSigAlg: tbsAlg.id,
    sigAlgParams: outerAlg.params || tbsAlg.params,
    sigAlgParamsDer: outerAlg.paramsDer,
    issuer,
    thisUpdate,
    nextUpdate,
    revoked,
    extensions,
    tbs: top[0].raw,
    signature: sigBits.subarray(1),
  };
}
