/**
 * Throwaway PKI for TLS tests, made with the openssl CLI: a CA, a server certificate for 127.0.0.1/localhost and a
 * client certificate with a kubelet-style subject (O=system:nodes, CN=system:node:NAME), ECDSA P-256, PEM files.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestPki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

export async function makeTestPki(dir: string, nodeName = 'edge-1'): Promise<TestPki> {
  mkdirSync(dir, { recursive: true });
  const f = (n: string) => join(dir, n);
  const ossl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  ossl('req', '-x509', ...newKey, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-subj', '/CN=coffer-test-ca', '-days', '1', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  const leaf = (name: string, subj: string, ext: string) => {
    writeFileSync(f(`${name}.ext`), ext);
    ossl('req', ...newKey, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', subj);
    ossl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${name}.crt`), '-days', '1', '-extfile', f(`${name}.ext`));
  };
  leaf('server', '/CN=kube-apiserver', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n');
  leaf('client', `/O=system:nodes/CN=system:node:${nodeName}`, 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n');
  const r = (n: string) => readFileSync(f(n), 'utf8');
  return { dir, ca: r('ca.crt'), serverCert: r('server.crt'), serverKey: r('server.key'), clientCert: r('client.crt'), clientKey: r('client.key') };
}

/** A kubeconfig for `server` with the PKI's CA and client certificate (paths, as kubeadm writes them). */
export function writeKubeconfig(path: string, server: string, pki: TestPki): void {
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: cloud',
      '  cluster:',
      `    server: ${server}`,
      `    certificate-authority: ${join(pki.dir, 'ca.crt')}`,
      'users:',
      '- name: node',
      '  user:',
      `    client-certificate: ${join(pki.dir, 'client.crt')}`,
      `    client-key: ${join(pki.dir, 'client.key')}`,
      'contexts:',
      '- name: node@cloud',
      '  context: {cluster: cloud, user: node}',
      'current-context: node@cloud',
      '',
    ].join('\n'),
  );
}
