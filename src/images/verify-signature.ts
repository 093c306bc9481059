import { constants, createHash, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { bundleFromJSON, type Bundle } from '@sigstore/bundle';
import { toSignedEntity, Verifier, VerificationError as SigstoreVerificationError, PolicyError } from '@sigstore/verify';
import { ImageError } from './errors.js';
import { memoizeEncoding } from './sigstore-der.js';
import { parseSimpleSigning, type SignatureCandidate } from './cosign.js';
import type { CompiledSigner } from './policy.js';
import type { LoadedTrustRoot } from './trust-root.js';

/** What a candidate signature must be bound to. */
export interface SignatureTarget {
  /** The digest being admitted (sha256:…). */
  digest: string;
  /** The manifest bytes behind that digest (the artifact of a Sigstore message-signature bundle). */
  manifest: Buffer;
  /** registry/path the image is pulled from: cosign's docker-reference must name it. */
  repository: string;
  trustRoot?: LoadedTrustRoot;
  /**
   * Sigstore outcomes by content (bundle bytes + artifact + trust root + CT threshold). The check uses the log's
   * integration time, never "now", so the same bytes always give the same answer: re-verifying an image after its
   * cache TTL, or under a moved tag, then costs registry round trips only. Identity is still matched every time.
   */
  sigstoreMemo?: SigstoreMemo;
}

/** A bounded memo of successful Sigstore verifications (see SignatureTarget.sigstoreMemo). */
export class SigstoreMemo {
  private readonly m = new Map<string, { issuer: string; subject: string }>();
  constructor(private readonly max = 1024) {}
  get(k: string): { issuer: string; subject: string } | undefined {
    return this.max > 0 ? this.m.get(k) : undefined;
  }
  set(k: string, v: { issuer: string; subject: string }): void {
    if (this.max <= 0) return;
    if (this.m.size >= this.max) this.m.delete(this.m.keys().next().value as string);
    this.m.set(k, v);
  }
}

export interface VerifiedSignature {
  signer: string;
  origin: string;
  /** Keyless: the certificate's issuer and subject (SAN). */
  identity?: { issuer: string; subject: string };
}

/** Checks one candidate against one signer; throws ImageError with the precise reason. */
export function verifyCandidate(c: SignatureCandidate, s: CompiledSigner, t: SignatureTarget): VerifiedSignature {
  return c.kind === 'simple-signing' ? verifySimpleSigning(c, s, t) : verifyBundle(c, s, t);
}

function keySignatureValid(s: Extract<CompiledSigner, { kind: 'key' }>, data: Buffer, sig: Buffer): boolean {
  try {
    if (s.keyType === 'ed25519') return cryptoVerify(null, data, s.key, sig);
    if (s.keyType === 'rsa') return cryptoVerify('sha256', data, { key: s.key, padding: constants.RSA_PKCS1_PADDING }, sig);
    return cryptoVerify('sha256', data, s.key, sig);
  } catch {
    return false;
  }
}

function checkPayloadBinding(payload: Buffer, t: SignatureTarget, where: string): void {
  const ss = parseSimpleSigning(payload, where);
  if (ss.manifestDigest !== t.digest) throw new ImageError('PAYLOAD_MISMATCH', `${where}: signature is for ${ss.manifestDigest}, not ${t.digest}`);
  // cosign writes the repository it signed (registry/path, no tag); Docker Hub short names normalise the same way.
  if (normaliseRepo(ss.dockerReference) !== t.repository) throw new ImageError('PAYLOAD_MISMATCH', `${where}: signature names repository ${ss.dockerReference}, not ${t.repository}`);
}

function normaliseRepo(ref: string): string {
  let r = ref.replace(/@sha256:[a-f0-9]{64}$/, '');
  const slash = r.lastIndexOf('/');
  const colon = r.lastIndexOf(':');
  if (colon > slash) r = r.slice(0, colon);
  const parts = r.split('/');
  const first = parts[0];
  if (parts.length === 1 || !(first.includes('.') || first.includes(':') || first === 'localhost')) return `docker.io/${parts.length === 1 ? 'library/' : ''}${r}`;
  if (first === 'index.docker.io') return `docker.io/${parts.slice(1).join('/')}`;
  return r;
}

function verifySimpleSigning(c: Extract<SignatureCandidate, { kind: 'simple-signing' }>, s: CompiledSigner, t: SignatureTarget): VerifiedSignature {
  const where = c.origin;
  if (s.kind === 'key') {
    if (!keySignatureValid(s, c.payload, c.signature)) throw new ImageError('SIGNATURE_INVALID', `${where}: signature does not verify with key "${s.name}"`);
    checkPayloadBinding(c.payload, t, where);
    return { signer: s.name, origin: where };
  }
  if (!c.certificate) throw new ImageError('CERTIFICATE_INVALID', `${where}: keyless signer "${s.name}" needs a certificate and the signature carries none`);
  if (!c.rekorBundle) throw new ImageError('TLOG_INVALID', `${where}: keyless signature has no Rekor bundle (${'dev.sigstore.cosign/bundle'}), so its log entry cannot be checked offline`);
  // The certificate is parsed once here; its DER goes into the bundle and is what the log entry must name.
  let der: Buffer;
  try {
    der = Buffer.from(new X509Certificate(c.certificate).raw);
  } catch (e) {
    throw new ImageError('CERTIFICATE_INVALID', `${where}: certificate annotation is not a PEM certificate: ${(e as Error).message}`);
  }
  const bundle = rekorBundleToSigstore(c, der, where);
  const identity = runSigstore(bundle, c.payload, s, t, where, `${c.certificate}\0${c.rekorBundle}\0${c.signature.toString('base64')}`);
  checkBodyBindsCertificate(bundle, der, where);
  checkPayloadBinding(c.payload, t, where);
  return { signer: s.name, origin: where, identity };
}

function verifyBundle(c: Extract<SignatureCandidate, { kind: 'bundle' }>, s: CompiledSigner, t: SignatureTarget): VerifiedSignature {
  const where = c.origin;
  let bundle: Bundle;
  try {
    bundle = bundleFromJSON(c.bundle);
  } catch (e) {
    throw new ImageError('SIGNATURE_INVALID', `${where}: not a valid Sigstore bundle: ${(e as Error).message}`);
  }
  const content = bundle.content;
  if (s.kind === 'key') {
    if (content.$case === 'messageSignature') {
      const ms = content.messageSignature;
      if (!keySignatureValid(s, t.manifest, Buffer.from(ms.signature))) throw new ImageError('SIGNATURE_INVALID', `${where}: bundle signature does not verify over manifest ${t.digest} with key "${s.name}"`);
    } else {
      const env = content.dsseEnvelope;
      const sig = env.signatures[0]?.sig;
      if (!sig || !keySignatureValid(s, pae(env.payloadType, Buffer.from(env.payload)), Buffer.from(sig))) throw new ImageError('SIGNATURE_INVALID', `${where}: DSSE signature does not verify with key "${s.name}"`);
      checkStatementSubject(env.payloadType, Buffer.from(env.payload), t, where);
    }
    return { signer: s.name, origin: where };
  }
  const identity = runSigstore(bundle, content.$case === 'messageSignature' ? t.manifest : undefined, s, t, where, JSON.stringify(c.bundle));
  if (content.$case === 'dsseEnvelope') checkStatementSubject(content.dsseEnvelope.payloadType, Buffer.from(content.dsseEnvelope.payload), t, where);
  return { signer: s.name, origin: where, identity };
}

/** DSSE pre-authentication encoding (secure-systems-lab/dsse protocol.md). */
function pae(type: string, payload: Buffer): Buffer {
  const t = Buffer.from(type, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${t.length} `), t, Buffer.from(` ${payload.length} `), payload]);
}

/** An in-toto statement signed over the image must name its digest as a subject. */
function checkStatementSubject(payloadType: string, payload: Buffer, t: SignatureTarget, where: string): void {
  if (payloadType !== 'application/vnd.in-toto+json') throw new ImageError('PAYLOAD_MISMATCH', `${where}: DSSE payload type ${payloadType} is not an in-toto statement`);
  let st: { subject?: { digest?: Record<string, unknown> }[] };
  try {
    st = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new ImageError('PAYLOAD_MISMATCH', `${where}: in-toto statement is not JSON`);
  }
  const hex = t.digest.slice(7);
  if (!Array.isArray(st.subject) || !st.subject.some((x) => x?.digest?.sha256 === hex)) throw new ImageError('PAYLOAD_MISMATCH', `${where}: in-toto statement does not name ${t.digest} as a subject`);
}

function runSigstore(bundle: Bundle, artifact: Buffer | undefined, s: Extract<CompiledSigner, { kind: 'keyless' }>, t: SignatureTarget, where: string, content: string): { issuer: string; subject: string } {
  if (!t.trustRoot) throw new ImageError('TRUST_ROOT_INVALID', `${where}: keyless signer "${s.name}" needs a Sigstore trusted root and none is configured`);
  const key = `${createHash('sha256').update(content).update('\0').update(artifact ?? '').digest('hex')}|${t.trustRoot.id}|${s.ctlogThreshold}`;
  let id = t.sigstoreMemo?.get(key);
  if (!id) {
    let signer;
    try {
      const entity = toSignedEntity(bundle, artifact);
      // The leaf is compared and re-encoded several times during chain building: encode each part once.
      if (entity.key.$case === 'certificate') memoizeEncoding(entity.key.certificate);
      signer = new Verifier(t.trustRoot.material, { ctlogThreshold: s.ctlogThreshold, tlogThreshold: 1 }).verify(entity);
    } catch (e) {
      throw mapSigstoreError(e, where);
    }
    id = { issuer: signer.identity?.extensions?.issuer ?? '', subject: signer.identity?.subjectAlternativeName ?? '' };
    t.sigstoreMemo?.set(key, id);
  }
  const { issuer, subject } = id;
  if (!s.issuer(issuer)) throw new ImageError('IDENTITY_MISMATCH', `${where}: certificate issuer ${JSON.stringify(issuer)} does not match ${s.issuerText} of signer "${s.name}"`);
  if (!s.subject(subject)) throw new ImageError('IDENTITY_MISMATCH', `${where}: certificate subject ${JSON.stringify(subject)} does not match ${s.subjectText} of signer "${s.name}"`);
  return { issuer, subject };
}

function mapSigstoreError(e: unknown, where: string): ImageError {
  if (e instanceof ImageError) return e;
  const msg = (e as Error)?.message ?? String(e);
  if (e instanceof SigstoreVerificationError || e instanceof PolicyError) {
    const code = String((e as { code?: string }).code ?? '');
    if (code.startsWith('CERTIFICATE')) return new ImageError('CERTIFICATE_INVALID', `${where}: certificate rejected: ${msg}`);
    if (code.startsWith('TLOG') || code.startsWith('TIMESTAMP')) return new ImageError('TLOG_INVALID', `${where}: transparency log entry rejected: ${msg}`);
    if (code.startsWith('SIGNATURE')) return new ImageError('SIGNATURE_INVALID', `${where}: signature does not verify with the certificate's key`);
    if (code.startsWith('UNTRUSTED_SIGNER')) return new ImageError('IDENTITY_MISMATCH', `${where}: ${msg}`);
  }
  return new ImageError('SIGNATURE_INVALID', `${where}: Sigstore verification failed: ${msg}`);
}

/**
 * cosign's `.sig` layer keyless form → a Sigstore bundle v0.1: the certificate, the simple-signing payload's
 * digest and signature, and the Rekor bundle annotation (pkg/bundle/rekor.go: {SignedEntryTimestamp, Payload:
 * {body, integratedTime, logIndex, logID}}) as a tlog entry whose SET @sigstore/verify checks.
 */
function rekorBundleToSigstore(c: Extract<SignatureCandidate, { kind: 'simple-signing' }>, der: Buffer, where: string): Bundle {
  let rb: { SignedEntryTimestamp?: unknown; Payload?: { body?: unknown; integratedTime?: unknown; logIndex?: unknown; logID?: unknown } };
  try {
    rb = JSON.parse(c.rekorBundle!);
  } catch {
    throw new ImageError('TLOG_INVALID', `${where}: Rekor bundle annotation is not JSON`);
  }
  const p = rb.Payload;
  if (typeof rb.SignedEntryTimestamp !== 'string' || !p || typeof p.body !== 'string' || typeof p.integratedTime !== 'number' || typeof p.logIndex !== 'number' || typeof p.logID !== 'string' || !/^[0-9a-f]{2,128}$/.test(p.logID)) {
    throw new ImageError('TLOG_INVALID', `${where}: Rekor bundle lacks SignedEntryTimestamp or Payload{body, integratedTime, logIndex, logID}`);
  }
  let kind: string;
  let apiVersion: string;
  try {
    const body = JSON.parse(Buffer.from(p.body, 'base64').toString('utf8')) as { kind?: unknown; apiVersion?: unknown };
    if (typeof body.kind !== 'string' || typeof body.apiVersion !== 'string') throw new Error('no kind');
    kind = body.kind;
    apiVersion = body.apiVersion;
  } catch {
    throw new ImageError('TLOG_INVALID', `${where}: Rekor entry body is not a JSON entry with kind and apiVersion`);
  }
  const json = {
    mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.1',
    verificationMaterial: {
      x509CertificateChain: { certificates: [{ rawBytes: der.toString('base64') }] },
      tlogEntries: [
        {
          logIndex: String(p.logIndex),
          logId: { keyId: Buffer.from(p.logID, 'hex').toString('base64') },
          kindVersion: { kind, version: apiVersion },
          integratedTime: String(p.integratedTime),
          inclusionPromise: { signedEntryTimestamp: rb.SignedEntryTimestamp },
          canonicalizedBody: p.body,
        },
      ],
      timestampVerificationData: { rfc3161Timestamps: [] },
    },
    messageSignature: {
      messageDigest: { algorithm: 'SHA2_256', digest: createHash('sha256').update(c.payload).digest('base64') },
      signature: c.signature.toString('base64'),
    },
  };
  try {
    return bundleFromJSON(json);
  } catch (e) {
    throw new ImageError('TLOG_INVALID', `${where}: cannot form a Sigstore bundle from the annotations: ${(e as Error).message}`);
  }
}

/**
 * The logged hashedrekord entry must name this certificate (as cosign checks), not only this signature. The entry
 * holds the certificate as base64 of its PEM (or DER); its DER must equal the verified certificate's, byte for byte (no
 * second X.509 parse: equal bytes are the same certificate, and anything that is not one PEM block is refused).
 */
function checkBodyBindsCertificate(bundle: Bundle, der: Buffer, where: string): void {
  const entry = bundle.verificationMaterial.tlogEntries[0];
  const body = JSON.parse(Buffer.from(entry.canonicalizedBody).toString('utf8')) as { spec?: { signature?: { publicKey?: { content?: unknown } } } };
  const logged = body.spec?.signature?.publicKey?.content;
  if (logged === undefined) return;
  // Rekor stores base64(PEM); a bare base64(DER) is compared as is.
  const raw = typeof logged === 'string' ? Buffer.from(logged, 'base64') : undefined;
  const loggedDer = raw && (raw.subarray(0, 64).includes('-----BEGIN') ? pemCertificateDer(raw.toString('latin1')) : raw);
  if (!loggedDer || !loggedDer.equals(der)) throw new ImageError('TLOG_INVALID', `${where}: the Rekor entry names a different certificate`);
}

/** The DER inside exactly one PEM CERTIFICATE block (RFC 7468 strict base64), else undefined. */
function pemCertificateDer(pem: string): Buffer | undefined {
  const m = /^\s*-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END CERTIFICATE-----\s*$/.exec(pem);
  if (!m) return undefined;
  const b64 = m[1].replace(/\r?\n/g, '');
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(b64)) return undefined;
  return Buffer.from(b64, 'base64');
}
