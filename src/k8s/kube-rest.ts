/**
 * Minimal typed REST calls to a kube-apiserver with a kubeconfig's credentials (TLS client cert, CA, bearer
 * token). Used for the few writes controllers make, where the wire (merge patch + resourceVersion precondition)
 * should be explicit. Non-2xx answers become KubeApiError carrying the server's Status.
 */
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

export class KubeApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
}

/** Per-request bounds: the time an answer may take and the bytes it may carry (defaults: 30 s, unbounded). */
export interface KubeRestLimits {
  timeoutMs?: number;
  maxBytes?: number;
}

export class KubeRest {
  private readonly agent: http.Agent;
  private readonly base: URL;

  private constructor(
    base: URL,
    private readonly opts: https.RequestOptions,
    private readonly userAgent: string,
    private readonly limits: KubeRestLimits,
  ) {
    this.base = base;
    this.agent = base.protocol === 'https:' ? new https.Agent({ keepAlive: true, ca: opts.ca, cert: opts.cert, key: opts.key, rejectUnauthorized: opts.rejectUnauthorized !== false }) : new http.Agent({ keepAlive: true });
  }

  static async fromKubeConfig(kc: KubeConfig, userAgent = 'coffer-controller/0.1', limits: KubeRestLimits = {}): Promise<KubeRest> {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const opts: https.RequestOptions = {};
    const base = new URL(cluster.server);
    // client-node refuses to build options for plain http; there is no TLS to configure then, only a token.
    if (base.protocol === 'https:') await kc.applyToHTTPSOptions(opts);
    else if (kc.getCurrentUser()?.token) opts.headers = { Authorization: `Bearer ${kc.getCurrentUser()!.token}` };
    return new KubeRest(base, opts, userAgent, limits);
  }

  request<T = any>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    const url = new URL(this.base.pathname.replace(/\/$/, '') + path, this.base);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': this.userAgent, ...((this.opts.headers as Record<string, string>) ?? {}) };
    if (payload) {
      headers['content-type'] = contentType;
      headers['content-length'] = String(payload.length);
    }
    const request = url.protocol === 'https:' ? https.request : http.request;
    return new Promise<T>((resolve, reject) => {
      const { timeoutMs = 30_000, maxBytes = Infinity } = this.limits;
      // `timeout` is socket idleness; the deadline bounds the whole answer (a slow trickle too).
      const deadline = setTimeout(() => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${method} ${path}`)), timeoutMs);
      const req = request(url, { method, headers, agent: this.agent, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          if (bytes > maxBytes) return void res.destroy(new Error(`answer larger than ${maxBytes} bytes: ${method} ${path}`));
          chunks.push(c);
        });
        res.on('end', () => {
          clearTimeout(deadline);
          const text = Buffer.concat(chunks).toString('utf8');
          let doc: any;
          try {
            doc = text ? JSON.parse(text) : undefined;
          } catch {
            doc = undefined;
          }
          const code = res.statusCode ?? 0;
          if (code >= 200 && code < 300) resolve(doc as T);
          else reject(new KubeApiError(code, doc?.reason ?? '', doc?.message ?? `HTTP ${code} from ${method} ${path}`));
        });
        res.on('error', reject);
        res.on('close', () => {
          clearTimeout(deadline);
          if (!res.complete) reject(new Error(`answer cut short: ${method} ${path}`));
        });
      });
      req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${path}`)));
      req.on('error', (e) => {
        clearTimeout(deadline);
        reject(e);
      });
      if (payload) req.write(payload);
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
