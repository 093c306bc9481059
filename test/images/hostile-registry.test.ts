import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RegistryClient } from '../../src/images/registry.js';
import { ImageError } from '../../src/images/errors.js';
import { sha256 } from '../support/registry.js';

// A registry that lies, stalls or floods (what the real one cannot be made to do): the client must refuse each.
const good = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256('c'), size: 1 }, layers: [] }));
const other = Buffer.from(good.toString().replace('"size":1', '"size":2'));
let server: Server;
let other_: Server;
let host: string;
let otherHost: string;
const seenAuth: (string | undefined)[] = [];

function handler(req: IncomingMessage, res: ServerResponse): void {
  const u = decodeURIComponent(req.url ?? '');
  const manifest = (body: Buffer, headers: Record<string, string> = {}) => res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', ...headers }).end(body);
  if (u === `/v2/app/manifests/${sha256(good)}`) return void manifest(other); // asked by digest, serves other bytes
  if (u === '/v2/app/manifests/lying-header') return void manifest(good, { 'docker-content-digest': sha256(other) });
  if (u === '/v2/app/manifests/huge') return void manifest(Buffer.alloc(5 * 1024 * 1024, 0x20));
  if (u === '/v2/app/manifests/chunked-huge') {
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    let n = 0;
    const more = () => (n++ < 6 ? res.write(chunk, more) : res.end());
    return void more();
  }
  if (u === '/v2/app/manifests/stall') {
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
    res.write('{');
    return; // never ends
  }
  if (u === '/v2/app/manifests/not-json') return void manifest(Buffer.from('<html>'));
  if (u.startsWith('/v2/app/blobs/')) {
    seenAuth.push(req.headers.authorization);
    if (req.headers.authorization !== 'Bearer t0k') return void res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${host}/token",service="s"` }).end();
    return void res.writeHead(307, { location: `http://${otherHost}/storage/blob` }).end();
  }
  if (u.startsWith('/token')) return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"t0k","expires_in":60}');
  if (u.startsWith('/v2/app/manifests/bad-realm')) return void res.writeHead(401, { 'www-authenticate': 'Bearer realm="ftp://evil/token"' }).end();
  res.writeHead(404).end();
}

before(async () => {
  server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  other_ = createServer((req, res) => {
    seenAuth.push(`storage:${req.headers.authorization ?? 'none'}`);
    res.writeHead(200).end('blob-bytes');
  });
  await new Promise<void>((r) => other_.listen(0, '127.0.0.1', r));
  otherHost = `127.0.0.1:${(other_.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
  other_.close();
});

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    assert.ok(e instanceof ImageError, String(e));
    return e.code;
  }
}

test('lying, flooding, stalling and malformed registry answers are refused with typed errors', async () => {
  const c = new RegistryClient({ plainHttp: () => true, timeoutMs: 500, maxManifestBytes: 4 * 1024 * 1024 });
  const repo = { registry: host, path: 'app' };
  try {
    assert.equal(await code(c.manifest(repo, sha256(good))), 'DIGEST_MISMATCH');
    assert.equal(await code(c.manifest(repo, 'lying-header')), 'DIGEST_MISMATCH');
    assert.equal(await code(c.manifest(repo, 'huge')), 'TOO_LARGE');
    assert.equal(await code(c.manifest(repo, 'chunked-huge')), 'TOO_LARGE');
    assert.equal(await code(c.manifest(repo, 'stall')), 'REGISTRY_UNREACHABLE');
    assert.equal(await code(c.manifest(repo, 'not-json')), 'MANIFEST_INVALID');
    assert.equal(await code(c.manifest(repo, 'bad-realm')), 'REGISTRY_ERROR');
    assert.equal(await c.manifest(repo, 'absent'), null);
  } finally {
    await c.close();
  }
});

test('a blob redirect to another origin drops the registry token, and the blob must still hash to its digest', async () => {
  const c = new RegistryClient({ plainHttp: () => true, timeoutMs: 1000 });
  try {
    assert.equal(await code(c.blob({ registry: host, path: 'app' }, sha256('something else'), 1024)), 'DIGEST_MISMATCH');
    assert.deepEqual(seenAuth, [undefined, 'Bearer t0k', 'storage:none']);
    const ok = await c.blob({ registry: host, path: 'app' }, sha256('blob-bytes'), 1024);
    assert.equal(ok.toString(), 'blob-bytes');
  } finally {
    await c.close();
  }
});
