import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parse } from 'yaml';
import { cli } from '../support/cli.js';
import { haveRegistry, startRegistry, pushImage, type TestRegistry } from '../support/registry.js';
import { generateSigningKey, keyedLayer, pushSignatureImage, LocalSigstore } from '../support/cosign.js';

const haveSkopeo = existsSync('/usr/bin/skopeo');
const skip = !haveRegistry ? 'docker-registry is not installed' : false;

describe('coffer image verify / coffer admit --oci-layout', { skip }, () => {
  let reg: TestRegistry;
  let dir: string;
  let signed: string;
  const key = generateSigningKey('ecdsa');
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  let policyFile: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'coffer-image-cli-'));
    reg = await startRegistry();
    const t = { registry: reg, repo: 'app' };
    signed = (await pushImage(t, 'v1')).digest;
    await pushSignatureImage(t, signed, [keyedLayer(key, `${reg.host}/app`, signed)]);
    await pushImage({ registry: reg, repo: 'unsigned' }, 'v1');
    policyFile = file(
      'policy.yaml',
      `apiVersion: coffer.dev/v1alpha1
kind: IsolationPolicy
metadata: {name: signed-only}
spec:
  namespaceSelector: {}
  isolation: sandbox
  images:
    repositories: ["${reg.host}/**"]
    signers:
    - name: release
      publicKey: |
${key.publicPem.trim().split('\n').map((l) => `        ${l}`).join('\n')}
`,
    );
  });
  after(async () => {
    await reg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('verified → exit 0 (human and --json)', async () => {
    const r = await cli(['image', 'verify', `${reg.host}/app:v1`, '--policy', policyFile, '--insecure-registry', reg.host]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`verified: .*app:v1 → ${reg.host.replace(/\./g, '\\.')}/app@${signed}`));
    const j = await cli(['image', 'verify', `${reg.host}/app:v1`, '--policy', policyFile, '--insecure-registry', reg.host, '--json']);
    assert.equal(j.code, 0);
    const out = JSON.parse(j.out);
    assert.deepEqual([out.verified, out.digest, out.pinned, out.signer], [true, signed, `${reg.host}/app@${signed}`, 'release']);
  });

  test('rejected → exit 1 with the code; usage and I/O problems → exit 2', async () => {
    const j = await cli(['image', 'verify', `${reg.host}/unsigned:v1`, '--policy', policyFile, '--insecure-registry', reg.host, '--json']);
    assert.equal(j.code, 1);
    assert.deepEqual([JSON.parse(j.out).verified, JSON.parse(j.out).code], [false, 'NO_SIGNATURES']);
    const h = await cli(['image', 'verify', 'elsewhere.example/app:v1', '--policy', policyFile]);
    assert.equal(h.code, 1);
    assert.match(h.err, /rejected: .*REPOSITORY_NOT_ALLOWED/);
    assert.equal((await cli(['image', 'verify', `${reg.host}/app:v1`, '--policy', join(dir, 'missing.yaml')])).code, 2);
    const badPolicy = file('bad.yaml', 'images: {signers: [{name: a, keyless: {issuer: x, subjectRegExp: "(a+)+"}}]}\n');
    const b = await cli(['image', 'verify', `${reg.host}/app:v1`, '--policy', badPolicy]);
    assert.equal(b.code, 2);
    assert.match(b.err, /nested repetition/);
    const down = await cli(['image', 'verify', '127.0.0.1:9/app:v1', '--policy', file('any.yaml', `images: {signers: [{name: a, publicKey: ${JSON.stringify(key.publicPem)}}]}\n`), '--insecure-registry', '127.0.0.1:9', '--registry-timeout-ms', '500']);
    assert.equal(down.code, 2);
    assert.match(down.err, /error: .*REGISTRY_UNREACHABLE/);
    assert.equal((await cli(['image', 'verify', 'x', '--policy', policyFile, '--oci-layout', 'nodir'])).code, 2);
  });

  test('keyless from the shell needs --trusted-root; with it the local Sigstore signature verifies', async () => {
    const ss = await LocalSigstore.create();
    const t = { registry: reg, repo: 'keyless' };
    const d = (await pushImage(t, 'v1')).digest;
    await pushSignatureImage(t, d, [await ss.keylessLayer(`${reg.host}/keyless`, d, { identity: { uri: 'https://ci.example/pipelines/release' }, issuer: 'https://issuer.example' })]);
    const pol = file('keyless.yaml', 'images:\n  signers:\n  - name: ci\n    keyless: {issuer: "https://issuer.example", subjectRegExp: "https://ci\\\\.example/pipelines/.*"}\n');
    assert.equal((await cli(['image', 'verify', `${reg.host}/keyless:v1`, '--policy', pol, '--insecure-registry', reg.host])).code, 2);
    const root = file('trusted_root.json', JSON.stringify(ss.trustedRoot()));
    const r = await cli(['image', 'verify', `${reg.host}/keyless:v1`, '--policy', pol, '--insecure-registry', reg.host, '--trusted-root', root, '--json']);
    assert.equal(r.code, 0, r.out + r.err);
    assert.deepEqual(JSON.parse(r.out).identity, { issuer: 'https://issuer.example', subject: 'https://ci.example/pipelines/release' });
  });

  test('offline: skopeo copies image and .sig tag into an OCI layout; verify and admit use it with no registry', { skip: haveSkopeo ? false : 'skopeo is not installed' }, async () => {
    const layout = join(dir, 'app-oci');
    const sigTag = `${signed.replace(':', '-')}.sig`;
    for (const tag of ['v1', sigTag]) {
      const r = spawnSync('skopeo', ['copy', '--insecure-policy', '--preserve-digests', '--src-tls-verify=false', `docker://${reg.host}/app:${tag}`, `oci:${layout}:${tag}`], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    }
    // Unreachable registry name on purpose: only the layout may be consulted.
    const args = ['--policy', policyFile, '--oci-layout', `${reg.host}/app=${layout}`];
    const v = await cli(['image', 'verify', `${reg.host}/app:v1`, ...args, '--json']);
    assert.equal(v.code, 0, v.out + v.err);
    assert.equal(JSON.parse(v.out).digest, signed);
    const other = await cli(['image', 'verify', `${reg.host}/unsigned:v1`, ...args]);
    assert.equal(other.code, 2, 'a repository with no layout mapped cannot be checked offline');
    assert.match(other.err, /no OCI layout is mapped/);

    const pod = file('pod.yaml', `apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec:\n  initContainers:\n  - {name: init, image: "${reg.host}/app:v1"}\n  containers:\n  - {name: web, image: "${reg.host}/app:v1"}\n`);
    const a = await cli(['admit', pod, ...args]);
    assert.equal(a.code, 0, a.err);
    const out = parse(a.out);
    assert.equal(out.spec.containers[0].image, `${reg.host}/app@${signed}`);
    assert.equal(out.spec.initContainers[0].image, `${reg.host}/app@${signed}`);
    const bad = file('pod-bad.yaml', `apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec:\n  containers:\n  - {name: web, image: "${reg.host}/unsigned:v1"}\n`);
    const d = await cli(['admit', bad, ...args]);
    assert.equal(d.code, 1);
    assert.match(d.err, /denied: IsolationPolicy "signed-only" rule image-signature: container "web" image ".*unsigned:v1": .*no OCI layout is mapped/);

    // Corrupt the payload blob in the layout: cosign's default payload is derived from the digest its descriptor
    // names (never read), so the corrupt copy is not used and the image still verifies.
    const idx = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
    const sigDesc = idx.manifests.find((m: { annotations?: Record<string, string> }) => m.annotations?.['org.opencontainers.image.ref.name'] === sigTag);
    const sigPath = join(layout, 'blobs', 'sha256', sigDesc.digest.slice(7));
    const sigManifest = JSON.parse(readFileSync(sigPath, 'utf8'));
    const payloadPath = join(layout, 'blobs', 'sha256', sigManifest.layers[0].digest.slice(7));
    writeFileSync(payloadPath, readFileSync(payloadPath, 'utf8').replace('cosign container image signature', 'cosign container image signaturE'));
    assert.equal((await cli(['image', 'verify', `${reg.host}/app:v1`, ...args, '--json'])).code, 0);
    // Corrupt the signature manifest (read by digest from index.json): the digest check catches it.
    writeFileSync(sigPath, readFileSync(sigPath, 'utf8').replace('"schemaVersion"', ' "schemaVersion"'));
    const t = await cli(['image', 'verify', `${reg.host}/app:v1`, ...args, '--json']);
    assert.equal(t.code, 1);
    assert.equal(JSON.parse(t.out).code, 'DIGEST_MISMATCH');
  });
});

test("README's image examples run as written on the bundled sample (offline)", async () => {
  const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
  const cmds = [...readme.matchAll(/^npx coffer ((?:image verify|admit) [^\n]*samples\/images[^\n]*)$/gm)].map((m) => m[1].split(/\s+/));
  assert.equal(cmds.length, 2, 'README shows image verify and admit on samples/images');
  const cwd = process.cwd();
  process.chdir(join(import.meta.dirname, '..', '..'));
  try {
    const v = await cli(cmds[0]);
    assert.equal(v.code, 0, v.err);
    assert.match(v.out, /^verified: registry\.example\/hello:v1 → registry\.example\/hello@sha256:[0-9a-f]{64}\n/);
    const a = await cli(cmds[1]);
    assert.equal(a.code, 0, a.err);
    assert.match(parse(a.out).spec.containers[0].image, /^registry\.example\/hello@sha256:[0-9a-f]{64}$/);
    // The same pod against a policy whose key did not sign it is denied.
    const other = generateSigningKey('ecdsa');
    const dir = mkdtempSync(join(tmpdir(), 'coffer-image-readme-'));
    try {
      const pol = join(dir, 'p.yaml');
      writeFileSync(pol, `images: {signers: [{name: other, publicKey: ${JSON.stringify(other.publicPem)}}]}\n`);
      const r = await cli(['image', 'verify', 'registry.example/hello:v1', '--policy', pol, '--oci-layout', 'registry.example/hello=samples/images/hello', '--json']);
      assert.equal(r.code, 1);
      assert.equal(JSON.parse(r.out).code, 'SIGNATURE_INVALID');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    process.chdir(cwd);
  }
});
