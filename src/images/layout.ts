import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ImageError } from './errors.js';
import { checkDigest, DIGEST_RE } from './digest.js';
import { parseManifest, type Descriptor, type Fetched } from './oci.js';
import type { ImageSource, Repo } from './source.js';

const REF_NAME = 'org.opencontainers.image.ref.name';

/**
 * Local OCI image layouts (image-spec image-layout.md) standing in for repositories, for offline verification
 * (`coffer image verify --oci-layout`, `coffer admit --oci-layout`). Each repository (registry/path) maps to one
 * layout directory; tags are index.json entries named by `org.opencontainers.image.ref.name` (what
 * `skopeo copy … oci:DIR:TAG` writes), including cosign's `sha256-<hex>.sig` tags. Blobs are digest-checked like
 * registry content; a layout has no referrers API, so discovery falls back to the tag schema.
 */
export class OciLayoutSource implements ImageSource {
  constructor(private readonly layouts: ReadonlyMap<string, string>, private readonly maxManifestBytes = 4 * 1024 * 1024) {}

  private dir(repo: Repo): string {
    const d = this.layouts.get(`${repo.registry}/${repo.path}`);
    if (!d) throw new ImageError('REGISTRY_UNREACHABLE', `no OCI layout is mapped for ${repo.registry}/${repo.path} (offline: nothing else can be consulted)`);
    return d;
  }

  private async index(dir: string): Promise<Descriptor[]> {
    const bytes = await readCapped(join(dir, 'index.json'), this.maxManifestBytes, `${dir}/index.json`);
    const idx = parseManifest(bytes, undefined, `${dir}/index.json`);
    if (idx.kind !== 'index') throw new ImageError('MANIFEST_INVALID', `${dir}/index.json is not an image index`);
    return idx.manifests;
  }

  async manifest(repo: Repo, reference: string): Promise<Fetched | null> {
    const dir = this.dir(repo);
    let digest = reference;
    if (!DIGEST_RE.test(reference)) {
      const hit = (await this.index(dir)).find((d) => d.annotations?.[REF_NAME] === reference);
      if (!hit) return null;
      digest = hit.digest;
    }
    let bytes: Buffer;
    try {
      bytes = await readCapped(join(dir, 'blobs', 'sha256', digest.slice(7)), this.maxManifestBytes, `manifest ${digest}`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    checkDigest(bytes, digest, `manifest ${repo.registry}/${repo.path}@${digest} in ${dir}`);
    return { digest, bytes, doc: parseManifest(bytes, undefined, `manifest ${digest} in ${dir}`) };
  }

  async blob(repo: Repo, digest: string, maxBytes: number): Promise<Buffer> {
    if (!DIGEST_RE.test(digest)) throw new ImageError('MANIFEST_INVALID', `blob ${digest}: not a sha256 digest`);
    const dir = this.dir(repo);
    let bytes: Buffer;
    try {
      bytes = await readCapped(join(dir, 'blobs', 'sha256', digest.slice(7)), maxBytes, `blob ${digest}`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new ImageError('NOT_FOUND', `blob ${digest} is not in ${dir}`);
      throw e;
    }
    checkDigest(bytes, digest, `blob ${digest} in ${dir}`);
    return bytes;
  }

  async referrers(): Promise<Descriptor[] | null> {
    return null;
  }
}

async function readCapped(path: string, max: number, what: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const st = await fh.stat();
    if (st.size > max) throw new ImageError('TOO_LARGE', `${what}: ${st.size} bytes exceed the ${max}-byte limit`);
    return await readFile(fh);
  } finally {
    await fh.close();
  }
}

/** `--oci-layout REPO=DIR` values → the map OciLayoutSource takes. */
export function parseLayoutMappings(values: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0 || eq === v.length - 1) throw new ImageError('REF_INVALID', `--oci-layout ${JSON.stringify(v)} must be REPOSITORY=DIR (e.g. registry.example/app=./app-oci)`);
    m.set(v.slice(0, eq), v.slice(eq + 1));
  }
  return m;
}
