import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CliUsageError, type CommandContext } from '../context.js';
import { loadKubeConfig } from '../kubeconfig.js';
import { parseDuration } from '../duration.js';
import { CONTROLLERS } from '../../k8s/controllers/index.js';
import type { RunningController } from '../../k8s/controllers/types.js';

interface ControllerFlags {
  kubeconfig?: string;
  controllers: string;
  autonomousNamespaces?: string;
  namespace?: string;
  webhookService: string;
  webhookSecret: string;
  webhookConfiguration: string;
  certManager: string;
  certValidity: string;
  builtinProfiles: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SA_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

function bool(flag: string, v: string): boolean {
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new CliUsageError(`${flag} '${v}' must be true or false`);
}

function name(flag: string, v: string, re: RegExp): string {
  if (!re.test(v) || v.length > 253) throw new CliUsageError(`${flag} '${v}' is not a valid Kubernetes name`);
  return v;
}

/** Coffer's namespace: the flag, else the pod's own (in-cluster service account), else the install default. */
function ownNamespace(flag: string | undefined): string {
  if (flag !== undefined) return name('--namespace', flag, DNS_LABEL);
  try {
    return readFileSync(SA_NAMESPACE, 'utf8').trim();
  } catch {
    return 'coffer-system';
  }
}

export function registerController(program: Command, ctx: CommandContext): void {
  program
    .command('controller')
    .description(`Coffer's Kubernetes controllers (${CONTROLLERS.map((c) => c.name).join(', ')})`)
    .option('--kubeconfig <file>', 'kubeconfig (default: in-cluster service account, then ~/.kube/config)')
    .option('--controllers <list>', `comma-separated controllers to run: ${CONTROLLERS.map((c) => `${c.name} (${c.description})`).join('; ')}`, CONTROLLERS.map((c) => c.name).join(','))
    .option('--autonomous-namespaces <list>', 'autonomy: namespaces whose pods are autonomous on every node (in addition to IsolationPolicies with autonomy: true)')
    .option('--namespace <ns>', "Coffer's namespace, where the webhook Service and Secret live (default: this pod's namespace, else coffer-system)")
    .option('--webhook-service <name>', 'webhook-ca: the webhook Service (the certificate covers <name>.<namespace>.svc)', 'coffer-webhook')
    .option('--webhook-secret <name>', 'webhook-ca: the kubernetes.io/tls Secret the webhook mounts', 'coffer-webhook-tls')
    .option('--webhook-configuration <name>', 'webhook-ca: the Mutating- and ValidatingWebhookConfiguration whose caBundle is kept', 'coffer-webhook')
    .option('--cert-manager <bool>', 'webhook-ca: true when cert-manager issues the certificate and injects the caBundle (the controller then stands aside)', 'false')
    .option('--cert-validity <duration>', 'webhook-ca: lifetime of the self-signed CA and serving certificate; renewed with a third left', '8760h')
    .option('--builtin-profiles <bool>', "runtimeclass: also install the built-in RuntimeProfiles' classes", 'true')
    .action(async (flags: ControllerFlags) => {
      const wanted = flags.controllers.split(',').map((s) => s.trim()).filter(Boolean);
      const unknown = wanted.filter((w) => !CONTROLLERS.some((c) => c.name === w));
      if (unknown.length) throw new CliUsageError(`--controllers: unknown controller(s) ${unknown.join(', ')}; known: ${CONTROLLERS.map((c) => c.name).join(', ')}`);
      if (wanted.length === 0) throw new CliUsageError('--controllers: name at least one controller');
      const certManager = bool('--cert-manager', flags.certManager);
      const builtinProfiles = bool('--builtin-profiles', flags.builtinProfiles);
      const validityMs = parseDuration('--cert-validity', flags.certValidity, 10 * 365 * 86_400_000);
      if (validityMs < 3_600_000) throw new CliUsageError('--cert-validity must be at least 1h');
      const webhook = {
        namespace: ownNamespace(flags.namespace),
        service: name('--webhook-service', flags.webhookService, DNS_LABEL),
        secret: name('--webhook-secret', flags.webhookSecret, DNS_SUBDOMAIN),
        configuration: name('--webhook-configuration', flags.webhookConfiguration, DNS_SUBDOMAIN),
        certManager,
        validityMs,
      };
      const kc = await loadKubeConfig(flags.kubeconfig);
      const log = (event: string, detail: Record<string, unknown>) => ctx.io.err(JSON.stringify({ time: new Date().toISOString(), component: 'controller', event, ...detail }) + '\n');
      const options: Record<string, Record<string, unknown>> = {
        autonomy: { autonomousNamespaces: flags.autonomousNamespaces?.split(',').map((s) => s.trim()).filter(Boolean) ?? [] },
        runtimeclass: { builtinProfiles },
        'webhook-ca': webhook,
      };
      const running: RunningController[] = [];
      try {
        for (const entry of CONTROLLERS.filter((c) => wanted.includes(c.name))) {
          const factory = await entry.load();
          running.push(await factory.start({ kubeConfig: kc, log }, options[entry.name] ?? {}));
        }
      } catch (e) {
        await Promise.all(running.map((r) => r.stop()));
        throw e;
      }
      ctx.io.out(JSON.stringify({ event: 'running', controllers: running.map((r) => r.name) }) + '\n');
      const shutdown = () => void Promise.all(running.map((r) => r.stop())).then(() => process.exit(0));
      process.once('SIGTERM', shutdown);
      process.once('SIGINT', shutdown);
      ctx.keepRunning();
    });
}
