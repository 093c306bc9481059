import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { IsolationPolicy, RuntimeProfile } from '../crds/types.js';
import { K8sInputError } from '../errors.js';
import { decideAdmission, validateAdmission, DEFAULT_ADMISSION_CONFIG, type AdmissionConfig } from './engine.js';
import { WebhookMetrics } from './metrics.js';
import { PATHS, allowResponse, denyResponse, isEphemeralContainersUpdate, isPodRequest, parseAdmissionReview, podOf, responseFor, reviewOf, type AdmissionRequest, type AdmissionResponse } from './review.js';
import type { Pod } from './pod.js';
import { decideEphemeralImages, verifyPodImages, type ImageVerdicts } from './images.js';
import type { ImageVerifier } from '../../images/verifier.js';
import { decideNodeTrust, isNodeRequest, type NodeGuardOptions } from './node-guard.js';
import { jsonDepth, MAX_NESTING_DEPTH } from '../../tee/common/nesting.js';
import { loadTlsFiles, reloadServingTls, TlsFileWatcher, type TlsMaterial } from './tls-files.js';

/** Where the webhook gets its policies, profiles and namespace labels (files today; informers in-cluster). */
export interface AdmissionSources {
  policies(): readonly IsolationPolicy[];
  profiles(): ReadonlyMap<string, RuntimeProfile>;
  /** undefined = not known (yet): the webhook answers 503 so the configuration's failurePolicy decides. */
  namespaceLabels(namespace: string): Record<string, string> | undefined;
  ready?(): boolean;
}

export interface WebhookLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface WebhookServerOptions {
  certFile: string;
  keyFile: string;
  sources: AdmissionSources;
  config?: AdmissionConfig;
  host?: string;
  port?: number;
  /** AdmissionReview bodies above this are refused with 413 (a Pod is ≤ 1.5 MiB in etcd; object + oldObject). */
  maxBodyBytes?: number;
  /** TLS file watch: debounce and backup poll intervals (tests shorten them). */
  tlsDebounceMs?: number;
  tlsPollMs?: number;
  logger?: WebhookLogger;
  /** Node trust guard (PATHS.nodes); absent = nobody may change node trust through this webhook's view. */
  nodeGuard?: NodeGuardOptions;
  /** Image signature verification for policies with spec.images; without it such pods are denied (fail closed). */
  images?: ImageVerifier;
  /** Deny images not verified within this time (below the webhook configuration's timeoutSeconds); default 4000. */
  imageDeadlineMs?: number;
}

export { PATHS } from './review.js';

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const silent: WebhookLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * `coffer webhook`: HTTPS AdmissionReview v1 endpoints for Pods. Each instance owns its server, metrics registry
 * and TLS watcher; nothing is global. Errors in one request never reach the process: every path ends in a
 * response (400/405/413/415/500/503 or an AdmissionReview).
 */
export class WebhookServer {
  readonly metrics = new WebhookMetrics();
  private server?: Server;
  private tls?: TlsMaterial;
  private watcher?: TlsFileWatcher;
  private readonly log: WebhookLogger;
  private readonly maxBody: number;
  private reloading?: Promise<boolean>;

  constructor(private readonly opts: WebhookServerOptions) {
    this.log = opts.logger ?? silent;
    if (opts.images) this.metrics.watchImageCache(opts.images.cache);
    this.maxBody = opts.maxBodyBytes ?? 3 * 1024 * 1024;
  }

  async start(): Promise<{ port: number; host: string }> {
    this.tls = await loadTlsFiles(this.opts.certFile, this.opts.keyFile);
    this.metrics.certNotAfter.set(this.tls.notAfter.getTime() / 1000);
    const server = createServer({ cert: this.tls.cert, key: this.tls.key, minVersion: 'TLSv1.2' }, (req, res) => this.handle(req, res));
    // Keep-alive: the API server reuses connections; a short idle timeout frees abandoned ones.
    server.keepAliveTimeout = 30_000;
    server.headersTimeout = 10_000;
    server.requestTimeout = 15_000;
    server.on('tlsClientError', () => undefined);
    server.on('clientError', (_err, socket) => socket.destroy());
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port ?? 8443, this.opts.host ?? '0.0.0.0', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.watcher = new TlsFileWatcher([this.opts.certFile, this.opts.keyFile], () => this.reloadTls(), { debounceMs: this.opts.tlsDebounceMs, pollMs: this.opts.tlsPollMs });
    this.watcher.start();
    const a = server.address() as AddressInfo;
    this.log.info({ port: a.port, notAfter: this.tls.notAfter.toISOString() }, 'coffer webhook listening');
    return { port: a.port, host: a.address };
  }

  /** Fingerprint of the TLS material in use (tests and logs). */
  get tlsFingerprint(): string | undefined {
    return this.tls?.fingerprint;
  }

  /**
   * Re-reads the files; swaps the context only when they changed and load as a matching pair — a half-written
   * rotation (new cert, old key) keeps the old pair serving. Returns true when a new pair is in use.
   */
  reloadTls(): Promise<boolean> {
    if (this.reloading) return this.reloading;
    this.reloading = (async () => {
      try {
        const next = await reloadServingTls(this.server, this.opts.certFile, this.opts.keyFile, this.tls);
        if (!next) return false;
        this.tls = next;
        this.metrics.tlsReloads.inc({ result: 'ok' });
        this.metrics.certNotAfter.set(next.notAfter.getTime() / 1000);
        this.log.info({ notAfter: next.notAfter.toISOString() }, 'serving certificate reloaded');
        return true;
      } catch (e) {
        this.metrics.tlsReloads.inc({ result: 'error' });
        this.log.warn({ err: (e as Error).message }, 'serving certificate reload failed; keeping the previous one');
        return false;
      } finally {
        this.reloading = undefined;
      }
    })();
    return this.reloading;
  }

  async close(): Promise<void> {
    this.watcher?.stop();
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (path === PATHS.mutate || path === PATHS.validate || path === PATHS.nodes) {
      this.admission(path, req, res);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return this.plain(res, 405, 'method not allowed\n', { allow: 'GET' });
    if (path === '/healthz') return this.plain(res, 200, 'ok\n');
    if (path === '/readyz') {
      const ready = this.tls !== undefined && (this.opts.sources.ready?.() ?? true);
      return this.plain(res, ready ? 200 : 503, ready ? 'ok\n' : 'not ready: policy sources not synced\n');
    }
    if (path === '/metrics') {
      this.metrics.registry.metrics().then(
        (text) => this.plain(res, 200, text, { 'content-type': this.metrics.registry.contentType }),
        () => this.plain(res, 500, 'metrics unavailable\n'),
      );
      return;
    }
    this.plain(res, 404, 'not found\n');
  }

  private admission(path: string, req: IncomingMessage, res: ServerResponse): void {
    const started = process.hrtime.bigint();
    const done = (status: number, body: string, outcome: string, headers: Record<string, string> = {}) => {
      this.metrics.requests.inc({ path, outcome });
      this.metrics.duration.observe({ path }, Number(process.hrtime.bigint() - started) / 1e9);
      this.plain(res, status, body, { 'content-type': 'application/json', ...headers });
    };
    const fail = (e: unknown) => {
      if (e instanceof HttpError) return done(e.status, statusJson(e.status, e.message), e.status >= 500 ? 'error' : 'bad_request', e.status === 413 ? { connection: 'close' } : {});
      if (e instanceof K8sInputError) return done(400, statusJson(400, e.message), 'bad_request');
      this.log.error({ err: (e as Error)?.stack ?? String(e) }, 'admission request failed');
      done(500, statusJson(500, 'internal error while deciding admission'), 'error');
    };
    if (req.method !== 'POST') {
      req.resume();
      return fail(new HttpError(405, `${req.method} not allowed on ${path}; use POST`));
    }
    const ct = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (ct !== 'application/json') {
      req.resume();
      return fail(new HttpError(415, `content-type must be application/json, got '${ct || 'none'}'`));
    }
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > this.maxBody) {
      req.resume();
      return fail(new HttpError(413, `request body of ${declared} bytes exceeds the ${this.maxBody}-byte limit`));
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let aborted = false;
    req.on('data', (c: Buffer) => {
      if (aborted) return;
      size += c.length;
      if (size > this.maxBody) {
        aborted = true;
        chunks.length = 0;
        fail(new HttpError(413, `request body exceeds the ${this.maxBody}-byte limit`));
        return;
      }
      chunks.push(c);
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      if (aborted) return;
      let body: unknown;
      try {
        const text = Buffer.concat(chunks, size).toString('utf8');
        // Bounded before parsing: a pod nested 10,000 deep overflowed the stack later (deep copy) and answered 500.
        if (jsonDepth(text, MAX_NESTING_DEPTH) > MAX_NESTING_DEPTH) return fail(new HttpError(400, `request body is nested more than ${MAX_NESTING_DEPTH} levels deep`));
        body = JSON.parse(text);
      } catch {
        return fail(new HttpError(400, 'request body is not JSON'));
      }
      this.review(path, body).then((response) => {
        const outcome = !response.allowed ? 'denied' : response.patch ? 'mutated' : 'allowed';
        done(200, JSON.stringify(reviewOf(response)), outcome);
      }, fail);
    });
  }

  private async review(path: string, body: unknown): Promise<AdmissionResponse> {
    const r = parseAdmissionReview(body);
    if (path === PATHS.nodes) {
      if (!isNodeRequest(r)) return denyResponse(r.uid, 400, `${PATHS.nodes} handles core/v1 Nodes only, got ${r.kind.group || 'core'}/${r.kind.version} ${r.kind.kind}${r.subResource ? `/${r.subResource}` : ''}`, 'BadRequest');
      // Fail closed: without configured trust writers nobody passes.
      return decideNodeTrust(r, this.opts.nodeGuard ?? { trustWriters: [] });
    }
    if (isEphemeralContainersUpdate(r)) return this.ephemeral(path, r);
    if (!isPodRequest(r)) {
      return denyResponse(r.uid, 400, `coffer webhook handles core/v1 Pods only, got ${r.kind.group || 'core'}/${r.kind.version} ${r.kind.kind}${r.subResource ? `/${r.subResource}` : ''}`, 'BadRequest');
    }
    // Only creation decides a pod's runtime; most of a pod's spec is immutable afterwards.
    if (r.operation !== 'CREATE') return allowResponse(r.uid);
    const { pod, labels, policies } = this.podContext(r);
    const input = {
      pod,
      namespaceLabels: labels,
      policies,
      profiles: this.opts.sources.profiles(),
      config: this.opts.config ?? DEFAULT_ADMISSION_CONFIG,
      images: this.countVerdicts(await verifyPodImages(pod, labels, policies, this.opts.images, this.opts.imageDeadlineMs ?? 4000)),
    };
    if (path === PATHS.mutate) return responseFor(r.uid, decideAdmission(input), true);
    return responseFor(r.uid, validateAdmission(input), false);
  }

  /** pods/ephemeralcontainers UPDATE (`kubectl debug`): the new containers' images are verified and pinned. */
  private async ephemeral(path: string, r: AdmissionRequest): Promise<AdmissionResponse> {
    const { pod, labels, policies } = this.podContext(r);
    const only: Pod = { ...pod, spec: { ephemeralContainers: pod.spec?.ephemeralContainers ?? [] } };
    const verdicts = this.countVerdicts(await verifyPodImages(only, labels, policies, this.opts.images, this.opts.imageDeadlineMs ?? 4000));
    return responseFor(r.uid, decideEphemeralImages(pod, labels, policies, verdicts, path === PATHS.mutate), path === PATHS.mutate);
  }

  /** The pod, its namespace's labels and the policies, all from synced sources, or a 503 (failurePolicy decides). */
  private podContext(r: AdmissionRequest) {
    // Never decide on a partial view: before the sources have synced, let the failurePolicy decide.
    if (this.opts.sources.ready && !this.opts.sources.ready()) throw new HttpError(503, 'isolation policies are not synced yet');
    const pod = podOf(r);
    const namespace = r.namespace || pod.metadata?.namespace;
    if (!namespace) throw new K8sInputError('AdmissionReview: pod request has no namespace');
    const labels = this.opts.sources.namespaceLabels(namespace);
    if (labels === undefined) throw new HttpError(503, `labels of namespace "${namespace}" are not known yet`);
    return { pod, labels, policies: this.opts.sources.policies() };
  }

  private countVerdicts(v: ImageVerdicts | undefined): ImageVerdicts | undefined {
    for (const m of v?.values() ?? []) for (const x of m.values()) this.metrics.imageVerdicts.inc({ result: x.ok ? 'verified' : x.code });
    return v;
  }

  private plain(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
    if (res.headersSent) return;
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...headers });
    res.end(body);
  }
}

/** A meta/v1 Status body for HTTP-level errors (what API clients expect from Kubernetes-style endpoints). */
function statusJson(code: number, message: string): string {
  const reasons: Record<number, string> = { 400: 'BadRequest', 405: 'MethodNotAllowed', 413: 'RequestEntityTooLarge', 415: 'UnsupportedMediaType', 500: 'InternalError', 503: 'ServiceUnavailable' };
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: reasons[code] ?? '', code });
}
