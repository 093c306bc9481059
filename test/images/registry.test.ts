import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { RegistryClient } from '../../src/images/registry.js';
import { verifyImage } from '../../src/images/verify-image.js';
import { compileImagePolicy, type ImagePolicySpec } from '../../src/images/policy.js';
import { parseTrustedRoot, type LoadedTrustRoot } from '../../src/images/trust-root.js';
import { ImageError } from '../../src/images/errors.js';
import { SigstoreMemo } from '../../src/images/verify-signature.js';
import type { ImageSource } from '../../src/images/source.js';
import { haveRegistry, startRegistry, pushImage, pushIndex, pushBlob, pushManifest, OCI_MANIFEST, OCI_INDEX, sha256, type TestRegistry } from '../support/registry.js';
import { generateSigningKey, keyedLayer, pushSignatureImage, simpleSigningPayload, signBytes, LocalSigstore } from '../support/cosign.js';

const skip = haveRegistry ? false : 'docker-registry is not installed (apt-get install docker-registry)';

async function rejects(p: Promise<unknown>, code: string, re?: RegExp): Promise<ImageError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ImageError, `expected ImageError, got ${(e as Error)?.stack}`);
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    return e;
  }
  assert.fail(`expected rejection ${code}`);
}

describe('image verification against a real docker-registry', { skip }, () => {
  let reg: TestRegistry;
  let client: RegistryClient;
  let sigstore: LocalSigstore;
  let root: LoadedTrustRoot;
  const key = generateSigningKey('ecdsa');
  const other = generateSigningKey('ecdsa');
  const keyed = (extra: Partial<ImagePolicySpec> = {}) => compileImagePolicy({ signers: [{ name: 'release', publicKey: key.publicPem }], ...extra });
  const keyless = (subjectRegExp = '.*@example\\.com', issuer = 'https://issuer.coffer.test') => compileImagePolicy({ signers: [{ name: 'ci', keyless: { issuer, subjectRegExp } }] });
  const verify = (image: string, policy = keyed()) => verifyImage(image, { source: client, policy, trustRoot: root });

  before(async () => {
    reg = await startRegistry();
    client = new RegistryClient({ plainHttp: (h) => h.startsWith('127.0.0.1:'), timeoutMs: 2000 });
    sigstore = await LocalSigstore.create();
    root = parseTrustedRoot(Buffer.from(JSON.stringify(sigstore.trustedRoot())));
  });
  after(async () => {
    await client?.close();
    await reg?.stop();
  });

  const repoOf = (name: string) => ({ registry: reg, repo: name });
  const ref = (name: string, tagOrDigest: string) => `${reg.host}/${name}${tagOrDigest.startsWith('sha256:') ? '@' : ':'}${tagOrDigest}`;

  test('keyed ECDSA P-256 signature on the .sig tag verifies and pins the digest', async () => {
    const t = repoOf('app');
    const img = await pushImage(t, 'v1');
    await pushSignatureImage(t, img.digest, [keyedLayer(key, `${reg.host}/app`, img.digest)]);
    const v = await verify(ref('app', 'v1'));
    assert.equal(v.digest, img.digest);
    assert.equal(v.pinned, `${reg.host}/app@${img.digest}`);
    assert.equal(v.signature.signer, 'release');
    // By digest too.
    assert.equal((await verify(ref('app', img.digest))).digest, img.digest);
  });

  test("cosign's default payload is recognised by its digest and not fetched; any other payload is fetched and checked", async () => {
    let blobs = 0;
    const counting: ImageSource = {
      manifest: (r, x) => client.manifest(r, x),
      referrers: (r, d) => client.referrers(r, d),
      blob: (r, d, max) => (blobs++, client.blob(r, d, max)),
    };
    const t = repoOf('app-payload');
    const img = await pushImage(t, 'v1');
    await pushSignatureImage(t, img.digest, [keyedLayer(key, `${reg.host}/app-payload`, img.digest)]);
    assert.equal((await verifyImage(ref('app-payload', 'v1'), { source: counting, policy: keyed() })).digest, img.digest);
    assert.equal(blobs, 0, 'the payload was derived from the digest, not fetched');
    // With annotations (cosign sign -a) the payload differs from the guess: fetched, digest-checked, verified.
    const t2 = repoOf('app-annotated');
    const img2 = await pushImage(t2, 'v1');
    const payload = simpleSigningPayload(`${reg.host}/app-annotated`, img2.digest, { team: 'shop' });
    await pushSignatureImage(t2, img2.digest, [{ payload, annotations: { 'dev.cosignproject.cosign/signature': signBytes(key, payload).toString('base64') } }]);
    assert.equal((await verifyImage(ref('app-annotated', 'v1'), { source: counting, policy: keyed() })).digest, img2.digest);
    assert.equal(blobs, 1);
    // The guess binds nothing by itself: a signature made over other bytes still fails on the derived payload.
    const t3 = repoOf('app-forged');
    const img3 = await pushImage(t3, 'v1');
    const good = simpleSigningPayload(`${reg.host}/app-forged`, img3.digest);
    await pushSignatureImage(t3, img3.digest, [{ payload: good, annotations: { 'dev.cosignproject.cosign/signature': signBytes(key, Buffer.from('other bytes')).toString('base64') } }]);
    await rejects(verifyImage(ref('app-forged', 'v1'), { source: counting, policy: keyed() }), 'SIGNATURE_INVALID');
  });

  test('Ed25519 and RSA keys verify cosign signatures too', async () => {
    for (const kind of ['ed25519', 'rsa'] as const) {
      const k = generateSigningKey(kind);
      const t = repoOf(`app-${kind}`);
      const img = await pushImage(t, 'v1');
      await pushSignatureImage(t, img.digest, [keyedLayer(k, `${reg.host}/app-${kind}`, img.digest)]);
      const v = await verifyImage(ref(`app-${kind}`, 'v1'), { source: client, policy: compileImagePolicy({ signers: [{ name: kind, publicKey: k.publicPem }] }) });
      assert.equal(v.signature.signer, kind);
      await rejects(verify(ref(`app-${kind}`, 'v1')), 'SIGNATURE_INVALID');
    }
  });

  test('unsigned image is rejected: NO_SIGNATURES', async () => {
    await pushImage(repoOf('unsigned'), 'v1');
    await rejects(verify(ref('unsigned', 'v1')), 'NO_SIGNATURES', /has no signatures/);
  });

  test('signature by another key is rejected: SIGNATURE_INVALID', async () => {
    const t = repoOf('wrongkey');
    const img = await pushImage(t, 'v1');
    await pushSignatureImage(t, img.digest, [keyedLayer(other, `${reg.host}/wrongkey`, img.digest)]);
    await rejects(verify(ref('wrongkey', 'v1')), 'SIGNATURE_INVALID', /does not verify with key "release"/);
  });

  test('tampered payload (signature kept) is rejected', async () => {
    const t = repoOf('tampered');
    const img = await pushImage(t, 'v1');
    const good = keyedLayer(key, `${reg.host}/tampered`, img.digest);
    const payload = Buffer.from(good.payload.toString().replace('"optional":null', '"optional":{"x":"y"}'));
    await pushSignatureImage(t, img.digest, [{ payload, annotations: good.annotations }]);
    await rejects(verify(ref('tampered', 'v1')), 'SIGNATURE_INVALID');
  });

  test('a valid signature for another digest, or another repository, is rejected: PAYLOAD_MISMATCH', async () => {
    const t = repoOf('mismatch');
    const a = await pushImage(t, 'a');
    const b = await pushImage(t, 'b');
    // A genuine signature over image b's payload, placed on image a's .sig tag.
    await pushSignatureImage(t, a.digest, [keyedLayer(key, `${reg.host}/mismatch`, b.digest)]);
    await rejects(verify(ref('mismatch', 'a')), 'PAYLOAD_MISMATCH', new RegExp(`signature is for ${b.digest}`));
    // Right digest, but signed for a different repository (copied signature).
    await pushSignatureImage(t, b.digest, [keyedLayer(key, `${reg.host}/elsewhere`, b.digest)]);
    await rejects(verify(ref('mismatch', 'b')), 'PAYLOAD_MISMATCH', /names repository/);
  });

  test('tag moved after signing: the tag now resolves to an unsigned digest; the signed digest still verifies', async () => {
    const t = repoOf('moved');
    const signed = await pushImage(t, 'stable');
    await pushSignatureImage(t, signed.digest, [keyedLayer(key, `${reg.host}/moved`, signed.digest)]);
    assert.equal((await verify(ref('moved', 'stable'))).digest, signed.digest);
    const moved = await pushImage(t, 'stable');
    const e = await rejects(verify(ref('moved', 'stable')), 'NO_SIGNATURES');
    assert.match(e.message, new RegExp(moved.digest));
    assert.equal((await verify(ref('moved', signed.digest))).digest, signed.digest);
  });

  test('multi-arch index: platform selection, signature on the index or on the platform manifest', async () => {
    const t = repoOf('multi');
    const idx = await pushIndex(t, 'v1');
    await rejects(verify(ref('multi', 'v1')), 'NO_SIGNATURES');
    // Signed per platform (cosign sign --recursive signs children): pinned to the amd64 manifest.
    await pushSignatureImage(t, idx.amd64, [keyedLayer(key, `${reg.host}/multi`, idx.amd64)]);
    const v = await verify(ref('multi', 'v1'));
    assert.equal(v.digest, idx.amd64);
    assert.deepEqual(v.platform, { platform: 'linux/amd64', digest: idx.amd64 });
    // arm64 wanted: its manifest is unsigned.
    await rejects(verify(ref('multi', 'v1'), keyed({ platform: 'linux/arm64' })), 'NO_SIGNATURES');
    await rejects(verify(ref('multi', 'v1'), keyed({ platform: 'linux/s390x' })), 'PLATFORM_NOT_FOUND', /no linux\/s390x manifest/);
    // Signing the index itself pins the index (the kubelet then picks its platform from the verified index).
    await pushSignatureImage(t, idx.digest, [keyedLayer(key, `${reg.host}/multi`, idx.digest)]);
    assert.equal((await verify(ref('multi', 'v1'), keyed({ platform: 'linux/arm64' }))).digest, idx.digest);
  });

  test('repository globs restrict where images come from', async () => {
    const t = repoOf('team/web');
    const img = await pushImage(t, 'v1');
    await pushSignatureImage(t, img.digest, [keyedLayer(key, `${reg.host}/team/web`, img.digest)]);
    assert.ok(await verify(ref('team/web', 'v1'), keyed({ repositories: [`${reg.host}/team/*`] })));
    await rejects(verify(ref('team/web', 'v1'), keyed({ repositories: [`${reg.host}/other/**`, 'docker.io/**'] })), 'REPOSITORY_NOT_ALLOWED');
  });

  test('OCI 1.1 referrers (tag-schema fallback): a cosign signature artifact with a subject verifies', async () => {
    const t = repoOf('referred');
    const img = await pushImage(t, 'v1');
    const layer = keyedLayer(key, `${reg.host}/referred`, img.digest);
    const p = await pushBlob(t, layer.payload);
    const empty = await pushBlob(t, Buffer.from('{}'));
    const art = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', ...empty },
      layers: [{ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', ...p, annotations: layer.annotations }],
      subject: { mediaType: OCI_MANIFEST, digest: img.digest, size: img.bytes.length },
    };
    const artDigest = await pushManifest(t, 'sigart', art, OCI_MANIFEST);
    const artBytes = Buffer.from(JSON.stringify(art));
    await pushManifest(t, img.digest.replace(':', '-'), { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: artDigest, size: artBytes.length, artifactType: art.artifactType }] }, OCI_INDEX);
    const v = await verify(ref('referred', 'v1'));
    assert.match(v.signature.origin, /^referrer sha256:/);
  });

  test('OCI 1.1 referrers: a Sigstore bundle artifact (DSSE in-toto statement naming the digest) verifies with a key', async () => {
    const t = repoOf('bundled');
    const img = await pushImage(t, 'v1');
    const other = await pushImage(t, 'other');
    const pushBundle = async (subjectDigest: string, statementDigest: string, k = key) => {
      const statement = Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', subject: [{ name: `${reg.host}/bundled`, digest: { sha256: statementDigest.slice(7) } }], predicateType: 'https://sigstore.dev/cosign/sign/v1', predicate: {} }));
      const type = 'application/vnd.in-toto+json';
      const pae = Buffer.concat([Buffer.from(`DSSEv1 ${type.length} ${type} ${statement.length} `), statement]);
      const bundle = {
        mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
        verificationMaterial: { publicKey: { hint: 'release' }, tlogEntries: [], timestampVerificationData: { rfc3161Timestamps: [] } },
        dsseEnvelope: { payload: statement.toString('base64'), payloadType: type, signatures: [{ sig: signBytes(k, pae).toString('base64'), keyid: '' }] },
      };
      const b = await pushBlob(t, Buffer.from(JSON.stringify(bundle)));
      const empty = await pushBlob(t, Buffer.from('{}'));
      const art = {
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', ...empty },
        layers: [{ mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', ...b }],
        subject: { mediaType: OCI_MANIFEST, digest: subjectDigest, size: 1 },
      };
      const bytes = Buffer.from(JSON.stringify(art));
      const d = await pushManifest(t, `bundle-${sha256(bytes).slice(7, 19)}`, bytes, OCI_MANIFEST);
      await pushManifest(t, subjectDigest.replace(':', '-'), { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: d, size: bytes.length, artifactType: art.artifactType }] }, OCI_INDEX);
    };
    await pushBundle(img.digest, img.digest);
    const v = await verify(ref('bundled', 'v1'));
    assert.match(v.signature.origin, /^referrer sha256:.* layer 0$/);
    // The statement names another image: refused even though the signature is good.
    await pushBundle(other.digest, img.digest);
    await rejects(verify(ref('bundled', 'other')), 'PAYLOAD_MISMATCH', /does not name/);
    // Signed by another key.
    const third = await pushImage(t, 'third');
    await pushBundle(third.digest, third.digest, generateSigningKey('ecdsa'));
    await rejects(verify(ref('bundled', 'third')), 'SIGNATURE_INVALID', /DSSE signature does not verify/);
  });

  test('keyless: Fulcio-like certificate + Rekor SET + SCT against a local trusted root', async () => {
    const t = repoOf('keyless');
    const img = await pushImage(t, 'v1');
    await pushSignatureImage(t, img.digest, [await sigstore.keylessLayer(`${reg.host}/keyless`, img.digest, { identity: { email: 'dev@example.com' }, issuer: 'https://issuer.coffer.test' })]);
    const v = await verify(ref('keyless', 'v1'), keyless());
    assert.deepEqual(v.signature.identity, { issuer: 'https://issuer.coffer.test', subject: 'dev@example.com' });
  });

  test('keyless: identity that does not match is rejected: IDENTITY_MISMATCH', async () => {
    const t = repoOf('keyless-id');
    const img = await pushImage(t, 'v1');
    await pushSignatureImage(t, img.digest, [await sigstore.keylessLayer(`${reg.host}/keyless-id`, img.digest, { identity: { email: 'mallory@evil.example' }, issuer: 'https://issuer.coffer.test' })]);
    await rejects(verify(ref('keyless-id', 'v1'), keyless()), 'IDENTITY_MISMATCH', /subject "mallory@evil.example"/);
    await rejects(verify(ref('keyless-id', 'v1'), keyless('.*', 'https://other-issuer.test')), 'IDENTITY_MISMATCH', /issuer/);
    // A remembered Sigstore result (same bytes) still has its identity matched against each policy.
    const sigstoreMemo = new SigstoreMemo();
    assert.ok(await verifyImage(ref('keyless-id', 'v1'), { source: client, policy: keyless('mallory@.*'), trustRoot: root, sigstoreMemo }));
    await rejects(verifyImage(ref('keyless-id', 'v1'), { source: client, policy: keyless(), trustRoot: root, sigstoreMemo }), 'IDENTITY_MISMATCH');
  });

  test('keyless: certificate expired when the log integrated the entry: CERTIFICATE_INVALID', async () => {
    const t = repoOf('keyless-exp');
    const img = await pushImage(t, 'v1');
    const now = Date.now();
    await pushSignatureImage(t, img.digest, [await sigstore.keylessLayer(`${reg.host}/keyless-exp`, img.digest, { identity: { email: 'dev@example.com' }, issuer: 'https://issuer.coffer.test', notBefore: new Date(now - 3_600_000), notAfter: new Date(now - 3_000_000) })]);
    await rejects(verify(ref('keyless-exp', 'v1'), keyless()), 'CERTIFICATE_INVALID');
  });

  test('keyless: forged SET, missing SCT, missing bundle, no trusted root', async () => {
    const t = repoOf('keyless-bad');
    const img = await pushImage(t, 'v1');
    const forger = await LocalSigstore.create();
    // A log entry "signed" by a log the trusted root does not name.
    const layer = await sigstore.keylessLayer(`${reg.host}/keyless-bad`, img.digest, { identity: { email: 'dev@example.com' }, issuer: 'https://issuer.coffer.test' }, (l) => {
      const sig = Buffer.from(l.annotations['dev.cosignproject.cosign/signature'], 'base64');
      const b = JSON.parse(forger.rekorBundle(l.payload, sig, l.annotations['dev.sigstore.cosign/certificate']));
      b.Payload.logID = sigstore.rekorLogId.toString('hex');
      l.annotations['dev.sigstore.cosign/bundle'] = JSON.stringify(b);
    });
    await pushSignatureImage(t, img.digest, [layer]);
    await rejects(verify(ref('keyless-bad', 'v1'), keyless()), 'TLOG_INVALID');
    const img2 = await pushImage(t, 'v2');
    await pushSignatureImage(t, img2.digest, [await sigstore.keylessLayer(`${reg.host}/keyless-bad`, img2.digest, { identity: { email: 'dev@example.com' }, issuer: 'https://issuer.coffer.test', withSct: false })]);
    await rejects(verify(ref('keyless-bad', 'v2'), keyless()), 'CERTIFICATE_INVALID', /SCT/);
    // ctlogThreshold 0 accepts it (policy opt-out, as cosign's --insecure-ignore-sct).
    assert.ok(await verify(ref('keyless-bad', 'v2'), compileImagePolicy({ signers: [{ name: 'ci', keyless: { issuer: 'https://issuer.coffer.test', subjectRegExp: '.*', ctlogThreshold: 0 } }] })));
    const img3 = await pushImage(t, 'v3');
    await pushSignatureImage(t, img3.digest, [await sigstore.keylessLayer(`${reg.host}/keyless-bad`, img3.digest, { identity: { email: 'dev@example.com' }, issuer: 'https://issuer.coffer.test' }, (l) => delete (l.annotations as Record<string, string>)['dev.sigstore.cosign/bundle'])]);
    await rejects(verify(ref('keyless-bad', 'v3'), keyless()), 'TLOG_INVALID', /no Rekor bundle/);
    await rejects(verifyImage(ref('keyless-bad', 'v2'), { source: client, policy: keyless() }), 'TRUST_ROOT_INVALID');
  });

  test('keyless signature swapped onto another image by a copy of the .sig layer: PAYLOAD_MISMATCH', async () => {
    const t = repoOf('keyless-swap');
    const a = await pushImage(t, 'a');
    const b = await pushImage(t, 'b');
    await pushSignatureImage(t, a.digest, [await sigstore.keylessLayer(`${reg.host}/keyless-swap`, b.digest, { identity: { email: 'dev@example.com' }, issuer: 'https://issuer.coffer.test' })]);
    await rejects(verify(ref('keyless-swap', 'a'), keyless()), 'PAYLOAD_MISMATCH');
  });

  test('a nonexistent tag is NOT_FOUND', async () => {
    await rejects(verify(ref('app', 'nope')), 'NOT_FOUND');
  });

  test('registry down: REGISTRY_UNREACHABLE (fail closed)', async () => {
    const r = await startRegistry();
    const t = { registry: r, repo: 'gone' };
    const img = await pushImage(t, 'v1');
    await pushSignatureImage(t, img.digest, [keyedLayer(key, `${r.host}/gone`, img.digest)]);
    const c = new RegistryClient({ plainHttp: () => true, timeoutMs: 1000 });
    try {
      assert.ok(await verifyImage(`${r.host}/gone:v1`, { source: c, policy: keyed() }));
      await r.kill();
      await rejects(verifyImage(`${r.host}/gone:v1`, { source: c, policy: keyed() }), 'REGISTRY_UNREACHABLE', /unreachable/);
    } finally {
      await c.close();
      await r.stop();
    }
  });

  test('the simple-signing payload bytes are exactly what cosign writes', () => {
    const d = sha256('x');
    assert.equal(simpleSigningPayload('r.example/app', d).toString(), `{"critical":{"identity":{"docker-reference":"r.example/app"},"image":{"docker-manifest-digest":"${d}"},"type":"cosign container image signature"},"optional":null}`);
    assert.ok(signBytes(key, Buffer.from('x')).length > 0);
  });
});

describe('token auth (Docker token spec) against a real docker-registry', { skip }, () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry({ tokenAuth: true, credentials: { username: 'puller', password: 's3cret' } });
  });
  after(async () => {
    await reg?.stop();
  });

  test('anonymous pulls are refused; bearer tokens from the realm are fetched, cached and used', async () => {
    const key = generateSigningKey('ecdsa');
    const t = { registry: reg, repo: 'private/app' };
    const img = await pushImage(t, 'v1');
    await pushSignatureImage(t, img.digest, [keyedLayer(key, `${reg.host}/private/app`, img.digest)]);
    const policy = compileImagePolicy({ signers: [{ name: 'k', publicKey: key.publicPem }] });
    const anon = new RegistryClient({ plainHttp: () => true });
    const authed = new RegistryClient({ plainHttp: () => true, credentials: (h) => (h === reg.host ? { username: 'puller', password: 's3cret' } : undefined) });
    try {
      await rejects(verifyImage(`${reg.host}/private/app:v1`, { source: anon, policy }), 'REGISTRY_ERROR', /token endpoint .* HTTP 401/);
      const before = reg.tokenRequests.length;
      const v = await verifyImage(`${reg.host}/private/app:v1`, { source: authed, policy });
      assert.equal(v.digest, img.digest);
      assert.deepEqual(reg.tokenRequests.slice(before), ['repository:private/app:pull'], 'one token for the repository, reused for every request');
      await verifyImage(`${reg.host}/private/app:v1`, { source: authed, policy });
      assert.equal(reg.tokenRequests.length, before + 1, 'cached token reused');
    } finally {
      await anon.close();
      await authed.close();
    }
  });
});
