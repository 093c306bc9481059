import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CliUsageError, type CommandContext } from '../context.js';
import { loadKubeConfig } from '../kubeconfig.js';
import { parseDuration } from '../duration.js';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { CONTROLLERS } from '../../k8s/controllers/index.js';
import { KubeRest } from '../../k8s/kube-rest.js';
import { loadAuditKey } from '../../k8s/controllers/node-trust-audit.js';
import { FILE_CAPS, readUserFileSync } from '../files.js';
import type { RunningController } from '../../k8s/controllers/types.js';

interface ControllerFlags {
  kubeconfig?: string;
  controllers: string;
  autonomousNamespaces?: string;
  namespace?: string;
  webhookService: string;
  webhookSecret: string;
  webhookConfiguration: string;
  servingSecret?: string;
  servingServices?: string;
  certManager: string;
  certValidity: string;
  builtinProfiles: string;
  attestationUrl?: string;
  attestationCa?: string;
  tokenIssuer?: string;
  tokenAudience: string;
  nodeTrustListen: string;
  nodeTrustTlsCert?: string;
  nodeTrustTlsKey?: string;
  nodeTrustAuditKey?: string;
  leaderElect: string;
  leaderElectionId: string;
  leaseDuration: string;
  renewDeadline: string;
  retryPeriod: string;
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
    .option('--controllers <list>', `comma-separated controllers to run (default: all; node-trust only with --attestation-url): ${CONTROLLERS.map((c) => `${c.name} (${c.description})`).join('; ')}`)
    .option('--autonomous-namespaces <list>', 'autonomy: namespaces whose pods are autonomous on every node (in addition to IsolationPolicies with autonomy: true)')
    .option('--namespace <ns>', "Coffer's namespace, where the webhook Service and Secret live (default: this pod's namespace, else coffer-system)")
    .option('--webhook-service <name>', 'webhook-ca: the webhook Service (the certificate covers <name>.<namespace>.svc)', 'coffer-webhook')
    .option('--webhook-secret <name>', 'webhook-ca: the kubernetes.io/tls Secret the webhook mounts', 'coffer-webhook-tls')
    .option('--webhook-configuration <name>', 'webhook-ca: the Mutating- and ValidatingWebhookConfiguration whose caBundle is kept', 'coffer-webhook')
    .option('--serving-secret <name>', 'webhook-ca: also keep this kubernetes.io/tls Secret valid for --serving-services (attestation, key broker, node-trust reports; their clients trust its ca.crt)')
    .option('--serving-services <list>', 'webhook-ca: comma-separated Services in --namespace the --serving-secret certificate names (<name>.<namespace>.svc[.cluster.local])')
    .option('--cert-manager <bool>', 'webhook-ca: true when cert-manager issues the certificate and injects the caBundle (the controller then stands aside)', 'false')
    .option('--cert-validity <duration>', 'webhook-ca: lifetime of the self-signed CA and serving certificate; renewed with a third left', '8760h')
    .option('--builtin-profiles <bool>', "runtimeclass: also install the built-in RuntimeProfiles' classes", 'true')
    .option('--attestation-url <url>', 'node-trust: base URL of the attestation service (its JWKS verifies the tokens agents post)')
    .option('--attestation-ca <file>', "node-trust: PEM CA bundle for the attestation service's TLS")
    .option('--token-issuer <iss>', "node-trust: expected token issuer (default: --attestation-url)")
    .option('--token-audience <aud>', 'node-trust: expected token audience', 'coffer-node-trust')
    .option('--node-trust-listen <host:port>', 'node-trust: where agents post reports (POST /v1/node-trust/reports)', '0.0.0.0:9444')
    .option('--node-trust-tls-cert <file>', 'node-trust: serve reports over TLS with this certificate (with --node-trust-tls-key)')
    .option('--node-trust-tls-key <file>', 'node-trust: TLS private key')
    .option('--node-trust-audit-key <file>', "node-trust: PEM private key (Ed25519 or P-256) the attestation service trusts (its --node-trust-audit-key): every trust transition is appended to the service's audit log")
    .option('--leader-elect <bool>', 'run the controllers only while holding a coordination.k8s.io Lease (set true when replicas > 1)', 'false')
    .option('--leader-election-id <name>', 'the Lease name (in --namespace)', 'coffer-controller')
    .option('--lease-duration <duration>', 'leader election: how long a standby waits before taking over an unrenewed lease', '15s')
    .option('--renew-deadline <duration>', 'leader election: how long the leader retries renewing before it gives up leading', '10s')
    .option('--retry-period <duration>', 'leader election: interval between attempts', '2s')
    .action(async (flags: ControllerFlags) => {
      flags.controllers ??= CONTROLLERS.map((c) => c.name).filter((n) => n !== 'node-trust' || flags.attestationUrl !== undefined).join(',');
      const wanted = flags.controllers.split(',').map((s) => s.trim()).filter(Boolean);
      const unknown = wanted.filter((w) => !CONTROLLERS.some((c) => c.name === w));
      if (unknown.length) throw new CliUsageError(`--controllers: unknown controller(s) ${unknown.join(', ')}; known: ${CONTROLLERS.map((c) => c.name).join(', ')}`);
      if (wanted.length === 0) throw new CliUsageError('--controllers: name at least one controller');
      const certManager = bool('--cert-manager', flags.certManager);
      const builtinProfiles = bool('--builtin-profiles', flags.builtinProfiles);
      const validityMs = parseDuration('--cert-validity', flags.certValidity, 10 * 365 * 86_400_000);
      if (validityMs < 3_600_000) throw new CliUsageError('--cert-validity must be at least 1h');
      if ((flags.servingSecret === undefined) !== (flags.servingServices === undefined)) throw new CliUsageError('--serving-secret and --serving-services go together');
      const serving = flags.servingSecret === undefined ? undefined : {
        secret: name('--serving-secret', flags.servingSecret, DNS_SUBDOMAIN),
        services: flags.servingServices!.split(',').map((s) => s.trim()).filter(Boolean).map((s) => name('--serving-services', s, DNS_LABEL)),
      };
      if (serving && serving.services.length === 0) throw new CliUsageError('--serving-services: name at least one Service');
      const webhook = {
        namespace: ownNamespace(flags.namespace),
        service: name('--webhook-service', flags.webhookService, DNS_LABEL),
        secret: name('--webhook-secret', flags.webhookSecret, DNS_SUBDOMAIN),
        configuration: name('--webhook-configuration', flags.webhookConfiguration, DNS_SUBDOMAIN),
        certManager,
        validityMs,
        ...(serving ? { serving } : {}),
      };
      let nodeTrust: Record<string, unknown> | undefined;
      if (wanted.includes('node-trust')) {
        if (!flags.attestationUrl) throw new CliUsageError('node-trust needs --attestation-url');
        let u: URL;
        try {
          u = new URL(flags.attestationUrl);
        } catch {
          throw new CliUsageError(`--attestation-url '${flags.attestationUrl}' is not a URL`);
        }
        if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new CliUsageError('--attestation-url must be http(s)');
        const m = /^(.*):(\d{1,5})$/.exec(flags.nodeTrustListen);
        if (!m || Number(m[2]) > 65535) throw new CliUsageError(`--node-trust-listen '${flags.nodeTrustListen}' must be host:port`);
        if (!!flags.nodeTrustTlsCert !== !!flags.nodeTrustTlsKey) throw new CliUsageError('--node-trust-tls-cert and --node-trust-tls-key go together');
        let auditKey: Buffer | undefined;
        if (flags.nodeTrustAuditKey !== undefined) {
          auditKey = readUserFileSync(flags.nodeTrustAuditKey, '--node-trust-audit-key', FILE_CAPS.key);
          try {
            loadAuditKey(auditKey);
          } catch (e) {
            throw new CliUsageError(`--node-trust-audit-key '${flags.nodeTrustAuditKey}': ${(e as Error).message}`);
          }
        }
        nodeTrust = {
          ...(auditKey ? { auditKey } : {}),
          attestationUrl: flags.attestationUrl, caFile: flags.attestationCa, issuer: flags.tokenIssuer, audience: flags.tokenAudience,
          host: m[1].replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]), tlsCertFile: flags.nodeTrustTlsCert, tlsKeyFile: flags.nodeTrustTlsKey,
        };
      }
      const leaderElect = bool('--leader-elect', flags.leaderElect);
      const lease = {
        name: name('--leader-election-id', flags.leaderElectionId, DNS_SUBDOMAIN),
        leaseDurationMs: parseDuration('--lease-duration', flags.leaseDuration),
        renewDeadlineMs: parseDuration('--renew-deadline', flags.renewDeadline),
        retryPeriodMs: parseDuration('--retry-period', flags.retryPeriod),
      };
      if (leaderElect && !(lease.leaseDurationMs > lease.renewDeadlineMs && lease.renewDeadlineMs > lease.retryPeriodMs)) {
        throw new CliUsageError('leader election needs --lease-duration > --renew-deadline > --retry-period');
      }
      // client-go's default identity: hostname plus a unique suffix (two processes on one host stay distinct).
      const identity = `${hostname()}_${randomUUID()}`;
      const kc = await loadKubeConfig(flags.kubeconfig);
      const log = (event: string, detail: Record<string, unknown>) => ctx.io.err(JSON.stringify({ time: new Date().toISOString(), component: 'controller', event, ...detail }) + '\n');
      const options: Record<string, Record<string, unknown>> = {
        autonomy: { autonomousNamespaces: flags.autonomousNamespaces?.split(',').map((s) => s.trim()).filter(Boolean) ?? [] },
        runtimeclass: { builtinProfiles },
        'webhook-ca': webhook,
        ...(nodeTrust ? { 'node-trust': { ...nodeTrust, identity } } : {}),
      };
      const startControllers = async (): Promise<RunningController[]> => {
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
        ctx.io.out(JSON.stringify({ event: 'running', controllers: running.map((r) => r.name), ...(leaderElect ? { identity } : {}) }) + '\n');
        return running;
      };
      let stopAll: () => Promise<unknown>;
      if (leaderElect) {
        const { runLeaderElected } = await import('../../k8s/controllers/leader-run.js');
        const rest = await KubeRest.fromKubeConfig(kc, 'coffer-controller/leader-election');
        const run = runLeaderElected(rest, { namespace: webhook.namespace, identity, log, ...lease }, startControllers, () => {
          // As controller-runtime: leadership lost → exit, and let the restarted process campaign afresh.
          log('leader_lost_exit', { identity });
          process.exit(1);
        });
        ctx.io.out(JSON.stringify({ event: 'campaigning', lease: `${webhook.namespace}/${lease.name}`, identity }) + '\n');
        stopAll = () => run.stop();
      } else {
        const running = await startControllers();
        stopAll = () => Promise.all(running.map((r) => r.stop()));
      }
      const shutdown = () => void stopAll().then(() => process.exit(0));
      process.once('SIGTERM', shutdown);
      process.once('SIGINT', shutdown);
      ctx.keepRunning();
    });
}
