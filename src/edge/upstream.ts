/**
 * The connection to the cloud kube-apiserver: its URL, a keep-alive agent carrying the node's TLS credentials
 * (CA, client certificate) from a kubeconfig, and any bearer token to send on the node's behalf.
 */
import http from 'node:http';
import https from 'node:https';
import { EdgeHubError } from './errors.js';

export interface Upstream {
  url: URL;
  agent: http.Agent;
  /** Headers the hub sets on every upstream request (Authorization from the kubeconfig, if any). */
  headers: Record<string, string>;
  request: typeof http.request;
}

export async function createUpstream(server: string | undefined, kubeconfigPath?: string, maxSockets = 64): Promise<Upstream> {
  let tls: { ca?: https.AgentOptions['ca']; cert?: https.AgentOptions['cert']; key?: https.AgentOptions['key']; rejectUnauthorized?: boolean } = {};
  let headers: Record<string, string> = {};
  let serverUrl = server;
  if (kubeconfigPath) {
    // Loaded only when needed: the client library is large and the hub should stay small on the node.
    const { KubeConfig } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    try {
      kc.loadFromFile(kubeconfigPath);
    } catch (e) {
      throw new EdgeHubError('KUBECONFIG_INVALID', `kubeconfig ${kubeconfigPath} could not be loaded: ${(e as Error).message}`);
    }
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new EdgeHubError('KUBECONFIG_INVALID', `kubeconfig ${kubeconfigPath} has no current cluster`);
    serverUrl ??= cluster.server;
    const opts: https.RequestOptions = {};
    // client-node refuses to build options for plain http; there is no TLS to configure then, only a token.
    if (new URL(serverUrl).protocol === 'https:') await kc.applyToHTTPSOptions(opts);
    else if (kc.getCurrentUser()?.token) opts.headers = { Authorization: `Bearer ${kc.getCurrentUser()!.token}` };
    tls = { ca: opts.ca, cert: opts.cert, key: opts.key, rejectUnauthorized: opts.rejectUnauthorized !== false };
    const h = (opts.headers ?? {}) as Record<string, string>;
    if (h.Authorization) headers = { authorization: h.Authorization };
  }
  if (!serverUrl) throw new EdgeHubError('NO_SERVER', 'no API server: pass --server or a kubeconfig with a current cluster');
  let url: URL;
  try {
    url = new URL(serverUrl);
  } catch {
    throw new EdgeHubError('BAD_SERVER_URL', `--server '${serverUrl}' is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new EdgeHubError('BAD_SERVER_URL', `--server '${serverUrl}' must be http:// or https://`);
  const isTls = url.protocol === 'https:';
  const agent = isTls ? new https.Agent({ keepAlive: true, maxSockets, ...tls }) : new http.Agent({ keepAlive: true, maxSockets });
  return { url, agent, headers, request: isTls ? https.request : http.request };
}
