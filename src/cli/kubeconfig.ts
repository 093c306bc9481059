import type { KubeConfig } from '@kubernetes/client-node';
import { CliUsageError } from './context.js';

/**
 * `--kubeconfig FILE` or the default chain (KUBECONFIG, ~/.kube/config, in-cluster service account). A file that
 * cannot be loaded, or one without a current cluster, is a usage error (exit 2). The client library is imported
 * here, lazily, so commands that never talk to Kubernetes do not pay for loading it.
 */
export async function loadKubeConfig(path: string | undefined): Promise<KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  try {
    if (path) kc.loadFromFile(path);
    else kc.loadFromDefault();
  } catch (e) {
    throw new CliUsageError(`kubeconfig could not be loaded: ${(e as Error).message}`);
  }
  if (!kc.getCurrentCluster()) throw new CliUsageError('kubeconfig has no current cluster');
  return kc;
}
