import { Agent, request, type Dispatcher } from 'undici';
import { ImageError } from './errors.js';
import { checkDigest, DIGEST_RE, sha256Digest } from './digest.js';
import { MANIFEST_ACCEPT, MEDIA, parseDescriptor, parseManifest, type Descriptor, type Fetched } from './oci.js';
import { apiHost } from './reference.js';
import type { ImageSource, Repo } from './source.js';

export interface RegistryCredentials {
  username: string;
  password: string;
}

export interface RegistryClientOptions {
  /** Hosts spoken to over plain HTTP (loopback test registries); everything else is HTTPS. */
  plainHttp?: (host: string) => boolean;
  /** Extra CA certificates (PEM) for registries and token servers. */
  ca?: string | string[];
  credentials?: (host: string) => RegistryCredentials | undefined;
  /** Per request (headers and body together). */
  timeoutMs?: number;
  maxManifestBytes?: number;
  maxTokenBytes?: number;
  /** Now (ms), for token expiry; a parameter so tests control time. */
  now?: () => number;
  dispatcher?: Dispatcher;
}

interface Challenge {
  scheme: 'bearer' | 'basic';
  params: Record<string, string>;
}

/** RFC 7235 challenge: scheme then comma-separated k="v" (or k=token) pairs. Bounded input. */
export function parseWwwAuthenticate(h: string): Challenge | undefined {
  if (h.length > 4096) return undefined;
  const m = /^\s*(Bearer|Basic)\b\s*(.*)$/i.exec(h);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(?:,|$)/gy;
  const rest = m[2];
  re.lastIndex = 0;
  let p: RegExpExecArray | null;
  while (re.lastIndex < rest.length && (p = re.exec(rest))) params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3];
  return { scheme: m[1].toLowerCase() as 'bearer' | 'basic', params };
}

class HttpResult {
  constructor(readonly status: number, readonly headers: Record<string, string | string[] | undefined>, readonly body: Buffer) {}
  header(name: string): string | undefined {
    const v = this.headers[name];
    return Array.isArray(v) ? v[0] : v;
  }
}

/**
 * Distribution API client (distribution-spec spec.md): manifests by tag or digest with content negotiation,
 * blobs (following redirects to storage), the referrers API, and Docker token auth (docs/spec/auth/token.md:
 * 401 + WWW-Authenticate Bearer realm/service/scope → GET realm → {token|access_token, expires_in}).
 * No state but per-client token and connection caches; nothing global.
 */
export class RegistryClient implements ImageSource {
  private readonly timeoutMs: number;
  private readonly maxManifest: number;
  private readonly maxToken: number;
  private readonly now: () => number;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  /**
   * Registries seen without the referrers API (404) → until when not to ask again (discovery then uses only the
   * tag schema). Time-bounded: a 404 can also mean "unknown repository", and registries get upgraded. Missing a
   * referrer can only deny, never admit.
   */
  private readonly noReferrers = new Map<string, number>();
  /** Authorization header values (Bearer token or Basic) by host + scope. Bounded: scopes are per repository. */
  private readonly tokens = new Map<string, { header: string; expires: number }>();

  constructor(private readonly opts: RegistryClientOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.maxManifest = opts.maxManifestBytes ?? 4 * 1024 * 1024;
    this.maxToken = opts.maxTokenBytes ?? 64 * 1024;
    this.now = opts.now ?? Date.now;
    this.ownsDispatcher = opts.dispatcher === undefined;
    this.dispatcher = opts.dispatcher ?? new Agent({ connect: opts.ca ? { ca: opts.ca } : {}, keepAliveTimeout: 10_000, connections: 16 });
  }

  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  private base(registry: string): string {
    const host = apiHost(registry);
    return `${this.opts.plainHttp?.(host) ? 'http' : 'https'}://${host}`;
  }

  async manifest(repo: Repo, reference: string): Promise<Fetched | null> {
    const what = `${repo.registry}/${repo.path}:${reference}`;
    const r = await this.get(repo, `/v2/${repo.path}/manifests/${encodeURIComponent(reference)}`, { accept: MANIFEST_ACCEPT }, this.maxManifest, what);
    if (r.status === 404) return null;
    if (r.status !== 200) throw unexpected(r, what);
    const digest = sha256Digest(r.body);
    if (DIGEST_RE.test(reference)) checkDigest(r.body, reference, `manifest ${what}`);
    // The registry's own claim must agree with the bytes (a lying or corrupting registry is caught either way).
    const claimed = r.header('docker-content-digest');
    if (claimed !== undefined && claimed.startsWith('sha256:') && claimed !== digest) {
      throw new ImageError('DIGEST_MISMATCH', `manifest ${what}: registry says ${claimed} but the content hashes to ${digest}`);
    }
    return { digest, bytes: r.body, doc: parseManifest(r.body, r.header('content-type'), `manifest ${what}`) };
  }

  async blob(repo: Repo, digest: string, maxBytes: number): Promise<Buffer> {
    const what = `blob ${repo.registry}/${repo.path}@${digest}`;
    if (!DIGEST_RE.test(digest)) throw new ImageError('MANIFEST_INVALID', `${what}: not a sha256 digest`);
    const r = await this.get(repo, `/v2/${repo.path}/blobs/${digest}`, {}, maxBytes, what);
    if (r.status === 404) throw new ImageError('NOT_FOUND', `${what} does not exist`);
    if (r.status !== 200) throw unexpected(r, what);
    checkDigest(r.body, digest, what);
    return r.body;
  }

  async referrers(repo: Repo, digest: string): Promise<Descriptor[] | null> {
    const what = `referrers of ${repo.registry}/${repo.path}@${digest}`;
    if ((this.noReferrers.get(repo.registry) ?? 0) > this.now()) return null;
    const r = await this.get(repo, `/v2/${repo.path}/referrers/${digest}`, { accept: MEDIA.ociIndex }, this.maxManifest, what);
    // distribution-spec: a registry without the API answers 404 (some answer 400/405 for an unknown route).
    if (r.status === 404 || r.status === 405 || r.status === 400) {
      if (this.noReferrers.size >= 1024) this.noReferrers.clear();
      this.noReferrers.set(repo.registry, this.now() + 10 * 60_000);
      return null;
    }
    if (r.status !== 200) throw unexpected(r, what);
    const ct = r.header('content-type')?.split(';')[0].trim();
    if (ct !== MEDIA.ociIndex) return null;
    const idx = parseManifest(r.body, ct, what);
    if (idx.kind !== 'index') throw new ImageError('MANIFEST_INVALID', `${what}: not an image index`);
    return idx.manifests.map((m, i) => parseDescriptor(m, `${what}[${i}]`));
  }

  /** GET with auth negotiation, redirects (≤ 3, credentials kept only on the same origin), timeouts and a size cap. */
  private async get(repo: Repo, path: string, headers: Record<string, string>, maxBytes: number, what: string): Promise<HttpResult> {
    const base = this.base(repo.registry);
    const scope = `repository:${repo.path}:pull`;
    const key = `${base}|${scope}`;
    const cached = this.tokens.get(key);
    let auth = cached && cached.expires > this.now() ? cached.header : undefined;
    let r = await this.fetch(`${base}${path}`, { ...headers, ...(auth ? { authorization: auth } : {}) }, maxBytes, what);
    if (r.status === 401) {
      auth = await this.authorize(base, scope, key, r, what);
      r = await this.fetch(`${base}${path}`, { ...headers, authorization: auth }, maxBytes, what);
      if (r.status === 401 || r.status === 403) throw new ImageError('REGISTRY_ERROR', `${what}: registry refused the credentials (HTTP ${r.status})`);
    }
    return r;
  }

  private async authorize(base: string, scope: string, key: string, r: HttpResult, what: string): Promise<string> {
    const ch = parseWwwAuthenticate(r.header('www-authenticate') ?? '');
    const host = new URL(base).host;
    const creds = this.opts.credentials?.(host);
    if (!ch) throw new ImageError('REGISTRY_ERROR', `${what}: registry asks for authentication without a usable WWW-Authenticate challenge`);
    if (ch.scheme === 'basic') {
      if (!creds) throw new ImageError('REGISTRY_ERROR', `${what}: registry asks for basic credentials and none are configured for ${host}`);
      const basic = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
      this.remember(key, basic, 3600);
      return basic;
    }
    const realm = ch.params.realm;
    let url: URL;
    try {
      url = new URL(realm ?? '');
    } catch {
      throw new ImageError('REGISTRY_ERROR', `${what}: bearer challenge has no valid realm`);
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && this.opts.plainHttp?.(url.host))) {
      throw new ImageError('REGISTRY_ERROR', `${what}: token realm ${url.origin} is not HTTPS`);
    }
    if (ch.params.service) url.searchParams.set('service', ch.params.service);
    url.searchParams.set('scope', ch.params.scope ?? scope);
    const h: Record<string, string> = { accept: 'application/json' };
    if (creds) h.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    const t = await this.fetch(url.toString(), h, this.maxToken, `token for ${what}`);
    if (t.status !== 200) throw new ImageError('REGISTRY_ERROR', `${what}: token endpoint ${url.origin}${url.pathname} answered HTTP ${t.status}`);
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(t.body.toString('utf8'));
    } catch {
      throw new ImageError('REGISTRY_ERROR', `${what}: token endpoint answered non-JSON`);
    }
    const token = typeof body.token === 'string' ? body.token : typeof body.access_token === 'string' ? body.access_token : undefined;
    if (!token || token.length > this.maxToken) throw new ImageError('REGISTRY_ERROR', `${what}: token endpoint answered no token`);
    // token.md: expires_in defaults to 60 s; keep a margin so a token is not used at its last instant.
    const ttl = typeof body.expires_in === 'number' && body.expires_in > 0 ? Math.min(body.expires_in, 3600) : 60;
    this.remember(key, `Bearer ${token}`, ttl - 5);
    return `Bearer ${token}`;
  }

  private remember(key: string, header: string, seconds: number): void {
    if (this.tokens.size >= 1024) this.tokens.clear();
    this.tokens.set(key, { header, expires: this.now() + seconds * 1000 });
  }

  private async fetch(url: string, headers: Record<string, string>, maxBytes: number, what: string): Promise<HttpResult> {
    let target = new URL(url);
    const origin = target.origin;
    for (let hop = 0; hop < 4; hop++) {
      const sameOrigin = target.origin === origin;
      const h = sameOrigin ? headers : Object.fromEntries(Object.entries(headers).filter(([k]) => k !== 'authorization'));
      const signal = AbortSignal.timeout(this.timeoutMs);
      let res: Dispatcher.ResponseData;
      try {
        res = await request(target, { method: 'GET', headers: h, dispatcher: this.dispatcher, signal, headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs });
      } catch (e) {
        throw new ImageError('REGISTRY_UNREACHABLE', `${what}: registry ${target.host} unreachable: ${(e as Error).message}`);
      }
      if ([301, 302, 303, 307, 308].includes(res.statusCode) && typeof res.headers.location === 'string') {
        await res.body.dump();
        target = new URL(res.headers.location, target);
        if (target.protocol !== 'https:' && target.protocol !== 'http:') throw new ImageError('REGISTRY_ERROR', `${what}: redirect to ${target.protocol}`);
        continue;
      }
      const declared = Number(res.headers['content-length'] ?? '0');
      if (declared > maxBytes) {
        res.body.destroy();
        throw new ImageError('TOO_LARGE', `${what}: ${declared} bytes exceed the ${maxBytes}-byte limit`);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      try {
        for await (const c of res.body) {
          size += (c as Buffer).length;
          if (size > maxBytes) {
            res.body.destroy();
            throw new ImageError('TOO_LARGE', `${what}: body exceeds the ${maxBytes}-byte limit`);
          }
          chunks.push(c as Buffer);
        }
      } catch (e) {
        if (e instanceof ImageError) throw e;
        throw new ImageError('REGISTRY_UNREACHABLE', `${what}: reading from ${target.host} failed: ${(e as Error).message}`);
      }
      return new HttpResult(res.statusCode, res.headers, Buffer.concat(chunks, size));
    }
    throw new ImageError('REGISTRY_ERROR', `${what}: too many redirects`);
  }
}

function unexpected(r: HttpResult, what: string): ImageError {
  if (r.status >= 500) return new ImageError('REGISTRY_UNREACHABLE', `${what}: registry answered HTTP ${r.status}`);
  return new ImageError('REGISTRY_ERROR', `${what}: registry answered HTTP ${r.status}`);
}
