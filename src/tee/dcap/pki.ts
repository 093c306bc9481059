import { createHash, hash as oneShotHash, X509Certificate, type KeyObject } from 'node:crypto';
import { px509 } from './x509-lib.js';

/**
 * Certificates and CRLs as the DCAP verifier needs them: parsed once, keyed by the SHA-256 of their DER, with a
 * node:crypto KeyObject ready for fast verifies. DN strings come from @peculiar/x509 for both certificates and
 * CRLs so that issuer/subject comparisons use one formatting.
 */
export interface ParsedCert {
  der: Uint8Array;
  hash: string;
  x509: X509Certificate;
  key: KeyObject;
  subject: string;
  issuer: string;
  /** Normalized serial: lower-case hex without leading zeros. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  isCa: boolean;
  /** The same certificate parsed by @peculiar/x509 (DN strings, extensions). */
  peculiar: px509.X509Certificate;
}

export interface ParsedCrl {
  der: Uint8Array;
  hash: string;
  issuer: string;
  thisUpdate: Date;
  nextUpdate?: Date;
  revoked: Set<string>;
  crl: px509.X509Crl;
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

export function cnOf(dn: string): string {
  const m = /(?:^|,\s*)CN=([^,]+)/.exec(dn);
  return m ? m[1] : dn;
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

export function parseCertDer(der: Uint8Array, hash = sha256Hex(der)): ParsedCert {
  assertSingleDer(der, 'certificate');
  const x509 = new X509Certificate(der);
  const peculiar = new px509.X509Certificate(der);
  return {
    der,
    hash,
    x509,
    key: x509.publicKey,
    subject: peculiar.subject,
    issuer: peculiar.issuer,
    serial: normalizeSerial(x509.serialNumber),
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
    isCa: x509.ca,
    peculiar,
  };
}

export function parseCrlDer(der: Uint8Array, hash = sha256Hex(der)): ParsedCrl {
  assertSingleDer(der, 'CRL');
  const crl = new px509.X509Crl(der);
  const revoked = new Set<string>();
  for (const e of crl.entries) revoked.add(normalizeSerial(e.serialNumber));
  return { der, hash, issuer: crl.issuer, thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate, revoked, crl };
}

/** Whether `cert` is within its validity window at `at`. */
export function validAt(c: { notBefore: Date; notAfter: Date }, at: Date): boolean {
  const t = at.getTime();
  return t >= c.notBefore.getTime() && t <= c.notAfter.getTime();
}
