/**
 * The project's own DCAP test PKI, generated at test time: a root, PCK Platform and Processor CAs, PCK leaves with
 * Intel-shaped SGX extensions, a TCB signing certificate, root and PCK CRLs, signed TCB info and QE identity JSON,
 * and a quote builder for SGX v3/v4 and TDX v4/v5. Everything mimics Intel's shapes (QVL X509Constants.cpp,
 * PckCertificate.cpp; DCAP sgx_quote_3/4/5.h) but chains to a root only the tests and samples trust.
 */
import { createHash, KeyObject, sign as nodeSign, webcrypto } from 'node:crypto';
import { px509 } from './x509-lib.js';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificateList, TBSCertList } from '@peculiar/asn1-x509';
import { serializeQuote } from '../../src/tee/dcap/quote.js';
import { INTEL_QE_VENDOR_ID, SGX_EXTENSION_OID } from '../../src/tee/dcap/constants.js';
import { canonicalPem } from '../../src/tee/dcap/pki.js';
import type { DcapCollateral } from '../../src/tee/dcap/collateral.js';

const subtle = webcrypto.subtle;

// ---- tiny DER writer (enough for the SGX extension) ----
function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const b: number[] = [];
  while (n > 0) (b.unshift(n & 0xff), (n >>= 8));
  return Buffer.from([0x80 | b.length, ...b]);
}
const tlv = (tag: number, ...c: Uint8Array[]) => {
  const body = Buffer.concat(c);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
};
const seq = (...c: Uint8Array[]) => tlv(0x30, ...c);
const octets = (b: Uint8Array) => tlv(0x04, b);
function derInt(n: number, tag = 0x02): Buffer {
  const b: number[] = [];
  do (b.unshift(n & 0xff), (n >>= 8));
  while (n > 0);
  if (b[0] & 0x80) b.unshift(0);
  return tlv(tag, Buffer.from(b));
}
function oid(s: string): Buffer {
  const p = s.split('.').map(Number);
  const out: number[] = [p[0] * 40 + p[1]];
  for (const v of p.slice(2)) {
    const enc: number[] = [v & 0x7f];
    let x = v >> 7;
    while (x > 0) (enc.unshift((x & 0x7f) | 0x80), (x >>= 7));
    out.push(...enc);
  }
  return tlv(0x06, Buffer.from(out));
}

export interface PckTcb {
  comps: number[];
  pceSvn: number;
  fmspc: string;
  pceId?: string;
}

/** Intel-shaped SGX extension value (QVL PckCertificate.cpp): PPID, TCB{comp01..16, PCESVN, CPUSVN}, PCE-ID, FMSPC, SGX Type. */
export function sgxExtensionDer(t: PckTcb, platform: boolean): Buffer {
  const O = SGX_EXTENSION_OID;
  const tcb = [
    ...t.comps.map((v, i) => seq(oid(`${O}.2.${i + 1}`), derInt(v))),
    seq(oid(`${O}.2.17`), derInt(t.pceSvn)),
    seq(oid(`${O}.2.18`), octets(Buffer.from(t.comps))),
  ];
  const entries = [
    seq(oid(`${O}.1`), octets(Buffer.alloc(16, 0x11))),
    seq(oid(`${O}.2`), seq(...tcb)),
    seq(oid(`${O}.3`), octets(Buffer.from(t.pceId ?? '0000', 'hex'))),
    seq(oid(`${O}.4`), octets(Buffer.from(t.fmspc, 'hex'))),
    seq(oid(`${O}.5`), derInt(platform ? 1 : 0, 0x0a)),
  ];
  if (platform) {
    entries.push(seq(oid(`${O}.6`), octets(Buffer.alloc(16, 0x22))));
    entries.push(
      seq(
        oid(`${O}.7`),
        seq(seq(oid(`${O}.7.1`), tlv(0x01, Buffer.from([0]))), seq(oid(`${O}.7.2`), tlv(0x01, Buffer.from([0xff])))),
      ),
    );
  }
  return seq(...entries);
}

export interface Party {
  cert: px509.X509Certificate;
  der: Uint8Array;
  pem: string;
  keys: webcrypto.CryptoKeyPair;
  priv: KeyObject;
}

async function keys(curve: 'P-256' | 'P-384' = 'P-256'): Promise<webcrypto.CryptoKeyPair> {
  return (await subtle.generateKey({ name: 'ECDSA', namedCurve: curve }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
}

function party(cert: px509.X509Certificate, k: webcrypto.CryptoKeyPair): Party {
  return { cert, der: new Uint8Array(cert.rawData), pem: cert.toString('pem'), keys: k, priv: KeyObject.from(k.privateKey) };
}

const DN = (cn: string) => `CN=${cn}, O=Coffer Test PKI, L=Santa Clara, ST=CA, C=US`;
let serialCounter = 0x1000;
const nextSerial = () => (serialCounter++).toString(16).padStart(8, '0').replace(/^[89a-f]/, '1');

/**
 * Departures from Intel's certificate profile, for the negative tests. By default a certificate looks like Intel's:
 * critical basicConstraints (root pathlen 1, PCK CA pathlen 0) and keyUsage, SKI and AKI, ecdsa-with-SHA256 on P-256.
 */
export interface CertVariant {
  /** 'omit': no basicConstraints; 'flip': the opposite CA flag. */
  basicConstraints?: 'omit' | 'flip';
  pathLen?: number;
  /** Replace the keyUsage flags, or leave the extension out. */
  keyUsage?: number | 'omit';
  /** Add this (unknown) extension OID, marked critical. */
  criticalExt?: string;
  /** AKI key id to write instead of the issuer's SKI. */
  aki?: string;
  /** Signature hash (Intel: SHA-256). */
  hash?: 'SHA-256' | 'SHA-384';
  curve?: 'P-256' | 'P-384';
}

export interface IssueOptions {
  ca: boolean;
  from: Date;
  to: Date;
  ext?: px509.Extension[];
  serial?: string;
  variant?: CertVariant;
}

async function issue(issuer: Party | undefined, cn: string, o: IssueOptions): Promise<Party> {
  const v = o.variant ?? {};
  const k = await keys(v.curve);
  const ski = await px509.SubjectKeyIdentifierExtension.create(k.publicKey);
  const issuerSki = issuer ? issuer.cert.getExtension(px509.SubjectKeyIdentifierExtension)?.keyId : ski.keyId;
  const ca = v.basicConstraints === 'flip' ? !o.ca : o.ca;
  const extensions: px509.Extension[] = [
    ...(v.basicConstraints === 'omit' ? [] : [new px509.BasicConstraintsExtension(ca, ca ? (v.pathLen ?? (issuer ? 0 : 1)) : undefined, true)]),
    ...(v.keyUsage === 'omit'
      ? []
      : [
          new px509.KeyUsagesExtension(
            v.keyUsage ??
              (o.ca ? px509.KeyUsageFlags.keyCertSign | px509.KeyUsageFlags.cRLSign : px509.KeyUsageFlags.digitalSignature | px509.KeyUsageFlags.nonRepudiation),
            true,
          ),
        ]),
    ski,
    ...(v.aki ?? issuerSki ? [new px509.AuthorityKeyIdentifierExtension((v.aki ?? issuerSki) as string)] : []),
    ...(v.criticalExt ? [new px509.Extension(v.criticalExt, true, new Uint8Array([0x05, 0x00]))] : []),
    ...(o.ext ?? []),
  ];
  const signingAlgorithm = { name: 'ECDSA', hash: v.hash ?? 'SHA-256' };
  const common = { serialNumber: o.serial ?? nextSerial(), notBefore: o.from, notAfter: o.to, extensions, signingAlgorithm };
  const cert = issuer
    ? await px509.X509CertificateGenerator.create({
        ...common,
        subject: DN(cn),
        issuer: issuer.cert.subject,
        publicKey: k.publicKey,
        signingKey: issuer.keys.privateKey,
      })
    : await px509.X509CertificateGenerator.createSelfSigned({ ...common, name: DN(cn), keys: k });
  return party(cert, k);
}

export interface PkiOptions {
  /** Start of every validity window (default: 2026-01-01). */
  from?: Date;
  /** Length of the certificate windows in years (default 10). */
  years?: number;
}

export interface TestPki {
  from: Date;
  to: Date;
  root: Party;
  platformCa: Party;
  processorCa: Party;
  tcbSigner: Party;
  /** A second TCB signing cert, not issued by the root (for bad-chain tests). */
  rogueRoot: Party;
  rogueSigner: Party;
  /** `extDer` replaces the SGX extension value (null: no SGX extension at all); `cn`/`variant` depart from Intel's profile. */
  issuePck(
    ca: 'platform' | 'processor' | Party,
    tcb: PckTcb,
    o?: { from?: Date; to?: Date; extDer?: Uint8Array | null; cn?: string; variant?: CertVariant },
  ): Promise<Party>;
  /** Any certificate under `issuer` (undefined: self-signed), for role and profile tests. */
  issueCert(issuer: Party | undefined, cn: string, o: Omit<IssueOptions, 'from' | 'to'> & { from?: Date; to?: Date }): Promise<Party>;
  crl(issuer: Party, o?: CrlOptions): Promise<Uint8Array>;
}

export interface CrlOptions {
  revoked?: string[];
  thisUpdate?: Date;
  /** null leaves nextUpdate out. */
  nextUpdate?: Date | null;
  /** CRL number (default 1, as Intel's); null leaves it out. */
  number?: number | null;
  /** AKI key id (default: the issuer's SKI); null leaves it out. */
  aki?: string | null;
  hash?: 'SHA-256' | 'SHA-384';
  /** Add this extension OID, marked critical. */
  criticalExt?: string;
  /** Re-encode as a version 1 CRL (no version field, no extensions), re-signed by the issuer. */
  v1?: boolean;
}

/** A v1 CRL (RFC 5280 5.1.2.1: no version, no extensions) with the same issuer, dates and entries as `v2`. */
function asV1Crl(v2: Uint8Array, issuer: Party): Uint8Array {
  const list = AsnConvert.parse(v2, CertificateList);
  const tbs = new TBSCertList({ ...list.tbsCertList, version: undefined, crlExtensions: undefined });
  const tbsDer = new Uint8Array(AsnConvert.serialize(tbs));
  const sig = nodeSign('sha256', tbsDer, { key: issuer.priv, dsaEncoding: 'der' });
  const out = new CertificateList({ tbsCertList: tbs, signatureAlgorithm: list.signatureAlgorithm, signature: new Uint8Array(sig).buffer });
  return new Uint8Array(AsnConvert.serialize(out));
}

/** Intel's common names (QVL X509Constants.h): the test PKI carries them so the role checks run on it too. */
export const CN = {
  root: 'Intel SGX Root CA',
  platformCa: 'Intel SGX PCK Platform CA',
  processorCa: 'Intel SGX PCK Processor CA',
  pck: 'Intel SGX PCK Certificate',
  tcbSigning: 'Intel SGX TCB Signing',
};

export const T0 = new Date('2026-01-01T00:00:00Z');

export async function createTestPki(o: PkiOptions = {}): Promise<TestPki> {
  const from = o.from ?? T0;
  const to = new Date(from.getTime());
  to.setUTCFullYear(to.getUTCFullYear() + (o.years ?? 10));
  const root = await issue(undefined, CN.root, { ca: true, from, to });
  const platformCa = await issue(root, CN.platformCa, { ca: true, from, to });
  const processorCa = await issue(root, CN.processorCa, { ca: true, from, to });
  const tcbSigner = await issue(root, CN.tcbSigning, { ca: false, from, to });
  const rogueRoot = await issue(undefined, CN.root, { ca: true, from, to });
  const rogueSigner = await issue(rogueRoot, CN.tcbSigning, { ca: false, from, to });
  return {
    from,
    to,
    root,
    platformCa,
    processorCa,
    tcbSigner,
    rogueRoot,
    rogueSigner,
    issuePck: (ca, tcb, w = {}) => {
      const issuer = ca === 'platform' ? platformCa : ca === 'processor' ? processorCa : ca;
      const platform = ca === 'platform' || (typeof ca !== 'string' && /platform/i.test(ca.cert.subject));
      return issue(issuer, w.cn ?? CN.pck, {
        ca: false,
        from: w.from ?? from,
        to: w.to ?? to,
        variant: w.variant,
        ext: w.extDer === null ? [] : [new px509.Extension(SGX_EXTENSION_OID, false, w.extDer ?? sgxExtensionDer(tcb, platform))],
      });
    },
    issueCert: (issuer, cn, c) => issue(issuer, cn, { ...c, from: c.from ?? from, to: c.to ?? to }),
    crl: async (issuer, c = {}) => {
      const thisUpdate = c.thisUpdate ?? from;
      const nextUpdate = c.nextUpdate === null ? undefined : (c.nextUpdate ?? to);
      const issuerSki = issuer.cert.getExtension(px509.SubjectKeyIdentifierExtension)?.keyId;
      const aki = c.aki === null ? undefined : (c.aki ?? issuerSki);
      const extensions: px509.Extension[] = [
        ...(c.number === null ? [] : [new px509.Extension('2.5.29.20', false, derInt(c.number ?? 1))]),
        ...(aki ? [new px509.AuthorityKeyIdentifierExtension(aki)] : []),
        ...(c.criticalExt ? [new px509.Extension(c.criticalExt, true, new Uint8Array([0x05, 0x00]))] : []),
      ];
      const crl = await px509.X509CrlGenerator.create({
        issuer: issuer.cert.subject,
        thisUpdate,
        nextUpdate,
        entries: (c.revoked ?? []).map((serialNumber) => ({ serialNumber, revocationDate: thisUpdate })),
        signingKey: issuer.keys.privateKey,
        signingAlgorithm: { name: 'ECDSA', hash: c.hash ?? 'SHA-256' },
        extensions,
      });
      return c.v1 ? asV1Crl(new Uint8Array(crl.rawData), issuer) : new Uint8Array(crl.rawData);
    },
  };
}

// ---- collateral JSON ----

export interface LevelSpec {
  sgx: number[];
  pceSvn: number;
  tdx?: number[];
  status: string;
  advisories?: string[];
  date?: string;
}

export interface TcbInfoSpec {
  id: 'SGX' | 'TDX';
  version?: 2 | 3;
  fmspc: string;
  pceId?: string;
  issueDate: Date;
  nextUpdate: Date;
  levels: LevelSpec[];
  tdxModule?: { mrsigner: string; attributes: string; attributesMask: string };
  tdxModuleIdentities?: { id: string; mrsigner: string; attributes: string; attributesMask: string; levels: { isvsvn: number; status: string; advisories?: string[] }[] }[];
  evalNumber?: number;
}

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** TCB info JSON text exactly as Intel serves the signed member: compact, Intel's key order. */
export function tcbInfoJson(s: TcbInfoSpec): string {
  const v = s.version ?? 3;
  const level = (l: LevelSpec) => {
    const tcb: Record<string, unknown> =
      v === 2
        ? Object.fromEntries([...l.sgx.map((x, i) => [`sgxtcbcomp${String(i + 1).padStart(2, '0')}svn`, x]), ['pcesvn', l.pceSvn]])
        : {
            sgxtcbcomponents: l.sgx.map((svn) => ({ svn })),
            pcesvn: l.pceSvn,
            ...(l.tdx ? { tdxtcbcomponents: l.tdx.map((svn) => ({ svn })) } : {}),
          };
    return { tcb, tcbDate: l.date ?? '2025-01-01T00:00:00Z', tcbStatus: l.status, ...(l.advisories ? { advisoryIDs: l.advisories } : {}) };
  };
  const j: Record<string, unknown> = {
    ...(v === 3 ? { id: s.id } : {}),
    version: v,
    issueDate: iso(s.issueDate),
    nextUpdate: iso(s.nextUpdate),
    fmspc: s.fmspc,
    pceId: s.pceId ?? '0000',
    tcbType: 0,
    tcbEvaluationDataNumber: s.evalNumber ?? 17,
  };
  if (s.tdxModule) j.tdxModule = s.tdxModule;
  if (s.tdxModuleIdentities) {
    j.tdxModuleIdentities = s.tdxModuleIdentities.map((m) => ({
      id: m.id,
      mrsigner: m.mrsigner,
      attributes: m.attributes,
      attributesMask: m.attributesMask,
      tcbLevels: m.levels.map((l) => ({ tcb: { isvsvn: l.isvsvn }, tcbDate: '2025-01-01T00:00:00Z', tcbStatus: l.status, ...(l.advisories ? { advisoryIDs: l.advisories } : {}) })),
    }));
  }
  j.tcbLevels = s.levels.map(level);
  return JSON.stringify(j);
}

export interface QeIdentitySpec {
  id: 'QE' | 'TD_QE';
  issueDate: Date;
  nextUpdate: Date;
  mrsigner: string;
  isvprodid: number;
  miscselect?: string;
  miscselectMask?: string;
  attributes?: string;
  attributesMask?: string;
  levels: { isvsvn: number; status: string; advisories?: string[] }[];
}

export function qeIdentityJson(s: QeIdentitySpec): string {
  return JSON.stringify({
    id: s.id,
    version: 2,
    issueDate: iso(s.issueDate),
    nextUpdate: iso(s.nextUpdate),
    tcbEvaluationDataNumber: 17,
    miscselect: s.miscselect ?? '00000000',
    miscselectMask: s.miscselectMask ?? 'FFFFFFFF',
    attributes: s.attributes ?? '11000000000000000000000000000000',
    attributesMask: s.attributesMask ?? 'FBFFFFFFFFFFFFFF0000000000000000',
    mrsigner: s.mrsigner,
    isvprodid: s.isvprodid,
    tcbLevels: s.levels.map((l) => ({ tcb: { isvsvn: l.isvsvn }, tcbDate: '2025-01-01T00:00:00Z', tcbStatus: l.status, ...(l.advisories ? { advisoryIDs: l.advisories } : {}) })),
  });
}

/** ECDSA P-256 / SHA-256 as 64-byte r‖s, the form Intel uses for TCB info and QE identity signatures. */
export function signP1363(priv: KeyObject, data: Uint8Array): Uint8Array {
  return new Uint8Array(nodeSign('sha256', data, { key: priv, dsaEncoding: 'ieee-p1363' }));
}

// ---- quotes ----

export const QE_MRSIGNER = '8c4f5775d796503e96137f77c68a829a0056ac8ded70140b081b094490c57bff';
export const TDX_MODULE_MRSIGNER = '00'.repeat(48);

export interface QuoteSpec {
  version: 3 | 4 | 5;
  tee: 'sgx' | 'tdx';
  /** TD 1.5 body in a v5 quote. */
  td15?: boolean;
  reportData?: Uint8Array;
  debug?: boolean;
  mrEnclave?: Uint8Array;
  mrSigner?: Uint8Array;
  isvProdId?: number;
  isvSvn?: number;
  teeTcbSvn?: number[];
  /** TD 1.5: current TCB (default: same as teeTcbSvn). */
  teeTcbSvn2?: number[];
  mrSignerSeam?: Uint8Array;
  seamAttributes?: Uint8Array;
  mrTd?: Uint8Array;
  qeIsvSvn?: number;
  qeIsvProdId?: number;
  qeMrSigner?: string;
  qeAuthData?: Uint8Array;
  /** Break the binding: QE report data is not SHA-256(attest key ‖ auth data). */
  badBinding?: boolean;
  pck: Party;
  pckChain: Party[];
  attKey?: webcrypto.CryptoKeyPair;
}

export function sgxBody(s: QuoteSpec): Buffer {
  const b = Buffer.alloc(384);
  Buffer.from([3, 3, 2, 2, 3, 1, 0, 3]).copy(b, 0);
  b[48] = s.debug ? 0x07 : 0x05;
  b[56] = 0xe7;
  Buffer.from(s.mrEnclave ?? Buffer.alloc(32, 0xe1)).copy(b, 64);
  Buffer.from(s.mrSigner ?? Buffer.alloc(32, 0x51)).copy(b, 128);
  b.writeUInt16LE(s.isvProdId ?? 1, 256);
  b.writeUInt16LE(s.isvSvn ?? 2, 258);
  Buffer.from(s.reportData ?? Buffer.alloc(64, 0x42)).copy(b, 320);
  return b;
}

export function tdBody(s: QuoteSpec): Buffer {
  const b = Buffer.alloc(s.td15 ? 648 : 584);
  Buffer.from(s.teeTcbSvn ?? [3, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).copy(b, 0);
  Buffer.alloc(48, 0x5e).copy(b, 16);
  Buffer.from(s.mrSignerSeam ?? Buffer.alloc(48)).copy(b, 64);
  Buffer.from(s.seamAttributes ?? Buffer.alloc(8)).copy(b, 112);
  b[120] = s.debug ? 0x01 : 0x00;
  b[123] = 0x10; // SEPT_VE_DISABLE
  b.writeUInt32LE(0xe7, 128);
  Buffer.from(s.mrTd ?? Buffer.alloc(48, 0x7d)).copy(b, 136);
  for (let i = 0; i < 4; i++) Buffer.alloc(48, 0xa0 + i).copy(b, 328 + 48 * i);
  Buffer.from(s.reportData ?? Buffer.alloc(64, 0x42)).copy(b, 520);
  if (s.td15) Buffer.from(s.teeTcbSvn2 ?? s.teeTcbSvn ?? [3, 0, 2]).copy(b, 584);
  return b;
}

function qeReport(s: QuoteSpec, attPub: Uint8Array, auth: Uint8Array): Buffer {
  const b = Buffer.alloc(384);
  b[48] = 0x11; // INIT | MODE64BIT, no DEBUG
  Buffer.alloc(32, 0x9e).copy(b, 64);
  Buffer.from(s.qeMrSigner ?? QE_MRSIGNER, 'hex').copy(b, 128);
  b.writeUInt16LE(s.qeIsvProdId ?? (s.tee === 'sgx' ? 1 : 2), 256);
  b.writeUInt16LE(s.qeIsvSvn ?? 8, 258);
  const h = createHash('sha256').update(attPub).update(auth).digest();
  if (s.badBinding) h[0] ^= 1;
  h.copy(b, 320);
  return b;
}

export async function buildQuote(s: QuoteSpec): Promise<Uint8Array> {
  const att = s.attKey ?? (await keys());
  const jwk = await subtle.exportKey('jwk', att.publicKey);
  const attPub = Buffer.concat([Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  const auth = s.qeAuthData ?? new Uint8Array(Buffer.alloc(32, 0xad));
  const qe = qeReport(s, attPub, auth);
  // Strict PEM plus a trailing NUL, as Intel's QE writes it.
  const certData = Buffer.from([s.pck, ...s.pckChain].map((p) => canonicalPem(p.der)).join('') + '\0');
  const sgx = s.tee === 'sgx';
  const body = sgx ? sgxBody(s) : tdBody(s);
  const header = Buffer.alloc(4);
  if (s.version === 3) header.writeUInt16LE(8, 0), header.writeUInt16LE(13, 2);
  const q: Parameters<typeof serializeQuote>[0] = {
    version: s.version,
    attKeyType: 2,
    teeType: sgx ? 0 : 0x81,
    headerTeeField: s.version === 3 ? 0 : sgx ? 0 : 0x81,
    headerSvnField: new Uint8Array(header),
    qeVendorId: new Uint8Array(INTEL_QE_VENDOR_ID),
    userData: new Uint8Array(20).fill(0x0e),
    bodyType: (sgx ? 1 : s.td15 ? 3 : 2) as 1 | 2 | 3,
    body: new Uint8Array(body),
    signature: new Uint8Array(64),
    attestKey: new Uint8Array(attPub),
    qeReport: new Uint8Array(qe),
    qeReportSignature: signP1363(s.pck.priv, qe),
    qeAuthData: auth,
    certType: 5,
    certData: new Uint8Array(certData),
  };
  const signedLen = 48 + (s.version === 5 ? 6 : 0) + body.length;
  const unsigned = serializeQuote(q);
  q.signature = signP1363(KeyObject.from(att.privateKey), unsigned.subarray(0, signedLen));
  return serializeQuote(q);
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

export { type DcapCollateral };
