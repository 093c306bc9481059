import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, webcrypto } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { SignJWT, importPKCS8 } from 'jose';

x509.cryptoProvider.set(webcrypto as never);

/**
 * Debian's docker-registry (CNCF distribution 2.8) on loopback: generated config, random port, temp storage,
 * optionally with token auth served by a small token server written here from the Docker token spec
 * (distribution docs/spec/auth/token.md + jwt.md): GET realm?service&scope → {"token", "expires_in"}, an ES256 JWT
 * whose x5c chains to the registry's `rootcertbundle`, with iss/aud/sub/exp/nbf/iat/jti and `access` grants.
 */
export const REGISTRY_BIN = '/usr/bin/docker-registry';
export const haveRegistry = existsSync(REGISTRY_BIN);

export interface TestRegistry {
  host: string; // 127.0.0.1:PORT
  port: number;
  /** Requests the token server answered (by scope), for assertions that auth happened. */
  tokenRequests: string[];
  /** The credentials the token server accepts (Basic on the token request), when set. */
  credentials?: { username: string; password: string };
  stop(): Promise<void>;
  /** Kill the registry (to test "registry down"); stop() still cleans up. */
  kill(): Promise<void>;
  /** A bearer token with push+pull on a repository (the test's own pushes), or undefined without auth. */
  pushToken(repo: string): Promise<string | undefined>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

async function selfSignedTokenCert(): Promise<{ certPem: string; certDerB64: string; keyPem: string }> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01' + randomBytes(7).toString('hex'),
    name: 'CN=coffer test token issuer',
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + 86_400_000),
    keys,
    signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign, true)],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64');
  return { certPem: cert.toString('pem') + '\n', certDerB64: Buffer.from(cert.rawData).toString('base64'), keyPem: `-----BEGIN PRIVATE KEY-----\n${pkcs8.replace(/.{64}/g, '$&\n')}\n-----END PRIVATE KEY-----\n` };
}

export async function startRegistry(o: { tokenAuth?: boolean; credentials?: { username: string; password: string } } = {}): Promise<TestRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-registry-'));
  const port = await freePort();
  const service = 'coffer-test-registry';
  const issuer = 'coffer-test-token-issuer';
  const tokenRequests: string[] = [];
  let tokenServer: Server | undefined;
  let authBlock = '';
  let signToken: ((scope: string, actions?: string[]) => Promise<string>) | undefined;
  if (o.tokenAuth) {
    const tc = await selfSignedTokenCert();
    writeFileSync(join(dir, 'token-root.pem'), tc.certPem);
    const key = await importPKCS8(tc.keyPem, 'ES256');
    signToken = async (scope: string, actions?: string[]) => {
      // scope = repository:NAME:ACTIONS (one scope is all this registry asks for at a time).
      const m = /^repository:([^:]+):([a-z,*]+)$/.exec(scope);
      const access = m ? [{ type: 'repository', name: m[1], actions: actions ?? m[2].split(',').filter((a) => a === 'pull') }] : [];
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ access })
        .setProtectedHeader({ alg: 'ES256', typ: 'JWT', x5c: [tc.certDerB64] })
        .setIssuer(issuer)
        .setAudience(service)
        .setSubject(o.credentials?.username ?? 'anonymous')
        .setIssuedAt(now - 5)
        .setNotBefore(now - 5)
        .setExpirationTime(now + 300)
        .setJti(randomBytes(8).toString('hex'))
        .sign(key);
    };
    tokenServer = createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      if (u.pathname !== '/token' || u.searchParams.get('service') !== service) {
        res.writeHead(400).end();
        return;
      }
      if (o.credentials) {
        const want = `Basic ${Buffer.from(`${o.credentials.username}:${o.credentials.password}`).toString('base64')}`;
        if (req.headers.authorization !== want) {
          res.writeHead(401, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
          return;
        }
      }
      const scope = u.searchParams.get('scope') ?? '';
      tokenRequests.push(scope);
      signToken!(scope).then((token) => {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300, issued_at: new Date().toISOString() }));
      }, () => res.writeHead(500).end());
    });
    await new Promise<void>((r) => tokenServer!.listen(0, '127.0.0.1', r));
    const tport = (tokenServer.address() as AddressInfo).port;
    authBlock = `auth:\n  token:\n    realm: http://127.0.0.1:${tport}/token\n    service: ${service}\n    issuer: ${issuer}\n    rootcertbundle: ${join(dir, 'token-root.pem')}\n`;
  }
  const config = `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: ${join(dir, 'data')}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${port}
  secret: ${randomBytes(16).toString('hex')}
${authBlock}`;
  writeFileSync(join(dir, 'config.yml'), config);
  const child: ChildProcess = spawn(REGISTRY_BIN, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  let exited = false;
  child.on('exit', () => (exited = true));
  const stopAll = async () => {
    if (!exited) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 2000))]);
      if (!exited) child.kill('SIGKILL');
    }
  };
  // Ready when /v2/ answers (200 without auth, 401 with).
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/v2/`);
      await r.arrayBuffer();
      if (r.status === 200 || r.status === 401) break;
    } catch {
      /* not up yet */
    }
    if (exited || Date.now() > deadline) {
      await stopAll();
      tokenServer?.close();
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`docker-registry did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 30));
  }
  return {
    host: `127.0.0.1:${port}`,
    port,
    tokenRequests,
    credentials: o.credentials,
    kill: stopAll,
    async stop() {
      await stopAll();
      await new Promise<void>((r) => (tokenServer ? tokenServer.close(() => r()) : r()));
      tokenServer?.closeAllConnections();
      rmSync(dir, { recursive: true, force: true });
    },
    async pushToken(repo: string) {
      return signToken ? signToken(`repository:${repo}:pull,push`, ['pull', 'push']) : undefined;
    },
  };
}

// --- pushing (the distribution API's monolithic upload: POST uploads/ → PUT Location?digest=) ------------------

export const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface PushTarget {
  registry: TestRegistry;
  repo: string;
}

async function authHeaders(t: PushTarget): Promise<Record<string, string>> {
  const tok = await t.registry.pushToken(t.repo);
  return tok ? { authorization: `Bearer ${tok}` } : {};
}

export async function pushBlob(t: PushTarget, data: Buffer): Promise<{ digest: string; size: number }> {
  const digest = sha256(data);
  const h = await authHeaders(t);
  const base = `http://${t.registry.host}`;
  const head = await fetch(`${base}/v2/${t.repo}/blobs/${digest}`, { method: 'HEAD', headers: h });
  if (head.status === 200) return { digest, size: data.length };
  const start = await fetch(`${base}/v2/${t.repo}/blobs/uploads/`, { method: 'POST', headers: h });
  await start.arrayBuffer();
  if (start.status !== 202) throw new Error(`upload start: HTTP ${start.status}`);
  const loc = new URL(start.headers.get('location')!, base);
  loc.searchParams.set('digest', digest);
  const put = await fetch(loc, { method: 'PUT', headers: { ...h, 'content-type': 'application/octet-stream' }, body: data });
  await put.arrayBuffer();
  if (put.status !== 201) throw new Error(`upload: HTTP ${put.status}`);
  return { digest, size: data.length };
}

export async function pushManifest(t: PushTarget, reference: string, manifest: object | Buffer, mediaType: string): Promise<string> {
  const body = Buffer.isBuffer(manifest) ? manifest : Buffer.from(JSON.stringify(manifest));
  const h = await authHeaders(t);
  const r = await fetch(`http://${t.registry.host}/v2/${t.repo}/manifests/${reference}`, { method: 'PUT', headers: { ...h, 'content-type': mediaType }, body });
  const text = await r.text();
  if (r.status !== 201) throw new Error(`manifest PUT ${reference}: HTTP ${r.status} ${text}`);
  return sha256(body);
}

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/** A small distinct image (config + one layer of random bytes) pushed under `tag`; returns its manifest digest. */
export async function pushImage(t: PushTarget, tag: string, o: { platform?: { os: string; architecture: string } } = {}): Promise<{ digest: string; bytes: Buffer }> {
  const layer = await pushBlob(t, randomBytes(256));
  const config = await pushBlob(t, Buffer.from(JSON.stringify({ architecture: o.platform?.architecture ?? 'amd64', os: o.platform?.os ?? 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] }, config: {} })));
  const m = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
  };
  const bytes = Buffer.from(JSON.stringify(m));
  const digest = await pushManifest(t, tag, bytes, OCI_MANIFEST);
  return { digest, bytes };
}

/** A multi-arch index of linux/amd64 + linux/arm64 images under `tag`. */
export async function pushIndex(t: PushTarget, tag: string): Promise<{ digest: string; amd64: string; arm64: string }> {
  const amd = await pushImage(t, `${tag}-amd64`, { platform: { os: 'linux', architecture: 'amd64' } });
  const arm = await pushImage(t, `${tag}-arm64`, { platform: { os: 'linux', architecture: 'arm64' } });
  const idx = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      { mediaType: OCI_MANIFEST, digest: arm.digest, size: arm.bytes.length, platform: { os: 'linux', architecture: 'arm64' } },
      { mediaType: OCI_MANIFEST, digest: amd.digest, size: amd.bytes.length, platform: { os: 'linux', architecture: 'amd64' } },
    ],
  };
  const digest = await pushManifest(t, tag, idx, OCI_INDEX);
  return { digest, amd64: amd.digest, arm64: arm.digest };
}

