/**
 * A private PKI shaped like AMD's (ARK → ASK/ASVK → VCEK/VLEK, RSASSA-PSS SHA-384 salt 48, P-384 endorsement keys
 * with the KDS extensions) and a signer for SEV-SNP reports, so every failure path can be produced on demand.
 * RSA-2048 instead of AMD's 4096 to keep key generation fast; nothing in the verifier depends on the size.
 */
import { constants, createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  BasicConstraints,
  Certificate,
  CertificateList,
  Extension,
  Extensions,
  id_ce_basicConstraints,
  Name,
  RelativeDistinguishedName,
  RevokedCertificate,
  SubjectPublicKeyInfo,
  TBSCertificate,
  TBSCertList,
  Time,
  Validity,
  Version,
} from '@peculiar/asn1-x509';
import { serializeReport, type SnpReport } from '../../src/tee/snp/abi/report.js';
import { decodeTcb, encodeTcb, layoutFor, type TcbVersion } from '../../src/tee/snp/abi/tcb.js';
import type { ProductLine } from '../../src/tee/snp/abi/product.js';

const PSS_PARAMS = Buffer.from(
  '3039a00f300d06096086480165030402020500a11c301a06092a864886f70d010108300d06096086480165030402020500a203020130a303020101',
  'hex',
);
const PKCS1_SHA384 = '1.2.840.113549.1.1.12';

export interface Issued {
  der: Uint8Array;
  key: KeyObject;
  publicKey: KeyObject;
  serial: string;
}

function name(cn: string): Name {
  const rdn = (type: string, v: AttributeValue) => new RelativeDistinguishedName([new AttributeTypeAndValue({ type, value: v })]);
  return new Name([
    rdn('2.5.4.11', new AttributeValue({ utf8String: 'Engineering' })),
    rdn('2.5.4.6', new AttributeValue({ printableString: 'US' })),
    rdn('2.5.4.7', new AttributeValue({ utf8String: 'Santa Clara' })),
    rdn('2.5.4.8', new AttributeValue({ utf8String: 'CA' })),
    rdn('2.5.4.10', new AttributeValue({ utf8String: 'Advanced Micro Devices' })),
    rdn('2.5.4.3', new AttributeValue({ utf8String: cn })),
  ]);
}

function algId(pss: boolean): AlgorithmIdentifier {
  return pss
    ? new AlgorithmIdentifier({ algorithm: '1.2.840.113549.1.1.10', parameters: new Uint8Array(PSS_PARAMS).buffer })
    : new AlgorithmIdentifier({ algorithm: PKCS1_SHA384, parameters: null });
}

function rsaSign(data: Uint8Array, key: KeyObject, pss: boolean): ArrayBuffer {
  const sig = pss
    ? sign('sha384', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 })
    : sign('sha384', data, { key, padding: constants.RSA_PKCS1_PADDING });
  return new Uint8Array(sig).buffer;
}

const ab = (b: Uint8Array) => new Uint8Array(b).buffer as ArrayBuffer; // a copy (Buffer#slice is a view into the pool)

export interface CertSpec {
  cn: string;
  issuerCn: string;
  issuerKey: KeyObject;
  publicKey: KeyObject;
  serial: string;
  notBefore?: Date;
  notAfter?: Date;
  ca?: boolean;
  /** Extra extensions: OID → extnValue bytes (AMD puts raw DER or raw bytes there). */
  ext?: [string, Uint8Array][];
  /** false = PKCS#1 v1.5 (to prove the verifier insists on PSS). */
  pss?: boolean;
}

export function makeCert(s: CertSpec): Uint8Array {
  const pss = s.pss ?? true;
  const exts: Extension[] = [];
  if (s.ca) {
    exts.push(
      new Extension({
        extnID: id_ce_basicConstraints,
        critical: true,
        extnValue: new OctetString(AsnConvert.serialize(new BasicConstraints({ cA: true }))),
      }),
    );
  }
  for (const [oid, v] of s.ext ?? []) exts.push(new Extension({ extnID: oid, critical: false, extnValue: new OctetString(ab(v)) }));
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: ab(Buffer.from(s.serial, 'hex')),
    signature: algId(pss),
    issuer: name(s.issuerCn),
    validity: new Validity({ notBefore: s.notBefore ?? new Date('2020-01-01Z'), notAfter: s.notAfter ?? new Date('2045-01-01Z') }),
    subject: name(s.cn),
    subjectPublicKeyInfo: AsnConvert.parse(ab(new Uint8Array(s.publicKey.export({ type: 'spki', format: 'der' }))), SubjectPublicKeyInfo),
    extensions: exts.length ? new Extensions(exts) : undefined,
  });
  const tbsDer = new Uint8Array(AsnConvert.serialize(tbs));
  const cert = new Certificate({ tbsCertificate: tbs, signatureAlgorithm: algId(pss), signatureValue: rsaSign(tbsDer, s.issuerKey, pss) });
  return new Uint8Array(AsnConvert.serialize(cert));
}

export interface CrlSpec {
  issuerCn: string;
  issuerKey: KeyObject;
  revoked?: string[];
  thisUpdate?: Date;
  nextUpdate?: Date;
}

export function makeCrl(s: CrlSpec): Uint8Array {
  const tbs = new TBSCertList({
    version: Version.v2,
    signature: algId(true),
    issuer: name(s.issuerCn),
    thisUpdate: new Time(s.thisUpdate ?? new Date('2022-01-01Z')),
    nextUpdate: new Time(s.nextUpdate ?? new Date('2040-01-01Z')),
    revokedCertificates: s.revoked?.length
      ? s.revoked.map((r) => new RevokedCertificate({ userCertificate: ab(Buffer.from(r, 'hex')), revocationDate: new Time(new Date('2022-01-01Z')) }))
      : undefined,
  });
  const tbsDer = new Uint8Array(AsnConvert.serialize(tbs));
  return new Uint8Array(AsnConvert.serialize(new CertificateList({ tbsCertList: tbs, signatureAlgorithm: algId(true), signature: rsaSign(tbsDer, s.issuerKey, true) })));
}

export function toPem(...ders: Uint8Array[]): Uint8Array {
  const text = ders
    .map((d) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(d).toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`)
    .join('');
  return new Uint8Array(Buffer.from(text.replace(/\n\n/g, '\n')));
}

const rsaCache = new Map<string, { privateKey: KeyObject; publicKey: KeyObject }>();
function rsa(label: string) {
  let k = rsaCache.get(label);
  if (!k) {
    k = generateKeyPairSync('rsa', { modulusLength: 2048 });
    rsaCache.set(label, k);
  }
  return k;
}

export function p384() {
  return generateKeyPairSync('ec', { namedCurve: 'P-384' });
}

// DER helpers for the VCEK extensions.
const derInt = (n: number) => {
  const bytes = n === 0 ? [0] : [];
  for (let x = n; x > 0; x = Math.floor(x / 256)) bytes.unshift(x & 0xff);
  if (bytes[0] & 0x80) bytes.unshift(0);
  return new Uint8Array([0x02, bytes.length, ...bytes]);
};
const derIa5 = (s: string) => new Uint8Array([0x16, s.length, ...Buffer.from(s)]);
const OID = (arc: string) => `1.3.6.1.4.1.3704.1.${arc}`;

export interface LeafSpec {
  kind?: 'vcek' | 'vlek';
  tcb: TcbVersion;
  chipId?: Uint8Array;
  productName?: string;
  notBefore?: Date;
  notAfter?: Date;
  /** Replace or drop (undefined) extensions by arc, e.g. { '3.3': derInt(9) } or { '4': undefined }. */
  override?: Record<string, Uint8Array | undefined>;
  serial?: string;
  /** Sign with another key than the product's ASK/ASVK. */
  issuerKey?: KeyObject;
  pss?: boolean;
  /** Mark the leaf as a CA (AMD endorsement-key certificates are not). */
  ca?: boolean;
  key?: { privateKey: KeyObject; publicKey: KeyObject };
}

export { derInt, derIa5 };

/** One product's hierarchy. Keys are cached per product and label so suites share the RSA key generation cost. */
export class SnpTestPki {
  readonly ark: Issued;
  readonly ask: Issued;
  readonly asvk: Issued;
  constructor(
    readonly product: ProductLine = 'Milan',
    label = 'default',
  ) {
    const a = rsa(`${label}:${product}:ark`);
    const s = rsa(`${label}:${product}:ask`);
    const v = rsa(`${label}:${product}:asvk`);
    const serialBase = { Milan: '01', Genoa: '02', Turin: '03' }[product];
    this.ark = this.issued(
      makeCert({ cn: `ARK-${product}`, issuerCn: `ARK-${product}`, issuerKey: a.privateKey, publicKey: a.publicKey, serial: `${serialBase}0000`, ca: true }),
      a,
      `${serialBase}0000`,
    );
    this.ask = this.issued(
      makeCert({ cn: `SEV-${product}`, issuerCn: `ARK-${product}`, issuerKey: a.privateKey, publicKey: s.publicKey, serial: `${serialBase}0001`, ca: true }),
      s,
      `${serialBase}0001`,
    );
    this.asvk = this.issued(
      makeCert({ cn: `SEV-VLEK-${product}`, issuerCn: `ARK-${product}`, issuerKey: a.privateKey, publicKey: v.publicKey, serial: `${serialBase}0101`, ca: true }),
      v,
      `${serialBase}0101`,
    );
  }

  private issued(der: Uint8Array, k: { privateKey: KeyObject; publicKey: KeyObject }, serial: string): Issued {
    return { der, key: k.privateKey, publicKey: k.publicKey, serial };
  }

  get trustAnchors(): Uint8Array[] {
    return [this.ark.der];
  }

  /** ASK/ASVK + ARK as KDS cert_chain serves it. */
  chainPem(kind: 'vcek' | 'vlek' = 'vcek'): Uint8Array {
    return toPem(kind === 'vcek' ? this.ask.der : this.asvk.der, this.ark.der);
  }

  leaf(spec: LeafSpec): Issued {
    const kind = spec.kind ?? 'vcek';
    const key = spec.key ?? p384();
    const turin = this.product === 'Turin';
    const ext = new Map<string, Uint8Array | undefined>([
      ['1', derInt(turin ? 1 : 0)],
      ['2', derIa5(spec.productName ?? (kind === 'vlek' || turin ? this.product : `${this.product}-B0`))],
      ...(turin ? [['3.9', derInt(spec.tcb.fmc ?? 0)] as [string, Uint8Array]] : []),
      ['3.1', derInt(spec.tcb.bootloader)],
      ['3.2', derInt(spec.tcb.tee)],
      ['3.3', derInt(spec.tcb.snp)],
      ['3.8', derInt(spec.tcb.microcode)],
    ]);
    if (kind === 'vcek') ext.set('4', (spec.chipId ?? new Uint8Array(64).fill(0xab)).subarray(0, turin ? 8 : 64));
    else ext.set('5', derIa5('coffer-test-csp'));
    for (const [arc, v] of Object.entries(spec.override ?? {})) ext.set(arc, v);
    const serial = spec.serial ?? '00';
    const issuer = kind === 'vcek' ? this.ask : this.asvk;
    const der = makeCert({
      cn: kind === 'vcek' ? 'SEV-VCEK' : 'SEV-VLEK',
      issuerCn: kind === 'vcek' ? `SEV-${this.product}` : `SEV-VLEK-${this.product}`,
      issuerKey: spec.issuerKey ?? issuer.key,
      publicKey: key.publicKey,
      serial,
      notBefore: spec.notBefore ?? new Date('2023-01-01Z'),
      notAfter: spec.notAfter ?? new Date('2030-01-01Z'),
      ext: [...ext].filter((e): e is [string, Uint8Array] => e[1] !== undefined).map(([arc, v]) => [OID(arc), v]),
      pss: spec.pss,
      ca: spec.ca,
    });
    return { der, key: key.privateKey, publicKey: key.publicKey, serial };
  }

  crl(revoked: string[] = [], window?: { thisUpdate?: Date; nextUpdate?: Date }, issuerKey?: KeyObject): Uint8Array {
    return makeCrl({ issuerCn: `ARK-${this.product}`, issuerKey: issuerKey ?? this.ark.key, revoked, ...window });
  }
}

/** CPUID family/model that identify each product in v3+ reports. */
export const CPUID: Record<ProductLine, { family: number; model: number; stepping: number }> = {
  Milan: { family: 0x19, model: 0x01, stepping: 0x01 },
  Genoa: { family: 0x19, model: 0x11, stepping: 0x01 },
  Turin: { family: 0x1a, model: 0x02, stepping: 0x00 },
};

export function tcbFor(product: ProductLine, t: { fmc?: number; bootloader: number; tee: number; snp: number; microcode: number }): TcbVersion {
  const layout = layoutFor(product);
  return decodeTcb(encodeTcb(t, layout), layout);
}

export interface ReportSpec extends Partial<Omit<SnpReport, 'product' | 'tcbLayout'>> {
  product?: ProductLine;
}

/** A report struct with plausible defaults; `version` 2 carries no CPUID. */
export function reportFields(spec: ReportSpec = {}): SnpReport {
  const product = spec.product ?? 'Milan';
  const version = spec.version ?? 3;
  const tcb = tcbFor(product, { fmc: 1, bootloader: 3, tee: 0, snp: 8, microcode: 115 });
  const z = (n: number) => new Uint8Array(n);
  const base: SnpReport = {
    version,
    guestSvn: 1,
    policy: 0x30000n,
    policyBits: undefined as never,
    familyId: z(16),
    imageId: z(16),
    vmpl: 0,
    signatureAlgo: 1,
    product,
    tcbLayout: layoutFor(product),
    currentTcb: tcb,
    platformInfo: 1n,
    platformInfoBits: undefined as never,
    authorKeyEn: false,
    maskChipKey: false,
    signingKey: 'vcek',
    reportData: new Uint8Array(64).fill(0x11),
    measurement: new Uint8Array(48).fill(0x22),
    hostData: z(32),
    idKeyDigest: z(48),
    authorKeyDigest: z(48),
    reportId: new Uint8Array(32).fill(0x33),
    reportIdMa: new Uint8Array(32).fill(0xff),
    reportedTcb: tcb,
    cpuid: version >= 3 ? CPUID[product] : undefined,
    chipId: product === 'Turin' ? new Uint8Array([...new Uint8Array(8).fill(0xab), ...z(56)]) : new Uint8Array(64).fill(0xab),
    committedTcb: tcb,
    currentBuild: 4,
    currentMinor: 52,
    currentMajor: 1,
    committedBuild: 4,
    committedMinor: 52,
    committedMajor: 1,
    launchTcb: tcb,
    launchMitVector: version >= 5 ? 3n : undefined,
    currentMitVector: version >= 5 ? 3n : undefined,
    signatureR: z(72),
    signatureS: z(72),
  };
  return { ...base, ...spec, product } as SnpReport;
}

/** Serialises and signs (ECDSA P-384 over [0, 0x2A0), r/s little-endian). */
export function signReport(rep: SnpReport, key: KeyObject): Uint8Array {
  const bytes = serializeReport(rep);
  const sig = sign('sha384', bytes.subarray(0, 0x2a0), { key, dsaEncoding: 'ieee-p1363' });
  const le = (b: Uint8Array) => {
    const out = new Uint8Array(72);
    out.set(Uint8Array.from(b).reverse());
    return out;
  };
  bytes.set(le(sig.subarray(0, 48)), 0x2a0);
  bytes.set(le(sig.subarray(48)), 0x2e8);
  return bytes;
}

export { createPrivateKey };
