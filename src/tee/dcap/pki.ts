import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
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
  /** Raw DER of the extension values by OID (only the ones callers ask for are decoded). */
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

export function parseCertDer(der: Uint8Array, hash = sha256Hex(der)): ParsedCert {
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
