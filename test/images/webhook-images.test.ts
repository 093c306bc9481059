import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { request, Agent } from 'node:https';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { createServer as createNetServer, type Socket } from 'node:net';
import { WebhookServer } from '../../src/k8s/admission/server.js';
import { StaticSources } from '../../src/k8s/admission/static-sources.js';
import { loadProfiles } from '../../src/k8s/admission/inputs.js';
import { applyPatch } from '../../src/k8s/admission/json-patch.js';
import { RegistryClient } from '../../src/images/registry.js';
import { ImageVerifier } from '../../src/images/verifier.js';
import type { Pod } from '../../src/k8s/admission/pod.js';
import { createTestCa, type TestCa } from '../support/tls.js';
import { policy } from '../k8s/support/fixtures.js';
import { haveRegistry, startRegistry, pushImage, type TestRegistry } from '../support/registry.js';
import { generateSigningKey, keyedLayer, pushSignatureImage } from '../support/cosign.js';

const skip = haveRegistry ? false : 'docker-registry is not installed (apt-get install docker-registry)';

describe('webhook image step against a real docker-registry', { skip }, () => {
  let ca: TestCa;
  let dir: string;
  let reg: TestRegistry;
  let client: RegistryClient;
  let verifier: ImageVerifier;
  let server: WebhookServer;
  let bare: WebhookServer;
  let port: number;
  let barePort: number;
  const key = generateSigningKey('ecdsa');
  const images: Record<string, string> = {};
  let agent: Agent;

  before(async () => {
    ca = await createTestCa();
    dir = mkdtempSync(join(tmpdir(), 'coffer-webhook-img-'));
    const leaf = await ca.issue();
    writeFileSync(join(dir, 'tls.crt'), leaf.certPem);
    writeFileSync(join(dir, 'tls.key'), leaf.keyPem);
    reg = await startRegistry();
    for (const name of ['init', 'web', 'sidecar']) {
      const t = { registry: reg, repo: `shop/${name}` };
      const img = await pushImage(t, 'v1');
      await pushSignatureImage(t, img.digest, [keyedLayer(key, `${reg.host}/shop/${name}`, img.digest)]);
      images[name] = img.digest;
    }
    await pushImage({ registry: reg, repo: 'shop/unsigned' }, 'v1');
    const policies = [
      policy('signed-only', {
        isolation: 'sandbox',
        namespaceSelector: { matchLabels: { tenant: 'yes' } },
        images: { repositories: [`${reg.host}/shop/*`], signers: [{ name: 'release', publicKey: key.publicPem }] },
      }),
    ];
    const sources = new StaticSources(policies, loadProfiles([]), [{ metadata: { name: 'team', labels: { tenant: 'yes' } } }]);
    client = new RegistryClient({ plainHttp: (h) => h.startsWith('127.0.0.1:'), timeoutMs: 1000 });
    verifier = new ImageVerifier({ source: client, cache: { maxEntries: 100, ttlMs: 60_000 } });
    const common = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), sources, host: '127.0.0.1', port: 0, tlsPollMs: 0 };
    server = new WebhookServer({ ...common, images: verifier });
    ({ port } = await server.start());
    bare = new WebhookServer(common);
    ({ port: barePort } = await bare.start());
    agent = new Agent({ keepAlive: true, ca: ca.certPem, servername: 'localhost', maxSockets: 64 });
  });

  after(async () => {
    agent?.destroy();
    await server?.close();
    await bare?.close();
    await client?.close();
    await reg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function admit(p: Pod, path = '/mutate-v1-pod', ns = 'team', at = port, extra: Record<string, unknown> = {}): Promise<{ allowed: boolean; patch?: string; status?: { message: string; code: number } }> {
    const body = JSON.stringify({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: { uid: 'u-1', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, namespace: ns, operation: 'CREATE', object: p, ...extra },
    });
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: at, method: 'POST', path, agent, headers: { 'content-type': 'application/json' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          try {
            assert.equal(res.statusCode, 200, Buffer.concat(chunks).toString());
            resolve(JSON.parse(Buffer.concat(chunks).toString()).response);
          } catch (e) {
            reject(e);
          }
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  const podWith = (o: { init?: string; web?: string; sidecar?: string; ephemeral?: string } = {}): Pod => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'shop', namespace: 'team' },
    spec: {
      initContainers: [{ name: 'migrate', image: o.init ?? `${reg.host}/shop/init:v1` }],
      containers: [
        { name: 'web', image: o.web ?? `${reg.host}/shop/web:v1` },
        { name: 'sidecar', image: o.sidecar ?? `${reg.host}/shop/sidecar:v1` },
      ],
      ...(o.ephemeral ? { ephemeralContainers: [{ name: 'debug', image: o.ephemeral }] } : {}),
    },
  });

  test('every container, init container and ephemeral container image is verified and pinned by digest', async () => {
    const p = podWith({ ephemeral: `${reg.host}/shop/web:v1` });
    const r = await admit(p);
    assert.equal(r.allowed, true, r.status?.message);
    const out = applyPatch(p, JSON.parse(Buffer.from(r.patch!, 'base64').toString()));
    assert.equal(out.spec!.initContainers![0].image, `${reg.host}/shop/init@${images.init}`);
    assert.equal(out.spec!.containers![0].image, `${reg.host}/shop/web@${images.web}`);
    assert.equal(out.spec!.containers![1].image, `${reg.host}/shop/sidecar@${images.sidecar}`);
    assert.equal(out.spec!.ephemeralContainers![0].image, `${reg.host}/shop/web@${images.web}`);
    assert.deepEqual(JSON.parse(out.metadata!.annotations!['coffer.dev/decision']).imagesVerifiedBy, ['signed-only']);
    // The pinned pod passes the validating webhook, and re-mutating it changes nothing.
    const v = await admit(out, '/validate-v1-pod');
    assert.equal(v.allowed, true, v.status?.message);
    assert.equal((await admit(out)).patch, undefined);
  });

  test('kubectl debug (pods/ephemeralcontainers UPDATE): the new ephemeral container is verified and pinned', async () => {
    const running = applyPatch(podWith(), JSON.parse(Buffer.from((await admit(podWith())).patch!, 'base64').toString()));
    const debug = (image: string): Pod => ({ ...running, spec: { ...running.spec, ephemeralContainers: [{ name: 'debugger', image }] } });
    const sub = { operation: 'UPDATE', subResource: 'ephemeralcontainers', oldObject: running };
    const ok = await admit(debug(`${reg.host}/shop/web:v1`), '/mutate-v1-pod', 'team', port, sub);
    assert.equal(ok.allowed, true, ok.status?.message);
    assert.deepEqual(JSON.parse(Buffer.from(ok.patch!, 'base64').toString()), [{ op: 'replace', path: '/spec/ephemeralContainers/0/image', value: `${reg.host}/shop/web@${images.web}` }]);
    const bad = await admit(debug(`${reg.host}/shop/unsigned:v1`), '/mutate-v1-pod', 'team', port, sub);
    assert.equal(bad.allowed, false);
    assert.match(bad.status!.message, /rule image-signature: ephemeralContainer "debugger" image .*unsigned:v1.*NO_SIGNATURES/);
    // Validation: an unpinned ephemeral image (mutation skipped) is refused; the pinned one passes.
    assert.equal((await admit(debug(`${reg.host}/shop/web:v1`), '/validate-v1-pod', 'team', port, sub)).allowed, false);
    assert.equal((await admit(debug(`${reg.host}/shop/web@${images.web}`), '/validate-v1-pod', 'team', port, sub)).allowed, true);
  });

  test('an unsigned image denies the pod, naming the image, the rule and the reason', async () => {
    const r = await admit(podWith({ sidecar: `${reg.host}/shop/unsigned:v1` }));
    assert.equal(r.allowed, false);
    assert.equal(r.status!.code, 403);
    assert.match(r.status!.message, /IsolationPolicy "signed-only" rule image-signature: container "sidecar" image "127\.0\.0\.1:\d+\/shop\/unsigned:v1": .*has no signatures.*\[NO_SIGNATURES\]/);
  });

  test('an image from a repository the policy does not allow: rule image-repository', async () => {
    const r = await admit(podWith({ init: `${reg.host}/other/init:v1` }));
    assert.equal(r.allowed, false);
    assert.match(r.status!.message, /rule image-repository: initContainer "migrate" image .*other\/init:v1.*REPOSITORY_NOT_ALLOWED/);
  });

  test('pods outside governed namespaces are not checked; a webhook without a verifier denies governed pods', async () => {
    const free = await admit(podWith({ web: 'docker.io/library/nginx:latest' }), '/mutate-v1-pod', 'elsewhere');
    assert.equal(free.allowed, true);
    assert.equal(free.patch, undefined);
    const r = await admit(podWith(), '/mutate-v1-pod', 'team', barePort);
    assert.equal(r.allowed, false);
    assert.match(r.status!.message, /was not verified \(no image verifier is configured\)/);
  });

  test('a scale-up of many replicas costs one verification per image (cache + in-flight sharing)', async () => {
    verifier.cache.clear();
    const before = verifier.cache.misses;
    const results = await Promise.all(Array.from({ length: 60 }, () => admit(podWith())));
    assert.ok(results.every((r) => r.allowed));
    assert.equal(verifier.cache.misses - before, 3, 'one verification for each of the 3 images');
    const text = await server.metrics.registry.metrics();
    assert.match(text, /coffer_webhook_image_cache_entries \d+/);
    assert.match(text, /coffer_webhook_image_verdicts_total\{result="verified"\} \d+/);
    assert.match(text, /coffer_webhook_image_verdicts_total\{result="NO_SIGNATURES"\} [1-9]/);
  });

  test('a registry that hangs: denied within the image deadline, before the API server would give up', async () => {
    const sockets: Socket[] = [];
    const tarpit = createNetServer((s) => sockets.push(s));
    await new Promise<void>((r) => tarpit.listen(0, '127.0.0.1', r));
    const host = `127.0.0.1:${(tarpit.address() as { port: number }).port}`;
    const slow = new RegistryClient({ plainHttp: () => true, timeoutMs: 10_000 });
    const srv = new WebhookServer({
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      host: '127.0.0.1',
      port: 0,
      tlsPollMs: 0,
      images: new ImageVerifier({ source: slow }),
      imageDeadlineMs: 300,
      sources: new StaticSources([policy('signed-only', { isolation: 'sandbox', namespaceSelector: {}, images: { signers: [{ name: 'release', publicKey: key.publicPem }] } })], loadProfiles([])),
    });
    const { port: p2 } = await srv.start();
    try {
      const started = Date.now();
      const r = await admit(podWith({ init: `${host}/a:v1`, web: `${host}/b:v1`, sidecar: `${host}/c:v1` }), '/mutate-v1-pod', 'team', p2);
      assert.equal(r.allowed, false);
      assert.match(r.status!.message, /did not finish within 300 ms.*\[REGISTRY_UNREACHABLE\]/);
      assert.ok(Date.now() - started < 5000, 'answered long before the registry timeout');
    } finally {
      await srv.close();
      for (const s of sockets) s.destroy();
      tarpit.close();
      await slow.close().catch(() => undefined);
    }
  });

  test('registry unreachable: the pod is denied with a clear message (fail closed)', async () => {
    const down = new RegistryClient({ plainHttp: () => true, timeoutMs: 500 });
    const v = new ImageVerifier({ source: down });
    const srv = new WebhookServer({
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      host: '127.0.0.1',
      port: 0,
      tlsPollMs: 0,
      images: v,
      sources: new StaticSources(
        [policy('signed-only', { isolation: 'sandbox', namespaceSelector: {}, images: { signers: [{ name: 'release', publicKey: key.publicPem }] } })],
        loadProfiles([]),
      ),
    });
    const { port: p2 } = await srv.start();
    try {
      // A port nothing listens on: connection refused.
      const r = await admit(podWith({ init: '127.0.0.1:9/shop/init:v1', web: '127.0.0.1:9/shop/web:v1', sidecar: '127.0.0.1:9/shop/sidecar:v1' }), '/mutate-v1-pod', 'team', p2);
      assert.equal(r.allowed, false);
      assert.match(r.status!.message, /registry 127\.0\.0\.1:9 unreachable.*\[REGISTRY_UNREACHABLE\]/);
    } finally {
      await srv.close();
      await down.close();
    }
  });
});
