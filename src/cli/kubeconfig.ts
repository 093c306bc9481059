import type { KubeConfig } from '@kubernetes/client-node';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { CliUsageError } from './context.js';
import { FILE_CAPS, oneLine, readUserFileSync } from './files.js';
import { MAX_NESTING_DEPTH, yamlDepth } from '../tee/common/nesting.js';

/**
 * `--kubeconfig FILE` or the default chain (KUBECONFIG, ~/.kube/config, in-cluster service account). A file that
 * cannot be loaded, or one without a current cluster, is a usage error (exit 2). With none of the three the client
 * library would fall back to http://localhost:8080 and poll it forever: that is refused too. Files are read bounded
 * (size, nesting). The client library is imported here, lazily, so commands that never talk to Kubernetes do not
 * pay for loading it.
 */
export async function loadKubeConfig(path: string | undefined, env: Record<string, string | undefined> = process.env): Promise<KubeConfig> {
  const files = path ? [path] : (env.KUBECONFIG ?? '').split(delimiter).filter(Boolean);
  const inCluster = !path && !env.KUBECONFIG && env.KUBERNETES_SERVICE_HOST !== undefined && existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token');
  if (!path && files.length === 0 && !inCluster) {
    const home = join(env.HOME ?? homedir(), '.kube', 'config');
    if (existsSync(home)) files.push(home);
    else throw new CliUsageError('no kubeconfig: pass --kubeconfig, set KUBECONFIG, create ~/.kube/config, or run in a cluster');
  }
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  try {
    if (inCluster) kc.loadFromCluster();
    else {
      const what = path ? '--kubeconfig' : 'kubeconfig';
      // Each file is checked bounded first (regular file, size, nesting); the library then loads it the usual way
      // (loadFromFile resolves relative certificate paths; several KUBECONFIG files are merged by loadFromDefault).
      for (const f of files) {
        const text = readUserFileSync(f, what, FILE_CAPS.kubeconfig).toString('utf8');
        if (yamlDepth(text, MAX_NESTING_DEPTH) > MAX_NESTING_DEPTH) throw new CliUsageError(`${what} '${f}' is nested more than ${MAX_NESTING_DEPTH} levels deep`);
      }
      try {
        if (files.length === 1) kc.loadFromFile(files[0]);
        else kc.loadFromDefault();
      } catch (e) {
        throw new CliUsageError(`${what} '${files.join(delimiter)}' could not be loaded: ${oneLine((e as Error).message, 200)}`);
      }
    }
  } catch (e) {
    if (e instanceof CliUsageError) throw e;
    throw new CliUsageError(`kubeconfig could not be loaded: ${oneLine((e as Error).message, 200)}`);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new CliUsageError(`kubeconfig${path ? ` '${path}'` : ''} has no current cluster`);
  try {
    const u = new URL(cluster.server);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error();
  } catch {
    throw new CliUsageError(`kubeconfig${path ? ` '${path}'` : ''}: cluster '${cluster.name}' has no valid server URL`);
  }
  return kc;
}
