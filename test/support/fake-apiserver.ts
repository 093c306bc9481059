/**
 * A fake kube-apiserver for tests: the documented wire format (discovery, list/watch with resourceVersion,
 * bookmarks and 410 Expired, label/field selectors, limit/continue, create/update/patch/delete with
 * resourceVersion preconditions, Status errors, server-side Table output for kubectl) for the kinds in
 * src/k8s/resources.ts. In-process (`startFakeApiServer`) or as a child process (fake-apiserver-process.ts) so a
 * test can SIGSTOP/SIGKILL it. Not a conformance-complete server: no admission, auth only by client certificate,
 * no protobuf (406 unless JSON is acceptable, which every real client offers).
 *
 * Usage (in-process):
 *   const api = await startFakeApiServer({ namespaces: ['apps'], bookmarkIntervalMs: 200 });
 *   api.put('nodes', makeNode('edge-1'));                 // direct store writes (test/support/k8s-objects.ts)
 *   kc.loadFromClusterAndUser({ name: 'fake', server: api.url, skipTLSVerify: true }, { name: 'u' });
 *   execFile('kubectl', ['--server', api.url, 'get', 'pods', '-A']);
 *   api.store.compact();                                   // next watch from an older resourceVersion gets 410
 *   await api.close();
 * As a child process (SIGSTOP/SIGKILL-able): `spawnFakeApiServer({ pods, nodes, tlsDir })` from
 * fake-apiserver-process.ts; `POST /_fake/compact` compacts its history over HTTP; TLS material from
 * tls-certs.ts `makeTestPki(dir)` (client certificates required when `tls.clientCa` is set).
 * Kinds served: see KNOWN_RESOURCES in src/k8s/resources.ts (add a line there to serve another built-in kind):
 * core pods/nodes/namespaces/configmaps/events/secrets, leases, RuntimeClasses, Mutating/ValidatingWebhookConfigurations
 * and Coffer's custom resources (IsolationPolicy with the status subresource, RuntimeProfile; Tables from the CRDs'
 * printer columns). Strategies kept: metadata.generation, Secret stringData/type, RuntimeClass handler immutability.
 * No CRD schema validation (the CRD loader in src/k8s/crds/load.ts is tested separately).
 * `put(resource, obj, group)` takes the group for non-core kinds, e.g. put('runtimeclasses', rc, 'node.k8s.io').
 */
import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { apiVersionOf, findResource, KNOWN_RESOURCES, RESOURCE_VERBS, type ResourceInfo } from '../../src/k8s/resources.js';
import { parseApiPath, type ApiPath } from '../../src/k8s/request-path.js';
import { failureStatus, type K8sStatus } from '../../src/k8s/status.js';
import {
  matchFields,
  matchLabels,
  parseFieldSelector,
  parseLabelSelector,
  selectableFields,
  SelectorError,
  validateFieldSelector,
} from '../../src/k8s/selectors.js';
import { acceptsJson, crdPrinter, toTable, wantsTable, type IncludeObject, type Printer } from '../../src/k8s/table.js';
import { cofferCrds } from '../../src/k8s/crds/schemas.js';
import { applyPatch, PatchError, patchTypeOf } from '../../src/k8s/patch.js';
import { FakeStore, listItemJson, newObjectMeta, objKey, resId, type EventType, type Obj } from './fake-apiserver-store.js';

export interface FakeApiServerOptions {
  port?: number;
  host?: string;
  /** Watch events kept for resumption; older resourceVersions answer 410 Expired. */
  historySize?: number;
  /** Interval of BOOKMARK events on watches that asked for them (the real server: about a minute). */
  bookmarkIntervalMs?: number;
  /** HTTPS with these PEMs; with `clientCa`, requests without a client certificate signed by it get 401. */
  tls?: { cert: string; key: string; clientCa?: string };
  /** Pre-created namespaces (default, kube-system, kube-public, kube-node-lease are always there). */
  namespaces?: string[];
}

export interface FakeApiServer {
  url: string;
  port: number;
  store: FakeStore;
  /** Creates or replaces an object directly (no validation), as an etcd write would. */
  put(resource: string, obj: Obj, group?: string): Obj;
  remove(resource: string, namespace: string | undefined, name: string, group?: string): void;
  /**
   * Test hook run before each request is handled (method, path with query); it may write to the store first, e.g.
   * to play a concurrent writer so that the request's resourceVersion precondition fails with 409.
   */
  beforeRequest?: (method: string, url: string) => void;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(readonly status: K8sStatus) {
    super(status.message);
  }
}
const fail = (reason: string, message: string, details?: K8sStatus['details'], code?: number) => new HttpError(failureStatus(reason, message, details, code));
const notFoundResource = () => fail('NotFound', 'the server could not find the requested resource', {});

const qualified = (info: ResourceInfo) => (info.group ? `${info.resource}.${info.group}` : info.resource);
const notFound = (info: ResourceInfo, name: string) =>
  fail('NotFound', `${qualified(info)} "${name}" not found`, { name, group: info.group, kind: info.resource });
const conflict = (info: ResourceInfo, name: string) =>
  fail('Conflict', `Operation cannot be fulfilled on ${qualified(info)} "${name}": the object has been modified; please apply your changes to the latest version and try again`, {
    name,
    group: info.group,
    kind: info.resource,
  });

const VERSION = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0-coffer-fake',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2026-01-01T00:00:00Z',
  goVersion: 'go1.23.0',
  compiler: 'gc',
  platform: 'linux/amd64',
};

async function readBody(req: http.IncomingMessage, limit = 3 * 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > limit) throw fail('RequestEntityTooLarge', 'Request entity too large: limit is 3145728');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseJsonBody(text: string): Obj {
  try {
    const v = JSON.parse(text);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v;
  } catch (e) {
    throw fail('BadRequest', `the body of the request could not be decoded: ${(e as Error).message}`);
  }
}

interface ListQuery {
  labelSelector: ReturnType<typeof parseLabelSelector>;
  fieldSelector: ReturnType<typeof parseFieldSelector>;
}

function selectorMatcher(info: ResourceInfo, q: ListQuery): (o: Obj) => boolean {
  return (o) => matchLabels(q.labelSelector, o.metadata?.labels) && matchFields(q.fieldSelector, selectableFields(info.kind, o, info.namespaced));
}

interface ContinueToken {
  v: string;
  rv: number;
  start: string;
}
function encodeContinue(t: ContinueToken): string {
  return Buffer.from(JSON.stringify(t)).toString('base64url');
}
function decodeContinue(s: string): ContinueToken {
  try {
    const t = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
    if (t.v !== 'meta.k8s.io/v1' || typeof t.rv !== 'number' || typeof t.start !== 'string') throw new Error('bad');
    return t;
  } catch {
    throw fail('BadRequest', 'continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
  }
}

function parseRv(s: string, what = 'resourceVersion'): number {
  if (!/^\d+$/.test(s)) throw fail('BadRequest', `invalid ${what}: ${s}`);
  return Number(s);
}

/** Pod spec fields an update may change (pkg/apis/core/validation ValidatePodUpdate). */
function validatePodUpdate(name: string, oldPod: Obj, newPod: Obj): void {
  const oldSpec = oldPod.spec ?? {};
  const newSpec = newPod.spec ?? {};
  const oldTol: Obj[] = oldSpec.tolerations ?? [];
  const newTol: Obj[] = newSpec.tolerations ?? [];
  const norm = (t: Obj) => JSON.stringify({ key: t.key ?? '', operator: t.operator ?? '', value: t.value ?? '', effect: t.effect ?? '' });
  for (const t of oldTol) {
    if (!newTol.some((n) => norm(n) === norm(t))) {
      throw fail('Invalid', `Pod "${name}" is invalid: spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds`, {
        name,
        kind: 'Pod',
        causes: [{ reason: 'FieldValueForbidden', message: 'Forbidden: existing toleration can not be modified except its tolerationSeconds', field: 'spec.tolerations' }],
      });
    }
  }
  const strip = (s: Obj) => {
    const c = JSON.parse(JSON.stringify(s));
    delete c.tolerations;
    delete c.activeDeadlineSeconds;
    delete c.terminationGracePeriodSeconds;
    for (const k of ['containers', 'initContainers']) for (const ctr of c[k] ?? []) delete ctr.image;
    return JSON.stringify(c);
  };
  if (strip(oldSpec) !== strip(newSpec)) {
    const msg = 'Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)';
    throw fail('Invalid', `Pod "${name}" is invalid: spec: ${msg}`, { name, kind: 'Pod', causes: [{ reason: 'FieldValueForbidden', message: msg, field: 'spec' }] });
  }
}

/** Table printers of the custom resources, from the CRDs' additionalPrinterColumns (as the apiextensions server does). */
const CRD_PRINTERS: Record<string, Printer> = Object.fromEntries(
  cofferCrds().map((c: Obj) => [c.spec.names.kind, crdPrinter(c.spec.versions[0].additionalPrinterColumns.map((col: Obj) => ({ ...col })))]),
);
function tableOf(info: ResourceInfo, items: Obj[], meta: Obj, include: IncludeObject) {
  return toTable(info.kind, items, meta, include, Date.now(), CRD_PRINTERS[info.kind]);
}

/** The CRDs' structural schemas by kind: the apiextensions server prunes unknown fields and applies defaults. */
const CRD_SCHEMAS: Record<string, Obj> = Object.fromEntries(cofferCrds().map((c: Obj) => [c.spec.names.kind, c.spec.versions[0].schema.openAPIV3Schema]));

/**
 * Structural pruning and defaulting (apiextensions-apiserver pkg/apiserver/schema/pruning and defaulting): fields
 * a schema does not name are dropped unless x-kubernetes-preserve-unknown-fields; additionalProperties schemas
 * apply to every key; missing properties with a `default` get it. At the root apiVersion/kind/metadata stay.
 */
export function pruneAndDefault(v: unknown, s: Obj | undefined, root = false): unknown {
  if (!s || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return s.items ? v.map((x) => pruneAndDefault(x, s.items)) : v;
  const out: Obj = {};
  for (const [k, val] of Object.entries(v as Obj)) {
    if (root && (k === 'apiVersion' || k === 'kind' || k === 'metadata')) out[k] = val;
    else if (s.properties && Object.hasOwn(s.properties, k)) out[k] = pruneAndDefault(val, s.properties[k]);
    else if (s.additionalProperties && typeof s.additionalProperties === 'object') out[k] = pruneAndDefault(val, s.additionalProperties);
    else if (s['x-kubernetes-preserve-unknown-fields'] === true) out[k] = val;
  }
  for (const [k, ps] of Object.entries((s.properties ?? {}) as Record<string, Obj>)) {
    if (out[k] === undefined && ps.default !== undefined) out[k] = structuredClone(ps.default);
  }
  return out;
}

const invalid = (info: ResourceInfo, name: string, field: string, reason: string, detail: string) =>
  fail('Invalid', `${info.kind}${info.group ? '.' + info.group : ''} "${name}" is invalid: ${field}: ${detail}`, {
    name,
    group: info.group,
    kind: info.kind,
    causes: [{ reason, message: detail, field }],
  });
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const withoutMetaStatus = (o: Obj | undefined) => JSON.stringify({ ...(o ?? {}), apiVersion: undefined, kind: undefined, metadata: undefined, status: undefined });

/**
 * What the kinds' registry strategies do on create (existing undefined) and update: metadata.generation,
 * Secret stringData/type/data checks (pkg/apis/core/validation ValidateSecret, ValidateSecretUpdate),
 * RuntimeClass handler checks (pkg/apis/node/validation: a DNS label, immutable).
 */
export function prepareWrite(info: ResourceInfo, existing: Obj | undefined, next: Obj, name: string): Obj {
  const schema = info.custom ? CRD_SCHEMAS[info.kind] : undefined;
  const out: Obj = schema ? (pruneAndDefault(next, schema, true) as Obj) : { ...next };
  out.metadata = { ...next.metadata };
  if (info.generation) {
    const prev = Number(existing?.metadata?.generation ?? 0);
    out.metadata.generation = existing === undefined ? 1 : withoutMetaStatus(existing) === withoutMetaStatus(out) ? prev : prev + 1;
  } else delete out.metadata.generation;
  if (info.kind === 'Secret') {
    if (out.stringData !== undefined) {
      out.data = { ...(out.data ?? {}) };
      for (const [k, v] of Object.entries(out.stringData as Record<string, string>)) out.data[k] = Buffer.from(String(v), 'utf8').toString('base64');
      delete out.stringData;
    }
    out.type ??= 'Opaque';
    for (const [k, v] of Object.entries((out.data ?? {}) as Record<string, unknown>)) {
      if (typeof v !== 'string' || !BASE64.test(v)) throw fail('BadRequest', `Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 0 (data[${k}])`);
    }
    if (existing && existing.type !== out.type) throw invalid(info, name, 'type', 'FieldValueInvalid', `Invalid value: "${out.type}": field is immutable`);
    if (out.type === 'kubernetes.io/tls') {
      for (const k of ['tls.crt', 'tls.key']) if (out.data?.[k] === undefined) throw invalid(info, name, `data[${k}]`, 'FieldValueRequired', 'Required value');
    }
  }
  if (info.kind === 'RuntimeClass') {
    const h = out.handler;
    if (typeof h !== 'string' || h === '') throw invalid(info, name, 'handler', 'FieldValueRequired', 'Required value');
    if (!DNS_LABEL.test(h) || h.length > 63) throw invalid(info, name, 'handler', 'FieldValueInvalid', `Invalid value: "${h}": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'`);
    if (existing && existing.handler !== h) throw invalid(info, name, 'handler', 'FieldValueInvalid', `Invalid value: "${h}": field is immutable`);
  }
  return out;
}

export function createFakeApiServerHandler(store: FakeStore, opts: FakeApiServerOptions, hook?: () => ((method: string, url: string) => void) | undefined) {
  const bookmarkMs = opts.bookmarkIntervalMs ?? 60_000;

  const sendJson = (res: http.ServerResponse, code: number, body: unknown | string, contentType = 'application/json') => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(code, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-cache, private' });
    res.end(text);
  };

  const resourceList = (groupVersion: string, group: string, version: string) => ({
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion,
    resources: KNOWN_RESOURCES.filter((r) => r.group === group && r.version === version).flatMap((r) => [
      { name: r.resource, singularName: r.singular, namespaced: r.namespaced, kind: r.kind, verbs: RESOURCE_VERBS, ...(r.shortNames ? { shortNames: r.shortNames } : {}) },
      ...(r.subresources ?? []).map((s) => ({ name: `${r.resource}/${s}`, singularName: '', namespaced: r.namespaced, kind: r.kind, verbs: ['get', 'patch', 'update'] })),
    ]),
  });
  const groups = [...new Set(KNOWN_RESOURCES.filter((r) => r.group !== '').map((r) => r.group))].map((g) => {
    const versions = [...new Set(KNOWN_RESOURCES.filter((r) => r.group === g).map((r) => r.version))].map((v) => ({ groupVersion: `${g}/${v}`, version: v }));
    return { name: g, versions, preferredVersion: versions[0] };
  });

  function discovery(pathname: string, res: http.ServerResponse, host: string): boolean {
    if (pathname === '/version') return sendJson(res, 200, VERSION), true;
    if (pathname === '/readyz' || pathname === '/livez' || pathname === '/healthz') return sendJson(res, 200, 'ok', 'text/plain; charset=utf-8'), true;
    // Legacy (unaggregated) discovery; clients that asked for aggregated discovery fall back on Content-Type.
    if (pathname === '/api') return sendJson(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: host }] }), true;
    if (pathname === '/apis') return sendJson(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups }), true;
    if (pathname === '/api/v1') return sendJson(res, 200, resourceList('v1', '', 'v1')), true;
    const g = pathname.match(/^\/apis\/([^/]+)(?:\/([^/]+))?$/);
    if (g) {
      const group = groups.find((x) => x.name === g[1]);
      if (!group) return false;
      if (!g[2]) return sendJson(res, 200, { kind: 'APIGroup', apiVersion: 'v1', ...group }), true;
      if (!group.versions.some((v) => v.version === g[2])) return false;
      return sendJson(res, 200, resourceList(`${g[1]}/${g[2]}`, g[1], g[2])), true;
    }
    return false;
  }

  function checkNamespace(ns: string | undefined): void {
    if (ns === undefined) return;
    if (!store.get('/namespaces', ns)) throw fail('NotFound', `namespaces "${ns}" not found`, { name: ns, kind: 'namespaces' });
  }

  function respondList(req: http.IncomingMessage, res: http.ServerResponse, info: ResourceInfo, ap: ApiPath, q: URLSearchParams, table: boolean, include: IncludeObject): void {
    const lq: ListQuery = { labelSelector: parseLabelSelector(q.get('labelSelector')), fieldSelector: parseFieldSelector(q.get('fieldSelector')) };
    validateFieldSelector(lq.fieldSelector, info.kind, info.namespaced);
    const id = resId(info);
    const rvParam = q.get('resourceVersion') ?? '';
    const rvMatch = q.get('resourceVersionMatch') ?? '';
    if (rvMatch && rvParam === '') throw fail('BadRequest', 'resourceVersionMatch is forbidden unless resourceVersion is provided');
    if (rvMatch && rvMatch !== 'Exact' && rvMatch !== 'NotOlderThan') throw fail('BadRequest', `resourceVersionMatch: Unsupported value: "${rvMatch}"`);
    const limit = q.has('limit') ? parseRv(q.get('limit')!, 'limit') : 0;
    const cont = q.get('continue') ?? '';
    if (cont && rvParam !== '') throw fail('BadRequest', 'specifying resource version is not allowed when using continue');
    let atRv = store.rv;
    let start = '';
    let data: Map<string, Obj> | undefined;
    if (cont) {
      const t = decodeContinue(cont);
      start = t.start;
      data = store.snapshotAt(id, t.rv);
      if (!data) {
        // Too old to continue consistently: 410 with a token to continue inconsistently at the current revision.
        const s = failureStatus(
          'Expired',
          'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.',
        );
        s.metadata.continue = encodeContinue({ v: 'meta.k8s.io/v1', rv: store.rv, start });
        throw new HttpError(s);
      }
      atRv = t.rv;
    } else if (rvParam !== '' && rvParam !== '0') {
      const want = parseRv(rvParam);
      if (want > store.rv) {
        throw fail('Timeout', `Too large resource version: ${want}, current: ${store.rv}`, { causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }], retryAfterSeconds: 1 });
      }
      if (rvMatch === 'Exact') {
        data = store.snapshotAt(id, want);
        if (!data) throw fail('Expired', `too old resource version: ${want} (${store.compactedRv})`);
        atRv = want;
      }
    }
    data ??= store.collection(id);
    const keys = data === store.collection(id) ? store.keys(id) : [...data.keys()].sort();
    const match = selectorMatcher(info, lq);
    const prefix = ap.namespace !== undefined ? `${ap.namespace}/` : '';
    const out: Obj[] = [];
    let next = '';
    let remaining = 0;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      if (start && k <= start) continue;
      if (prefix && !k.startsWith(prefix)) continue;
      const o = data.get(k)!;
      if (!match(o)) continue;
      if (limit > 0 && out.length >= limit) {
        next = out[out.length - 1].metadata.namespace !== undefined && info.namespaced ? objKey(out[out.length - 1].metadata.namespace, out[out.length - 1].metadata.name) : out[out.length - 1].metadata.name;
        remaining = 1;
        for (let j = i + 1; j < keys.length; j++) if ((!prefix || keys[j].startsWith(prefix)) && match(data.get(keys[j])!)) remaining++;
        break;
      }
      out.push(o);
    }
    const meta: Obj = { resourceVersion: String(atRv) };
    if (next) {
      meta.continue = encodeContinue({ v: 'meta.k8s.io/v1', rv: atRv, start: next });
      if (lq.labelSelector.length === 0 && lq.fieldSelector.length === 0) meta.remainingItemCount = remaining;
    }
    if (table) {
      sendJson(res, 200, tableOf(info, out, meta, include), 'application/json;as=Table;v=v1;g=meta.k8s.io');
      return;
    }
    const body = `{"kind":"${info.kind}List","apiVersion":"${apiVersionOf(info)}","metadata":${JSON.stringify(meta)},"items":[${out.map((o) => (info.custom ? JSON.stringify(o) : listItemJson(o))).join(',')}]}`;
    sendJson(res, 200, body);
    void req;
  }

  function respondWatch(req: http.IncomingMessage, res: http.ServerResponse, info: ResourceInfo, ap: ApiPath, q: URLSearchParams, table: boolean, include: IncludeObject): void {
    const lq: ListQuery = { labelSelector: parseLabelSelector(q.get('labelSelector')), fieldSelector: parseFieldSelector(q.get('fieldSelector')) };
    if (ap.name !== undefined) lq.fieldSelector.push({ field: 'metadata.name', op: '=', value: ap.name });
    validateFieldSelector(lq.fieldSelector, info.kind, info.namespaced);
    const rvParam = q.get('resourceVersion') ?? '';
    const sendInitial = q.get('sendInitialEvents') === 'true';
    const bookmarks = q.get('allowWatchBookmarks') === 'true';
    if (sendInitial && q.get('resourceVersionMatch') !== 'NotOlderThan') {
      throw fail('Invalid', 'sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan');
    }
    if (sendInitial && !bookmarks) throw fail('Invalid', 'allowWatchBookmarks: Required value: allowWatchBookmarks must be set to true when sendInitialEvents is set');
    const fromRv = rvParam === '' || rvParam === '0' ? undefined : parseRv(rvParam);
    const timeoutS = q.has('timeoutSeconds') ? Number(q.get('timeoutSeconds')) : 1800 + Math.floor(Math.random() * 1800);
    res.writeHead(200, { 'Content-Type': table ? 'application/json;as=Table;v=v1;g=meta.k8s.io' : 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    let closed = false;
    const write = (type: string, obj: Obj) => {
      if (closed) return;
      const o = table && type !== 'BOOKMARK' && type !== 'ERROR' ? tableOf(info, [obj], { resourceVersion: obj.metadata?.resourceVersion }, include) : obj;
      res.write(`{"type":"${type}","object":${JSON.stringify(o)}}\n`);
    };
    const match = selectorMatcher(info, lq);
    const watcher = { resId: resId(info), namespace: ap.namespace, matches: match, send: (t: EventType, o: Obj) => write(t, o), close: () => end() };
    const end = () => {
      if (closed) return;
      closed = true;
      unsubscribe();
      clearInterval(bm);
      clearTimeout(to);
      res.end();
    };
    if (fromRv !== undefined && fromRv < store.compactedRv) {
      write('ERROR', failureStatus('Expired', `too old resource version: ${fromRv} (${store.compactedRv})`));
      closed = true;
      res.end();
      return;
    }
    if (fromRv === undefined || sendInitial) {
      // "Get state and start at most recent": synthetic ADDED events for what exists now.
      const id = resId(info);
      const prefix = ap.namespace !== undefined ? `${ap.namespace}/` : '';
      for (const k of store.keys(id)) {
        if (prefix && !k.startsWith(prefix)) continue;
        const o = store.get(id, k)!;
        if (match(o)) write('ADDED', o);
      }
      if (sendInitial) {
        write('BOOKMARK', { kind: info.kind, apiVersion: apiVersionOf(info), metadata: { resourceVersion: String(store.rv), annotations: { 'k8s.io/initial-events-end': 'true' } } });
      }
    } else {
      store.replay(watcher, fromRv);
    }
    const unsubscribe = store.subscribe(watcher);
    const bm = setInterval(() => {
      if (bookmarks) write('BOOKMARK', { kind: info.kind, apiVersion: apiVersionOf(info), metadata: { resourceVersion: String(store.rv) } });
    }, bookmarkMs);
    const to = setTimeout(end, timeoutS * 1000);
    req.on('close', end);
    res.on('close', end);
  }

  async function handleResource(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    let pathname = url.pathname;
    const q = url.searchParams;
    // Deprecated /api/v1/watch/... form.
    const w = pathname.match(/^(\/api\/v1|\/apis\/[^/]+\/[^/]+)\/watch(\/.*)$/);
    if (w) {
      pathname = w[1] + w[2];
      q.set('watch', 'true');
    }
    const ap = parseApiPath(pathname);
    if (!ap) throw notFoundResource();
    const info = findResource(ap.group, ap.version, ap.resource);
    if (!info) throw notFoundResource();
    if (info.namespaced === false && ap.namespace !== undefined) throw notFoundResource();
    if (ap.subresource !== undefined && !(info.subresources ?? []).includes(ap.subresource)) throw notFoundResource();
    const accept = req.headers.accept;
    if (!acceptsJson(accept) && !wantsTable(accept)) {
      throw fail('NotAcceptable', `only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf`);
    }
    const table = wantsTable(accept);
    const include = (q.get('includeObject') as IncludeObject | null) ?? 'Metadata';
    const id = resId(info);
    const method = req.method ?? 'GET';
    const isWatch = q.get('watch') === 'true' || q.get('watch') === '1';
    const key = ap.name !== undefined ? objKey(info.namespaced ? ap.namespace : undefined, ap.name) : '';
    if (info.namespaced && ap.name !== undefined && ap.namespace === undefined) throw notFoundResource();

    if (method === 'GET') {
      if (isWatch) return respondWatch(req, res, info, ap, q, table, include);
      if (ap.name === undefined) return respondList(req, res, info, ap, q, table, include);
      const o = store.get(id, key);
      if (!o) throw notFound(info, ap.name);
      if (table) return sendJson(res, 200, tableOf(info, [o], { resourceVersion: o.metadata.resourceVersion }, include), 'application/json;as=Table;v=v1;g=meta.k8s.io');
      return sendJson(res, 200, o);
    }
    const dryRun = q.get('dryRun') === 'All';
    if (method === 'POST') {
      if (ap.name !== undefined) throw fail('MethodNotAllowed', `the server does not allow this method on the requested resource`);
      const body = parseJsonBody(await readBody(req));
      if (body.apiVersion !== undefined && body.apiVersion !== apiVersionOf(info)) throw fail('BadRequest', `the API version in the data (${body.apiVersion}) does not match the expected API version (${apiVersionOf(info)})`);
      if (body.kind !== undefined && body.kind !== info.kind) throw fail('BadRequest', `the kind in the data (${body.kind}) does not match the expected kind (${info.kind})`);
      const meta: Obj = body.metadata ?? {};
      if (info.namespaced && meta.namespace !== undefined && meta.namespace !== ap.namespace) {
        throw fail('BadRequest', 'the namespace of the provided object does not match the namespace sent on the request');
      }
      if (info.namespaced && ap.namespace === undefined) throw notFoundResource();
      let name: string | undefined = meta.name;
      if (!name && meta.generateName) name = `${meta.generateName}${randomBytes(4).toString('hex').slice(0, 5)}`;
      if (!name) throw fail('Invalid', `${info.kind} "" is invalid: metadata.name: Required value: name or generateName is required`, { kind: info.kind, causes: [{ reason: 'FieldValueRequired', message: 'Required value: name or generateName is required', field: 'metadata.name' }] });
      checkNamespace(info.namespaced ? ap.namespace : undefined);
      const k = objKey(info.namespaced ? ap.namespace : undefined, name);
      if (store.get(id, k)) throw fail('AlreadyExists', `${qualified(info)} "${name}" already exists`, { name, group: info.group, kind: info.resource });
      let obj: Obj = { ...body, metadata: newObjectMeta({ ...meta, name }, info.namespaced ? ap.namespace : undefined) };
      obj = prepareWrite(info, undefined, obj, name);
      // A status subresource makes the main resource ignore status on create too (the CR strategy resets it).
      if ((info.subresources ?? []).includes('status') && info.custom) delete obj.status;
      if (info.kind === 'Namespace') obj.status = { phase: 'Active', ...(obj.status ?? {}) };
      if (dryRun) return sendJson(res, 201, { ...obj, apiVersion: apiVersionOf(info), kind: info.kind });
      return sendJson(res, 201, store.write(info, k, obj));
    }
    if (ap.name === undefined) {
      if (method === 'DELETE') {
        // deletecollection
        const lq: ListQuery = { labelSelector: parseLabelSelector(q.get('labelSelector')), fieldSelector: parseFieldSelector(q.get('fieldSelector')) };
        const match = selectorMatcher(info, lq);
        const prefix = ap.namespace !== undefined ? `${ap.namespace}/` : '';
        const gone: Obj[] = [];
        for (const k of [...store.keys(id)]) {
          const o = store.get(id, k)!;
          if ((!prefix || k.startsWith(prefix)) && match(o)) gone.push(dryRun ? o : store.write(info, k, null));
        }
        return sendJson(res, 200, { kind: `${info.kind}List`, apiVersion: apiVersionOf(info), metadata: { resourceVersion: String(store.rv) }, items: gone.map((o) => JSON.parse(listItemJson(o))) });
      }
      throw fail('MethodNotAllowed', 'the server does not allow this method on the requested resource');
    }
    const existing = store.get(id, key);
    if (method === 'PUT' || method === 'PATCH') {
      let candidate: Obj;
      if (method === 'PUT') {
        candidate = parseJsonBody(await readBody(req));
        if (candidate.metadata?.name !== undefined && candidate.metadata.name !== ap.name) {
          throw fail('BadRequest', `the name of the object (${candidate.metadata.name}) does not match the name on the URL (${ap.name})`);
        }
        if (!existing) throw notFound(info, ap.name);
        const want = candidate.metadata?.resourceVersion;
        if (want !== undefined && want !== '' && want !== existing.metadata.resourceVersion) throw conflict(info, ap.name);
      } else {
        const type = patchTypeOf(req.headers['content-type']);
        if (!type) {
          throw fail('UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json`);
        }
        if (!existing) throw notFound(info, ap.name);
        let patch: unknown;
        try {
          patch = JSON.parse(await readBody(req));
        } catch (e) {
          throw fail('BadRequest', `error decoding patch: ${(e as Error).message}`);
        }
        try {
          candidate = applyPatch(type, existing, patch) as Obj;
        } catch (e) {
          if (e instanceof PatchError) throw fail(type === 'json' ? 'Invalid' : 'BadRequest', e.message);
          throw e;
        }
        if (candidate?.metadata?.resourceVersion !== existing.metadata.resourceVersion) {
          if (candidate?.metadata?.resourceVersion !== undefined) throw conflict(info, ap.name);
        }
      }
      if (candidate.apiVersion !== undefined && candidate.apiVersion !== apiVersionOf(info)) throw fail('BadRequest', `the API version in the data (${candidate.apiVersion}) does not match the expected API version (${apiVersionOf(info)})`);
      // Identity and bookkeeping fields stay the server's.
      const meta = { ...(candidate.metadata ?? {}), name: existing.metadata.name, uid: existing.metadata.uid, creationTimestamp: existing.metadata.creationTimestamp };
      if (info.namespaced) meta.namespace = existing.metadata.namespace;
      let next: Obj = { ...candidate, metadata: meta };
      if (ap.subresource === 'status') next = { ...existing, status: candidate.status };
      else if ((info.subresources ?? []).includes('status')) next.status = existing.status;
      next = prepareWrite(info, existing, next, ap.name);
      if (info.kind === 'Pod') validatePodUpdate(ap.name, existing, next);
      const strip = (o: Obj) => JSON.stringify({ ...o, apiVersion: undefined, kind: undefined, metadata: { ...o.metadata, resourceVersion: undefined } });
      if (strip(next) === strip(existing) || dryRun) return sendJson(res, 200, dryRun ? { ...next, apiVersion: apiVersionOf(info), kind: info.kind } : existing);
      return sendJson(res, 200, store.write(info, key, next));
    }
    if (method === 'DELETE') {
      if (ap.subresource !== undefined) throw fail('MethodNotAllowed', 'the server does not allow this method on the requested resource');
      if (!existing) throw notFound(info, ap.name);
      const text = await readBody(req);
      if (text.trim()) {
        const opts = parseJsonBody(text);
        const pre = opts.preconditions ?? {};
        if (pre.uid !== undefined && pre.uid !== existing.metadata.uid) {
          throw fail('Conflict', `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${existing.metadata.uid}`, { name: ap.name, group: info.group, kind: info.resource });
        }
        if (pre.resourceVersion !== undefined && pre.resourceVersion !== existing.metadata.resourceVersion) {
          throw fail('Conflict', `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${existing.metadata.resourceVersion}`, { name: ap.name, group: info.group, kind: info.resource });
        }
      }
      if (dryRun) return sendJson(res, 200, existing);
      return sendJson(res, 200, store.write(info, key, null));
    }
    throw fail('MethodNotAllowed', 'the server does not allow this method on the requested resource');
  }

  return async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    try {
      if (opts.tls?.clientCa) {
        const sock = req.socket as TLSSocket;
        if (!sock.authorized) throw fail('Unauthorized', 'Unauthorized');
      }
      hook?.()?.(req.method ?? 'GET', req.url ?? '/');
      const url = new URL(req.url ?? '/', 'http://fake');
      if (req.method === 'POST' && url.pathname === '/_fake/compact') {
        store.compact();
        return sendJson(res, 200, { compactedRv: store.compactedRv });
      }
      if (req.method === 'GET' && discovery(url.pathname, res, req.headers.host ?? '')) return;
      await handleResource(req, res, url);
    } catch (e) {
      let status: K8sStatus;
      if (e instanceof HttpError) status = e.status;
      else if (e instanceof SelectorError) status = failureStatus('BadRequest', e.message);
      else status = failureStatus('InternalError', `Internal error occurred: ${(e as Error).message}`);
      if (!res.headersSent) sendJson(res, status.code, status);
      else res.end();
    }
  };
}

const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

export async function startFakeApiServer(opts: FakeApiServerOptions = {}): Promise<FakeApiServer> {
  const store = new FakeStore(opts.historySize ?? 1000);
  const nsInfo = findResource('', 'v1', 'namespaces')!;
  for (const ns of [...SYSTEM_NAMESPACES, ...(opts.namespaces ?? [])]) {
    store.write(nsInfo, ns, { metadata: newObjectMeta({ name: ns }, undefined), spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } });
  }
  let api: FakeApiServer | undefined;
  const handler = createFakeApiServerHandler(store, opts, () => api?.beforeRequest);
  const server = opts.tls
    ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key, ...(opts.tls.clientCa ? { ca: opts.tls.clientCa, requestCert: true, rejectUnauthorized: false } : {}) }, (q, s) => void handler(q, s))
    : http.createServer((q, s) => void handler(q, s));
  server.keepAliveTimeout = 60_000;
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const infoOf = (resource: string, group = '') => {
    const i = KNOWN_RESOURCES.find((r) => r.resource === resource && r.group === group);
    if (!i) throw new Error(`unknown resource ${resource}`);
    return i;
  };
  api = {
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    store,
    put(resource, obj, group = '') {
      const info = infoOf(resource, group);
      const ns = info.namespaced ? (obj.metadata?.namespace ?? 'default') : undefined;
      const key = objKey(ns, obj.metadata.name);
      const existing = store.get(resId(info), key);
      const meta = existing ? { ...obj.metadata, uid: existing.metadata.uid, creationTimestamp: existing.metadata.creationTimestamp } : newObjectMeta(obj.metadata, ns);
      return store.write(info, key, prepareWrite(info, existing, { ...obj, metadata: meta }, obj.metadata.name));
    },
    remove(resource, namespace, name, group = '') {
      const info = infoOf(resource, group);
      store.write(info, objKey(info.namespaced ? namespace : undefined, name), null);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
  return api;
}

