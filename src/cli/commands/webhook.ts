import type { Command } from 'commander';
import { CliUsageError, type CommandContext } from '../context.js';
import { FILE_CAPS, oneLine, readUserFile } from '../files.js';
import { loadKubeConfig } from '../kubeconfig.js';
import { DEFAULT_ADMISSION_CONFIG, type AdmissionConfig } from '../../k8s/admission/engine.js';
import { loadPolicies, loadProfiles, parseNamespaces, type NamedText } from '../../k8s/admission/inputs.js';
import { WebhookServer, type WebhookLogger } from '../../k8s/admission/server.js';
import { StaticSources } from '../../k8s/admission/static-sources.js';
import { KubeSources } from '../../k8s/admission/kube-sources.js';
import type { AdmissionSources } from '../../k8s/admission/server.js';
import { K8sInputError } from '../../k8s/errors.js';
import { addImageSourceOptions, type ImageSourceFlags } from '../image-flags.js';

interface WebhookFlags extends ImageSourceFlags {
  imageCacheEntries: string;
  imageCacheTtlSeconds: string;
  imageDeadlineMs: string;
  cert: string;
  key: string;
  host: string;
  port: string;
  policy: string[];
  profiles: string[];
  namespaces: string[];
  epcResource: string;
  epcDefaultMib: string;
  quoteSocketDir: string;
  maxBodyBytes: string;
  fromCluster?: boolean;
  kubeconfig?: string;
}

function int(v: string, flag: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new CliUsageError(`${flag} must be an integer in ${min}..${max} (got '${v}')`);
  return n;
}

async function texts(files: string[], what: string): Promise<NamedText[]> {
  return Promise.all(files.map(async (f) => ({ name: f, text: Buffer.from(await readUserFile(f, what)).toString('utf8') })));
}

/** JSON lines on stderr (what log collectors expect from a Deployment). */
function jsonLogger(ctx: CommandContext): WebhookLogger {
  const line = (level: string) => (obj: object, msg: string) => ctx.io.err(`${JSON.stringify({ level, time: new Date().toISOString(), msg, ...obj })}\n`);
  return { info: line('info'), warn: line('warn'), error: line('error') };
}

export function registerWebhook(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('webhook')
    .description('serve the isolation-policy admission webhook (HTTPS, AdmissionReview v1: /mutate-v1-pod, /validate-v1-pod)')
    .requiredOption('--cert <file>', 'serving certificate (PEM); reloaded when the file changes')
    .requiredOption('--key <file>', 'serving key (PEM); reloaded when the file changes')
    .option('--host <addr>', 'listen address', '0.0.0.0')
    .option('--port <n>', 'listen port', '8443')
    .option('--policy <file...>', 'IsolationPolicy manifests', [])
    .option('--profiles <file...>', 'RuntimeProfile manifests (override built-ins by name)', [])
    .option('--namespaces <file...>', 'Namespace manifests whose labels the selectors see', [])
    .option('--epc-resource <name>', 'extended resource carrying SGX EPC', DEFAULT_ADMISSION_CONFIG.epcResourceName)
    .option('--epc-default-mib <n>', 'EPC per enclave container without a coffer.dev/epc-mib annotation', String(DEFAULT_ADMISSION_CONFIG.defaultEpcMiB))
    .option('--quote-socket-dir <path>', 'host directory of the quote helper socket', DEFAULT_ADMISSION_CONFIG.quoteHelperHostPath)
    .option('--max-body-bytes <n>', 'largest AdmissionReview accepted', String(3 * 1024 * 1024))
    .option('--from-cluster', 'read IsolationPolicies, RuntimeProfiles and Namespace labels from the API server (informers)')
    .option('--kubeconfig <file>', 'with --from-cluster: kubeconfig to use (default: in-cluster service account or $KUBECONFIG)')
    .option('--node-trust-writer <username...>', 'who may change node trust labels/annotations/taints (the controller\'s service account user)', [])
    .option('--node-agent <username...>', 'users limited to discovery labels on their own node (the agent\'s service account user)', [])
    .option('--image-cache-entries <n>', 'verified images kept (LRU) for policies with spec.images', '4096')
    .option('--image-cache-ttl-seconds <n>', 'how long a verified image stays trusted without re-checking the registry', '300')
    .option('--image-deadline-ms <n>', 'deny images whose verification takes longer (keep below the webhook timeoutSeconds)', '4000');
  addImageSourceOptions(cmd)
    .action(async (flags: WebhookFlags & { nodeTrustWriter: string[]; nodeAgent: string[] }) => {
      const config: AdmissionConfig = {
        ...DEFAULT_ADMISSION_CONFIG,
        epcResourceName: flags.epcResource,
        defaultEpcMiB: int(flags.epcDefaultMib, '--epc-default-mib', 1, DEFAULT_ADMISSION_CONFIG.maxEpcMiB),
        quoteHelperHostPath: flags.quoteSocketDir,
      };
      if (!flags.quoteSocketDir.startsWith('/')) throw new CliUsageError('--quote-socket-dir must be an absolute path');
      const logger = jsonLogger(ctx);
      if (flags.fromCluster && (flags.policy.length > 0 || flags.namespaces.length > 0)) {
        throw new CliUsageError('--from-cluster reads policies and namespaces from the API server; drop --policy/--namespaces');
      }
      let sources: AdmissionSources;
      let kube: KubeSources | undefined;
      try {
        if (flags.fromCluster) {
          const kc = await loadKubeConfig(flags.kubeconfig);
          sources = kube = new KubeSources(kc, logger);
        } else sources = new StaticSources(
          loadPolicies(await texts(flags.policy, 'policy')),
          loadProfiles(await texts(flags.profiles, 'profiles')),
          (await texts(flags.namespaces, 'namespaces')).flatMap((t) => parseNamespaces(t.text, t.name)),
        );
      } catch (e) {
        if (e instanceof K8sInputError) throw new CliUsageError(oneLine(e.message));
        throw e;
      }
      await readUserFile(flags.cert, '--cert', FILE_CAPS.certificate);
      await readUserFile(flags.key, '--key', FILE_CAPS.key);
      const [{ buildImageSource }, { ImageVerifier }] = await Promise.all([import('../image-source.js'), import('../../images/verifier.js')]);
      const server = new WebhookServer({
        certFile: flags.cert,
        keyFile: flags.key,
        host: flags.host,
        port: int(flags.port, '--port', 0, 65535),
        maxBodyBytes: int(flags.maxBodyBytes, '--max-body-bytes', 1024, 64 * 1024 * 1024),
        sources,
        config,
        logger,
        nodeGuard: { trustWriters: flags.nodeTrustWriter, agents: flags.nodeAgent },
        imageDeadlineMs: int(flags.imageDeadlineMs, '--image-deadline-ms', 100, 29_000),
        images: new ImageVerifier({
          ...(await buildImageSource(flags)),
          cache: { maxEntries: int(flags.imageCacheEntries, '--image-cache-entries', 1, 1_000_000), ttlMs: 1000 * int(flags.imageCacheTtlSeconds, '--image-cache-ttl-seconds', 1, 86_400) },
        }),
      });
      try {
        await server.start();
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        const why = err.code === 'EADDRINUSE' ? 'address already in use' : err.code === 'ENOTFOUND' ? 'host not found' : oneLine(err.message, 200);
        throw new CliUsageError(`cannot start the webhook (--cert '${flags.cert}', --key '${flags.key}', --host ${flags.host} --port ${flags.port}): ${why}`);
      }
      ctx.keepRunning();
      // Informers sync in the background: /readyz stays 503 (and admission answers 503) until they have listed.
      kube?.start().catch((e) => logger.warn({ err: (e as Error).message }, 'initial list failed; retrying'));
      const stop = () => void Promise.all([server.close(), kube?.stop()]);
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
}
