/**
 * The webhook's self-signed PKI: a CA and a serving certificate for the webhook Service's DNS names (ECDSA P-256),
 * and the checks that decide whether the certificates stored in the webhook Secret are still good.
 *
 * The CA and the serving certificate are issued together and the CA's private key is thrown away: nothing else
 * ever needs it, and it never lands in the Secret the webhook pods mount. On rotation the still-valid previous
 * CA stays in the trust bundle (`ca.crt`, and so the configurations' caBundle) until it expires, so webhook pods
 * that still serve the old certificate (the kubelet refreshes mounted Secrets within about a minute) keep working.
 */
import 'reflect-metadata';
import { X509Certificate, createPrivateKey, createPublicKey, randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface IssuedCerts {
  caPem: string;
  certPem: string;
  keyPem: string;
}

export interface CertTiming {
  /** Lifetime of the CA and the serving certificate. */
  validityMs: number;
  /** Renew when less than this is left (default: a third of the validity, as cert-manager's default). */
  renewBeforeMs: number;
}

export function defaultTiming(validityMs = 365 * 86_400_000): CertTiming {
  return { validityMs, renewBeforeMs: Math.floor(validityMs / 3) };
}

/** The names the API server uses for a Service-backed webhook (clientConfig.service → <svc>.<ns>.svc). */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

const serial = () => randomBytes(16).toString('hex').replace(/^[89a-f]/, '1');

export async function issueWebhookCerts(dnsNames: string[], now: number, timing: CertTiming): Promise<IssuedCerts> {
  const crypto = webcrypto as never as webcrypto.Crypto;
  // Backdated a little for clock skew between this controller and the API server, never by much of the lifetime.
  const notBefore = new Date(now - Math.min(60_000, Math.floor(timing.validityMs / 10)));
  const notAfter = new Date(now + timing.validityMs);
  const caKeys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const ca = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serial(),
      name: `CN=coffer-webhook-ca@${Math.floor(now / 1000)}, O=coffer`,
      notBefore,
      notAfter,
      keys: caKeys,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  const keys = (await crypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serial(),
      subject: `CN=${dnsNames[2] ?? dnsNames[0]}`,
      issuer: ca.subject,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension(dnsNames.map((value) => ({ type: 'dns' as const, value }))),
        await x509.AuthorityKeyIdentifierExtension.create(ca, false, crypto),
      ],
    },
    crypto,
  );
  const pkcs8 = await crypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { caPem: ca.toString('pem') + '\n', certPem: cert.toString('pem') + '\n', keyPem: pem('PRIVATE KEY', pkcs8) };
}

/** Splits a PEM bundle into certificates; undefined when any block does not parse. */
export function parseBundle(text: string): X509Certificate[] | undefined {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  try {
    return blocks.map((b) => new X509Certificate(b));
  } catch {
    return undefined;
  }
}

export type SecretVerdict =
  | { ok: true; renewAt: number; expiredCas: number }
  | { ok: false; reason: string };

/**
 * Whether `tls.crt`/`tls.key`/`ca.crt` (decoded) are a usable serving pair for `dnsNames` at `now`: the key
 * matches the certificate, the first CA of the bundle issued it, every name is covered, both are inside their
 * validity and not due for renewal. `expiredCas` counts previous CAs in the bundle that can be dropped.
 */
export function checkServingSecret(files: { cert?: string; key?: string; ca?: string }, dnsNames: string[], now: number, timing: CertTiming): SecretVerdict {
  if (!files.cert || !files.key || !files.ca) return { ok: false, reason: 'missing tls.crt, tls.key or ca.crt' };
  const leafs = parseBundle(files.cert);
  const cas = parseBundle(files.ca);
  if (!leafs?.length || !cas?.length) return { ok: false, reason: 'tls.crt or ca.crt does not parse' };
  const [leaf] = leafs;
  const [ca] = cas;
  try {
    const pub = createPublicKey(createPrivateKey(files.key)).export({ type: 'spki', format: 'der' });
    if (!pub.equals(leaf.publicKey.export({ type: 'spki', format: 'der' }))) return { ok: false, reason: 'tls.key does not match tls.crt' };
  } catch {
    return { ok: false, reason: 'tls.key does not parse' };
  }
  if (!leaf.checkIssued(ca) || !leaf.verify(ca.publicKey)) return { ok: false, reason: 'tls.crt is not signed by the CA in ca.crt' };
  const san = (leaf.subjectAltName ?? '').split(',').map((s) => s.trim());
  const missing = dnsNames.filter((n) => !san.includes(`DNS:${n}`));
  if (missing.length) return { ok: false, reason: `tls.crt does not cover ${missing.join(', ')}` };
  const from = Math.max(Date.parse(leaf.validFrom), Date.parse(ca.validFrom));
  const to = Math.min(Date.parse(leaf.validTo), Date.parse(ca.validTo));
  if (now < from) return { ok: false, reason: 'certificate not yet valid' };
  if (now >= to) return { ok: false, reason: 'certificate expired' };
  const renewAt = to - timing.renewBeforeMs;
  if (now >= renewAt) return { ok: false, reason: `certificate due for renewal (expires ${new Date(to).toISOString()})` };
  const expiredCas = cas.slice(1).filter((c) => Date.parse(c.validTo) <= now).length;
  return { ok: true, renewAt, expiredCas };
}

/** Still-valid CAs of an old bundle (at most `keep`), to stay trusted next to a new CA. */
export function validCas(bundle: string | undefined, now: number, keep = 2): string[] {
  return (parseBundle(bundle ?? '') ?? [])
    .filter((c) => Date.parse(c.validTo) > now)
    .slice(0, keep)
    .map((c) => c.toString());
}
