// Writes samples/images/: an OCI image layout holding a tiny image `registry.example/hello:v1` and its cosign
// signature (tag sha256-<hex>.sig, simple-signing payload, ECDSA P-256), a policy naming the public key, and a
// pod using the image — so the README's `coffer image verify` / `coffer admit --oci-layout` examples run offline.
// The signing key is generated here and thrown away. Usage: npx tsx scripts/make-image-sample.ts
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const out = join(import.meta.dirname, '..', 'samples', 'images');
const layout = join(out, 'hello');
rmSync(out, { recursive: true, force: true });
mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
const blob = (data: Buffer | string) => {
  const b = Buffer.from(data);
  const digest = `sha256:${createHash('sha256').update(b).digest('hex')}`;
  writeFileSync(join(layout, 'blobs', 'sha256', digest.slice(7)), b);
  return { digest, size: b.length };
};
const layer = blob('hello from a signed image\n');
const config = blob(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] }, config: { Cmd: ['/hello'] } }));
const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }] });
const image = blob(manifest);
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const payload = Buffer.from(JSON.stringify({ critical: { identity: { 'docker-reference': 'registry.example/hello' }, image: { 'docker-manifest-digest': image.digest }, type: 'cosign container image signature' }, optional: null }));
const p = blob(payload);
const sigConfig = blob(JSON.stringify({ architecture: '', created: '0001-01-01T00:00:00Z', history: [{ created: '0001-01-01T00:00:00Z' }], os: '', rootfs: { type: 'layers', diff_ids: [p.digest] }, config: {} }));
const sigManifest = blob(JSON.stringify({
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...sigConfig },
  layers: [{ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', ...p, annotations: { 'dev.cosignproject.cosign/signature': sign('sha256', payload, privateKey).toString('base64') } }],
}));
const ref = (d: { digest: string; size: number }, name: string) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...d, annotations: { 'org.opencontainers.image.ref.name': name } });
writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [ref(image, 'v1'), ref(sigManifest, `${image.digest.replace(':', '-')}.sig`)] }));
const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString().trim();
writeFileSync(join(out, 'policy.yaml'), `# Every namespace: pods run only images from registry.example signed by this key, pinned by digest.
apiVersion: coffer.dev/v1alpha1
kind: IsolationPolicy
metadata:
  name: signed-images
spec:
  namespaceSelector: {}
  isolation: sandbox
  images:
    repositories: ["registry.example/**"]
    signers:
    - name: release
      publicKey: |
${pem.split('\n').map((l) => `        ${l}`).join('\n')}
`);
writeFileSync(join(out, 'pod.yaml'), `apiVersion: v1
kind: Pod
metadata:
  name: hello
  namespace: default
spec:
  containers:
  - name: hello
    image: registry.example/hello:v1
`);
console.log(`wrote ${out} (image ${image.digest})`);
