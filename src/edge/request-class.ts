/**
 * What a request to the hub is: which client component sent it (User-Agent up to the first '/', lowercased,
 * as YurtHub does), which API verb, and whether its response may be cached for offline use.
 */
import { parseApiPath, type ApiPath } from '../k8s/request-path.js';

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection' | 'unknown';

export interface RequestClass {
  component: string;
  verb: Verb;
  api?: ApiPath;
  /** Non-resource discovery GETs (/api, /apis, /version, /api/v1 ...) that kubectl needs offline. */
  discovery: boolean;
  cacheable: boolean;
  query: URLSearchParams;
}

export const DEFAULT_CACHE_AGENTS = ['kubelet', 'kube-proxy', 'coffer', 'flanneld', 'coredns'];
/** Never cached: security-sensitive reviews and CSRs (YurtHub's exclusion list). */
const NEVER_CACHE = new Set(['certificatesigningrequests', 'subjectaccessreviews', 'tokenreviews', 'selfsubjectaccessreviews', 'secrets']);

export function componentOf(userAgent: string | undefined): string {
  const ua = (userAgent ?? '').trim().toLowerCase();
  const i = ua.indexOf('/');
  return i >= 0 ? ua.slice(0, i) : ua;
}

const DISCOVERY_RE = /^\/(version|api|apis|api\/v1|apis\/[^/]+|apis\/[^/]+\/[^/]+)\/?$/;

export function classifyRequest(method: string, rawUrl: string, userAgent: string | undefined, cacheAgents: ReadonlySet<string>): RequestClass {
  const url = new URL(rawUrl, 'http://hub');
  let pathname = url.pathname;
  const query = url.searchParams;
  const w = pathname.match(/^(\/api\/v1|\/apis\/[^/]+\/[^/]+)\/watch(\/.*)$/);
  if (w) {
    pathname = w[1] + w[2];
    query.set('watch', 'true');
  }
  const component = componentOf(userAgent);
  const agentOk = cacheAgents.has('*') || cacheAgents.has(component);
  const discovery = method === 'GET' && DISCOVERY_RE.test(pathname);
  const api = discovery ? undefined : parseApiPath(pathname);
  let verb: Verb = 'unknown';
  if (api) {
    const isWatch = query.get('watch') === 'true' || query.get('watch') === '1';
    if (method === 'GET') verb = isWatch ? 'watch' : api.name === undefined ? 'list' : 'get';
    else if (method === 'POST') verb = 'create';
    else if (method === 'PUT') verb = 'update';
    else if (method === 'PATCH') verb = 'patch';
    else if (method === 'DELETE') verb = api.name === undefined ? 'deletecollection' : 'delete';
  }
  const cacheable =
    agentOk &&
    (discovery ||
      (api !== undefined &&
        (verb === 'get' || verb === 'list' || verb === 'watch') &&
        (api.subresource === undefined || api.subresource === 'status') &&
        !NEVER_CACHE.has(api.resource)));
  const out: RequestClass = { component, verb, discovery, cacheable, query };
  if (api) out.api = api;
  return out;
}
