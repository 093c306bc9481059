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
      // Several KUBECONFIG files: the first one that loads wins (client-node merges none either without a file list).
      const what = path ? '--kubeconfig' : 'kubeconfig';
      const text = readUserFileSync(files[0], what, FILE_CAPS.kubeconfig).toString('utf8');
      if (yamlDepth(text, MAX_NESTING_DEPTH) > MAX_NESTING_DEPTH) throw new CliUsageError(`${what} '${files[0]}' is nested more than ${MAX_NESTING_DEPTH} levels deep`);
      try {
        kc.loadFromString(text);
      } catch (e) {
        throw new CliUsageError(`${what} '${files[0]}' could not be loaded: ${oneLine((e as Error).message, 200)}`);
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
