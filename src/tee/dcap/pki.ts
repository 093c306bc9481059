import { createHash, hash as oneShotHash, X509Certificate, type KeyObject } from 'node:crypto';
import { certificateParts, crlParts, nameDisplay, type CertificateParts, type CrlParts, type DerExtension } from '../common/der.js';

/**
 * Certificates and CRLs as the DCAP verifier needs them: parsed once, keyed by the SHA-256 of their DER, with a
 * node:crypto KeyObject ready for fast verifies. Certificates are parsed and verified by node:crypto's native
 * X509Certificate (microseconds); what node:crypto has no answer for (a certificate's extensions, on demand, and
 * CRLs) is read by the strict DER reader of der.ts. Issuer/subject matching compares the DER bytes of the names
 * (`subjectKey`/`issuerKey`); the display strings are for messages and role names.
 */
export interface ParsedCert {
  der: Uint8Array;
  hash: string;
  x509: X509Certificate;
  key: KeyObject;
  /** Display DN, `CN=..., O=...` (RFC 4514 escaping of `,`). */
  subject: string;
  issuer: string;
  /** Hex of the DER Name: what issuer/subject matching compares. */
  subjectKey: string;
  issuerKey: string;
  /** Normalized serial: lower-case hex without leading zeros. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  isCa: boolean;
  /** Algorithm identifiers and extensions, read from the DER on first use. */
  readonly parts: CertificateParts;
}

export interface ParsedCrl {
  der: Uint8Array;
  hash: string;
  issuer: string;
  issuerKey: string;
  thisUpdate: Date;
  nextUpdate?: Date;
  revoked: Set<string>;
  parts: CrlParts;
}

export function sha256Hex(...parts: (Uint8Array | string)[]): string {
  if (parts.length === 1) return oneShotHash('sha256', parts[0], 'hex');
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

export function normalizeSerial(hex: string): string {
  const s = hex.toLowerCase().replace(/^0+/, '');
  return s === '' ? '0' : s;
}

/** The common name of a display DN (RFC 4514 escapes undone). */
export function cnOf(dn: string): string {
  const m = /(?:^|,\s*)CN=((?:\\.|[^,\\])+)/.exec(dn);
  return m ? m[1].replace(/\\(.)/g, '$1') : dn;
}

const PEM_RE = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** All PEM blocks of a text (label + DER). */
export function pemBlocks(text: string): { label: string; der: Uint8Array }[] {
  const out: { label: string; der: Uint8Array }[] = [];
  for (const m of text.matchAll(PEM_RE)) {
    out.push({ label: m[1], der: new Uint8Array(Buffer.from(m[2].replace(/\s+/g, ''), 'base64')) });
  }
  return out;
}

/** DER must be exactly one TLV: parsers tolerate trailing bytes, which would let unsigned bytes ride along. */
export function assertSingleDer(der: Uint8Array, what: string): void {
  if (der.length < 2 || der[0] !== 0x30) throw new Error(`${what} is not a DER SEQUENCE`);
  let len = der[1];
  let off = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || der.length < 2 + n) throw new Error(`${what} has a bad DER length`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[2 + i];
    off = 2 + n;
  }
  if (off + len !== der.length) throw new Error(`${what} DER length ${off + len} does not match its ${der.length} bytes`);
}

/** RFC 7468 strict PEM: 64-character lines, LF line ends (the form Intel's QE embeds in quotes). */
export function canonicalPem(der: Uint8Array, label = 'CERTIFICATE'): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** [value start, value end) of the DER TLV at `off`, and the tag. */
function tlv(der: Uint8Array, off: number, what: string): { tag: number; start: number; end: number } {
  if (off + 2 > der.length) throw new Error(`${what} DER is truncated`);
  let len = der[off + 1];
  let p = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > der.length) throw new Error(`${what} has a bad DER length`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[p + i];
    p += n;
  }
  if (p + len > der.length) throw new Error(`${what} DER is truncated`);
  return { tag: der[off], start: p, end: p + len };
}

/**
 * The raw DER of the issuer (and subject) Name inside a certificate's or CRL's to-be-signed part, walked by tag:
 * Certificate: [0] version?, serial, signature, issuer, validity, subject. TBSCertList: version?, signature, issuer.
 */
function names(der: Uint8Array, kind: 'cert' | 'crl'): { issuer: Uint8Array; subject?: Uint8Array } {
  const outer = tlv(der, 0, kind);
  const tbs = tlv(der, outer.start, kind);
  let off = tbs.start;
  const next = () => {
    const t = tlv(der, off, kind);
    const raw = der.subarray(off, t.end);
    off = t.end;
    return { tag: t.tag, raw };
  };
  let e = next();
  if ((kind === 'cert' && e.tag === 0xa0) || (kind === 'crl' && e.tag === 0x02)) e = next();
  if (kind === 'cert') e = next(); // serial → signature algorithm
  const issuer = next();
  if (issuer.tag !== 0x30) throw new Error(`${kind} issuer is not a Name`);
  if (kind === 'crl') return { issuer: issuer.raw };
  next(); // validity
  const subject = next();
  if (subject.tag !== 0x30) throw new Error('certificate subject is not a Name');
  return { issuer: issuer.raw, subject: subject.raw };
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** node:crypto's multi-line DN (RFC 2253-escaped values) as one `CN=..., O=...` line. */
function nativeDn(multiline: string): string {
  return multiline.split('\n').join(', ');
}

export function parseCertDer(der: Uint8Array, hash = sha256Hex(der)): ParsedCert {
  assertSingleDer(der, 'certificate');
  const x509 = new X509Certificate(der);
  const n = names(der, 'cert');
  let parts: CertificateParts | undefined;
  return {
    der,
    hash,
    x509,
    key: x509.publicKey,
    subject: nativeDn(x509.subject),
    issuer: nativeDn(x509.issuer),
    subjectKey: hex(n.subject!),
    issuerKey: hex(n.issuer),
    serial: normalizeSerial(x509.serialNumber),
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
    isCa: x509.ca,
    get parts() {
      return (parts ??= certificateParts(der));
    },
  };
}

/** The extension with this OID of a parsed certificate, if it has one. */
export function certExtension(c: ParsedCert, oid: string): DerExtension | undefined {
  return c.parts.extensions.find((e) => e.id === oid);
}

export function parseCrlDer(der: Uint8Array, hash = sha256Hex(der)): ParsedCrl {
  assertSingleDer(der, 'CRL');
  const parts = crlParts(der);
  const revoked = new Set<string>();
  for (const e of parts.revoked) revoked.add(normalizeSerial(hex(e.serial)));
  return {
    der,
    hash,
    issuer: nameDisplay(parts.issuer),
    issuerKey: hex(parts.issuer.raw),
    thisUpdate: parts.thisUpdate,
    nextUpdate: parts.nextUpdate,
    revoked,
    parts,
  };
}

/** Whether `cert` is within its validity window at `at`. */
export function validAt(c: { notBefore: Date; notAfter: Date }, at: Date): boolean {
  const t = at.getTime();
  return t >= c.notBefore.getTime() && t <= c.notAfter.getTime();
}
