import 'reflect-metadata';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, webcrypto, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { pushBlob, pushManifest, OCI_MANIFEST, type PushTarget } from './registry.js';

x509.cryptoProvider.set(webcrypto as never);

/**
 * Signing in cosign's exact formats (sigstore/cosign: pkg/oci/static, pkg/cosign/bundle/rekor.go,
 * containers-signature simple-signing payload), with keys made per run, and a local Sigstore: a Fulcio-like CA
 * issuing short-lived certificates (SAN email/URI, issuer OIDs 1.3.6.1.4.1.57264.1.1 and .1.8, an embedded SCT
 * from a local CT log key) and a Rekor-like log key that signs the SET over a hashedrekord entry. trustedRoot()
 * is the protobuf-specs TrustedRoot JSON naming those keys.
 */

export type KeyKind = 'ecdsa' | 'ed25519' | 'rsa';

export interface SigningKey {
  kind: KeyKind;
  privateKey: KeyObject;
  publicPem: string;
}

export function generateSigningKey(kind: KeyKind = 'ecdsa'): SigningKey {
  const kp = kind === 'ecdsa' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : kind === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kind, privateKey: kp.privateKey, publicPem: kp.publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

export function signBytes(k: SigningKey | KeyObject, data: Buffer): Buffer {
  const key = 'privateKey' in k ? k.privateKey : k;
  return key.asymmetricKeyType === 'ed25519' ? sign(null, data, key) : sign('sha256', data, key);
}

/** cosign's payload bytes exactly (field order and `"optional":null` as cosign marshals them). */
export function simpleSigningPayload(dockerReference: string, digest: string, optional: Record<string, string> | null = null): Buffer {
  return Buffer.from(JSON.stringify({ critical: { identity: { 'docker-reference': dockerReference }, image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' }, optional }));
}

export interface SignatureLayer {
  payload: Buffer;
  annotations: Record<string, string>;
}

/** Pushes cosign's signature image for `digest` (tag sha256-<hex>.sig) with these layers; returns its digest. */
export async function pushSignatureImage(t: PushTarget, digest: string, layers: SignatureLayer[]): Promise<string> {
  const pushed = [];
  for (const l of layers) {
    const b = await pushBlob(t, l.payload);
    pushed.push({ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', size: b.size, digest: b.digest, annotations: l.annotations });
  }
  const config = await pushBlob(t, Buffer.from(JSON.stringify({ architecture: '', created: '0001-01-01T00:00:00Z', history: [{ created: '0001-01-01T00:00:00Z' }], os: '', rootfs: { type: 'layers', diff_ids: pushed.map((p) => p.digest) }, config: {} })));
  return pushManifest(t, `${digest.replace(':', '-')}.sig`, { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers: pushed }, OCI_MANIFEST);
}

export function keyedLayer(key: SigningKey, dockerReference: string, digest: string): SignatureLayer {
  const payload = simpleSigningPayload(dockerReference, digest);
  return { payload, annotations: { 'dev.cosignproject.cosign/signature': signBytes(key, payload).toString('base64') } };
}

// --- local Sigstore ------------------------------------------------------------------------------------------------

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const OID_ISSUER_V1 = '1.3.6.1.4.1.57264.1.1';
const OID_ISSUER_V2 = '1.3.6.1.4.1.57264.1.8';
const OID_SCT = '1.3.6.1.4.1.11129.2.4.2';

function spkiDer(k: KeyObject): Buffer {
  return (k.type === "public" ? k : createPublicKey(k)).export({ type: "spki", format: "der" });
}

/** JCS for the small objects signed here (keys sorted, no whitespace). */
function canonical(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  return `{${Object.keys(v as object).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
}

function utf8StringDer(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length > 127) throw new Error('issuer too long for this helper');
  return Buffer.concat([Buffer.from([0x0c, b.length]), b]);
}

export interface KeylessSignOptions {
  identity: { email?: string; uri?: string };
  issuer: string;
  /** Certificate validity (default: now-1 min .. now+10 min, like Fulcio). */
  notBefore?: Date;
  notAfter?: Date;
  /** When the log says it integrated the entry (default now). */
  integratedTime?: Date;
  withSct?: boolean;
}

export class LocalSigstore {
  private constructor(
    readonly caKeys: webcrypto.CryptoKeyPair,
    readonly caCert: x509.X509Certificate,
    readonly caPublic: KeyObject,
    readonly rekorKey: KeyObject,
    readonly rekorPublic: KeyObject,
    readonly ctKey: KeyObject,
    readonly ctPublic: KeyObject,
  ) {}

  static async create(): Promise<LocalSigstore> {
    const caKeys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const now = Date.now();
    const caCert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01' + randomBytes(7).toString('hex'),
      name: 'O=coffer-test, CN=local-fulcio',
      notBefore: new Date(now - 86_400_000),
      notAfter: new Date(now + 10 * 86_400_000),
      keys: caKeys,
      signingAlgorithm: EC,
      extensions: [new x509.BasicConstraintsExtension(true, 1, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true), await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey)],
    });
    const caPublic = createPublicKey({ key: Buffer.from(caCert.publicKey.rawData), format: 'der', type: 'spki' });
    const rekor = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ct = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return new LocalSigstore(caKeys, caCert, caPublic, rekor.privateKey, rekor.publicKey, ct.privateKey, ct.publicKey);
  }

  get rekorLogId(): Buffer {
    return createHash('sha256').update(spkiDer(this.rekorPublic)).digest();
  }

  get ctLogId(): Buffer {
    return createHash('sha256').update(spkiDer(this.ctPublic)).digest();
  }

  /** protobuf-specs TrustedRoot JSON (what trusted_root.json in Sigstore's TUF repository holds). */
  trustedRoot(): object {
    const start = new Date(Date.now() - 30 * 86_400_000).toISOString();
    const log = (pub: KeyObject, id: Buffer, url: string) => ({
      baseUrl: url,
      hashAlgorithm: 'SHA2_256',
      publicKey: { rawBytes: spkiDer(pub).toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
      logId: { keyId: id.toString('base64') },
    });
    return {
      mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
      tlogs: [log(this.rekorPublic, this.rekorLogId, 'https://rekor.coffer.test')],
      certificateAuthorities: [
        {
          subject: { organization: 'coffer-test', commonName: 'local-fulcio' },
          uri: 'https://fulcio.coffer.test',
          certChain: { certificates: [{ rawBytes: Buffer.from(this.caCert.rawData).toString('base64') }] },
          validFor: { start },
        },
      ],
      ctlogs: [log(this.ctPublic, this.ctLogId, 'https://ctfe.coffer.test')],
      timestampAuthorities: [],
    };
  }

  /** A Fulcio-style leaf for a fresh key; with an embedded SCT over its precertificate when asked. */
  async issue(o: KeylessSignOptions): Promise<{ certPem: string; privateKey: KeyObject }> {
    const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const now = Date.now();
    const serial = '01' + randomBytes(15).toString('hex');
    const notBefore = o.notBefore ?? new Date(now - 60_000);
    const notAfter = o.notAfter ?? new Date(now + 600_000);
    const names: x509.JsonGeneralName[] = [];
    if (o.identity.email) names.push({ type: 'email', value: o.identity.email });
    if (o.identity.uri) names.push({ type: 'url', value: o.identity.uri });
    const base = [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(['1.3.6.1.5.5.7.3.3']),
      new x509.SubjectAlternativeNameExtension(names, true),
      new x509.Extension(OID_ISSUER_V1, false, Buffer.from(o.issuer, 'utf8')),
      new x509.Extension(OID_ISSUER_V2, false, utf8StringDer(o.issuer)),
    ];
    const make = (extensions: x509.Extension[]) =>
      x509.X509CertificateGenerator.create({ serialNumber: serial, subject: '', issuer: this.caCert.subject, notBefore, notAfter, publicKey: keys.publicKey, signingKey: this.caKeys.privateKey, signingAlgorithm: EC, extensions });
    let cert = await make(base);
    if (o.withSct !== false) {
      // RFC 6962 §3.2: the SCT signs the TBS without the SCT extension plus the issuer key hash.
      const tbs = Buffer.from(tbsOf(Buffer.from(cert.rawData)));
      const issuerKeyHash = createHash('sha256').update(spkiDer(this.caPublic)).digest();
      const ts = Buffer.alloc(8);
      ts.writeBigUInt64BE(BigInt(now));
      const signed = Buffer.concat([Buffer.from([0, 0]), ts, Buffer.from([0, 1]), issuerKeyHash, u24(tbs.length), tbs, Buffer.from([0, 0])]);
      const sig = sign('sha256', signed, this.ctKey);
      const sct = Buffer.concat([Buffer.from([0]), this.ctLogId, ts, Buffer.from([0, 0]), Buffer.from([4, 3]), u16(sig.length), sig]);
      const list = Buffer.concat([u16(sct.length + 2), u16(sct.length), sct]);
      const value = Buffer.from(AsnConvert.serialize(new OctetString(list)));
      cert = await make([...base, new x509.Extension(OID_SCT, false, value)]);
    }
    const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
    return { certPem: cert.toString('pem') + '\n', privateKey: createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }) };
  }

  /** A hashedrekord v0.0.1 entry for (payload, signature, cert) and cosign's bundle annotation with its SET. */
  rekorBundle(payload: Buffer, signature: Buffer, certPem: string, integratedTime = new Date(), logIndex = 1): string {
    const body = canonical({
      apiVersion: '0.0.1',
      kind: 'hashedrekord',
      spec: { data: { hash: { algorithm: 'sha256', value: createHash('sha256').update(payload).digest('hex') } }, signature: { content: signature.toString('base64'), publicKey: { content: Buffer.from(certPem).toString('base64') } } },
    });
    const p = { body: Buffer.from(body).toString('base64'), integratedTime: Math.floor(integratedTime.getTime() / 1000), logIndex, logID: this.rekorLogId.toString('hex') };
    const set = sign('sha256', Buffer.from(canonical(p)), this.rekorKey);
    return JSON.stringify({ SignedEntryTimestamp: set.toString('base64'), Payload: p });
  }

  /** The full keyless `.sig` layer cosign writes: signature, certificate, chain, bundle. */
  async keylessLayer(dockerReference: string, digest: string, o: KeylessSignOptions, tamper?: (l: SignatureLayer) => void): Promise<SignatureLayer> {
    const { certPem, privateKey } = await this.issue(o);
    const payload = simpleSigningPayload(dockerReference, digest);
    const sig = sign('sha256', payload, privateKey);
    const layer = {
      payload,
      annotations: {
        'dev.cosignproject.cosign/signature': sig.toString('base64'),
        'dev.sigstore.cosign/certificate': certPem,
        'dev.sigstore.cosign/chain': this.caCert.toString('pem') + '\n',
        'dev.sigstore.cosign/bundle': this.rekorBundle(payload, sig, certPem, o.integratedTime),
      },
    };
    tamper?.(layer);
    return layer;
  }
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
function u24(n: number): Buffer {
  return Buffer.from([(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
}

/** The DER of tbsCertificate: the first element of the Certificate SEQUENCE. */
function tbsOf(der: Buffer): Buffer {
  const hdr = (off: number) => {
    const l = der[off + 1];
    if (l < 0x80) return { len: l, start: off + 2 };
    const n = l & 0x7f;
    let len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[off + 2 + i];
    return { len, start: off + 2 + n };
  };
  const outer = hdr(0);
  const inner = hdr(outer.start);
  return der.subarray(outer.start, inner.start + inner.len);
}
