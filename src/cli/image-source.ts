import { readFileSync } from 'node:fs';
import { CliUsageError } from './context.js';
import { readUserFile, statUserPath } from './files.js';
import { ImageError } from '../images/errors.js';
import { OciLayoutSource, parseLayoutMappings } from '../images/layout.js';
import { parseImageRef, repositoryOf } from '../images/reference.js';
import { RegistryClient } from '../images/registry.js';
import type { ImageSource } from '../images/source.js';
import { parseTrustedRoot, type LoadedTrustRoot } from '../images/trust-root.js';
import type { ImageSourceFlags } from './image-flags.js';


export interface BuiltImageSource {
  source: ImageSource;
  trustRoot?: LoadedTrustRoot;
  close(): Promise<void>;
}

/** Builds what the image flags describe (imported lazily by commands that verify images: it pulls in undici and Sigstore). */
export async function buildImageSource(flags: ImageSourceFlags): Promise<BuiltImageSource> {
  let trustRoot: LoadedTrustRoot | undefined;
  if (flags.trustedRoot) {
    const bytes = await readUserFile(flags.trustedRoot, 'trusted root');
    try {
      trustRoot = parseTrustedRoot(bytes, flags.trustedRoot);
    } catch (e) {
      throw new CliUsageError((e as Error).message);
    }
  }
  if (flags.ociLayout && flags.ociLayout.length > 0) {
    let raw: Map<string, string>;
    try {
      raw = parseLayoutMappings(flags.ociLayout);
    } catch (e) {
      throw new CliUsageError((e as ImageError).message);
    }
    const map = new Map<string, string>();
    for (const [repo, dir] of raw) {
      await statUserPath(dir, 'OCI layout');
      let key: string;
      try {
        // Normalised like image references (docker.io/library/… for short names), without tag or digest.
        const r = parseImageRef(repo);
        if (r.digest !== undefined || (r.tag !== undefined && repo.endsWith(`:${r.tag}`))) throw new ImageError('REF_INVALID', 'name a repository, without tag or digest');
        key = repositoryOf(r);
      } catch (e) {
        throw new CliUsageError(`--oci-layout ${repo}=…: ${(e as Error).message}`);
      }
      map.set(key, dir);
    }
    return { source: new OciLayoutSource(map), trustRoot, close: async () => undefined };
  }
  const timeout = Number(flags.registryTimeoutMs ?? '5000');
  if (!Number.isInteger(timeout) || timeout < 100 || timeout > 120_000) throw new CliUsageError(`--registry-timeout-ms must be an integer in 100..120000 (got '${flags.registryTimeoutMs}')`);
  let ca: string | undefined;
  if (flags.registryCa) {
    try {
      ca = readFileSync(flags.registryCa, 'utf8');
    } catch (e) {
      throw new CliUsageError(`cannot read registry CA '${flags.registryCa}': ${(e as NodeJS.ErrnoException).code}`);
    }
  }
  const insecure = new Set(flags.insecureRegistry ?? []);
  const client = new RegistryClient({ plainHttp: (h) => insecure.has(h), ca, timeoutMs: timeout });
  return { source: client, trustRoot, close: () => client.close() };
}
