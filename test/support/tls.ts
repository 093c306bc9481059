import 'reflect-metadata';
import { webcrypto, randomBytes } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as never);

const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface TestCa {
  certPem: string;
  issue(opts?: { cn?: string; dns?: string[]; ips?: string[] }): Promise<{ certPem: string; keyPem: string; serial: string }>;
}

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

/** A throwaway CA (ECDSA P-256) that issues serving certificates for loopback tests and benchmarks. */
export async function createTestCa(cn = 'coffer test CA'): Promise<TestCa> {
  const caKeys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString('hex'),
    name: `CN=${cn}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 86_400_000),
    keys: caKeys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  return {
    certPem: ca.toString('pem') + '\n',
    async issue(o = {}) {
      const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
      const serial = randomBytes(8).toString('hex').replace(/^[89a-f]/, '1');
      const names = [...(o.dns ?? ['localhost']).map((d) => ({ type: 'dns' as const, value: d })), ...(o.ips ?? ['127.0.0.1']).map((i) => ({ type: 'ip' as const, value: i }))];
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: serial,
        subject: `CN=${o.cn ?? 'coffer-webhook.coffer-system.svc'}`,
        issuer: ca.subject,
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + 3_600_000),
        publicKey: keys.publicKey,
        signingKey: caKeys.privateKey,
        signingAlgorithm: alg,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
          new x509.SubjectAlternativeNameExtension(names),
        ],
      });
      const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
      return { certPem: cert.toString('pem') + '\n', keyPem: pem('PRIVATE KEY', pkcs8), serial };
    },
  };
}
