/**
 * The webhook CA controller (self-signed mode): keeps the webhook Secret holding a valid serving certificate for
 * the webhook Service and the caBundle of Coffer's Mutating- and ValidatingWebhookConfiguration in sync with it,
 * rotating before expiry. Informers watch only the three named objects (field selector metadata.name=…, which is
 * also what lets RBAC limit list/watch by resourceNames). One work-queue key; the pure part is
 * webhook-ca-reconcile.ts. With cert-manager, its cainjector owns the caBundle and this controller stands aside.
 */
import { KubeApiError, KubeRest } from '../kube-rest.js';
import { getOrUndefined, withConflictRetry } from './conflict.js';
import { makeCachedInformer, startAll, type Obj } from './informers.js';
import { CONFIG_RESOURCES, reconcileWebhookCa, type ConfigResource, type WebhookCaAction, type WebhookCaDesired } from './webhook-ca-reconcile.js';
import { defaultTiming, issueWebhookCerts, serviceDnsNames } from './webhook-certs.js';
import type { ControllerContext, ControllerFactory, RunningController } from './types.js';
import { WorkQueue } from './work-queue.js';

export interface WebhookCaOptions {
  namespace: string;
  service: string;
  secret: string;
  configuration: string;
  /**
   * Also keeps one more kubernetes.io/tls Secret valid for Coffer's other Services (attestation, key broker, the
   * node-trust report endpoint): the same issue/renew rules, one certificate naming every Service, no caBundle to
   * keep (their clients read the Secret's ca.crt).
   */
  serving?: { secret: string; services: string[] };
  certManager?: boolean;
  /** Certificate lifetime (default 365 days); renewal when a third is left. */
  validityMs?: number;
  now?: () => number;
}

const KEY = 'webhook-ca';
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

export const webhookCaController: ControllerFactory<WebhookCaOptions> = {
  name: 'webhook-ca',
  description: 'self-signed mode: issues the webhook serving certificate into its Secret, keeps the webhook configurations\' caBundle in sync, rotates before expiry',
  async start(ctx: ControllerContext, o: WebhookCaOptions): Promise<RunningController> {
    if (o.certManager) {
      ctx.log('controller_started', { controller: 'webhook-ca', mode: 'cert-manager', message: "cert-manager issues the certificate and its cainjector fills the caBundle; nothing to do" });
      return { name: 'webhook-ca', stop: async () => {} };
    }
    const main = await startOne(ctx, o, o.secret, serviceDnsNames(o.service, o.namespace), o.configuration);
    let serving: RunningController | undefined;
    try {
      if (o.serving) serving = await startOne(ctx, o, o.serving.secret, o.serving.services.flatMap((s) => serviceDnsNames(s, o.namespace)), undefined);
    } catch (e) {
      await main.stop();
      throw e;
    }
    return {
      name: 'webhook-ca',
      settled: async () => {
        await main.settled?.();
        await serving?.settled?.();
      },
      async stop() {
        await Promise.all([main.stop(), serving?.stop()]);
      },
    };
  },
};

/** One Secret kept valid for `dnsNames`; with `configuration`, that configuration's caBundle follows it. */
async function startOne(ctx: ControllerContext, o: WebhookCaOptions, secretName: string, dnsNames: string[], configuration: string | undefined): Promise<RunningController> {
  const now = o.now ?? Date.now;
  const desired: WebhookCaDesired = {
    namespace: o.namespace,
    service: o.service,
    secretName,
    dnsNames,
    timing: defaultTiming(o.validityMs),
  };
  const rest = await KubeRest.fromKubeConfig(ctx.kubeConfig, 'coffer-controller/webhook-ca');
  const secretsPath = `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/secrets`;
  const secretPath = `${secretsPath}/${encodeURIComponent(secretName)}`;
  const configPath = (r: ConfigResource) => `/apis/admissionregistration.k8s.io/v1/${r}`;
  const secretInf = makeCachedInformer(ctx.kubeConfig, rest, ctx, { name: 'secret', path: secretsPath, fieldSelector: `metadata.name=${secretName}` });
  const configInf = Object.fromEntries(
    configuration === undefined ? [] : CONFIG_RESOURCES.map((r) => [r, makeCachedInformer(ctx.kubeConfig, rest, ctx, { name: r, path: configPath(r), fieldSelector: `metadata.name=${configuration}` })]),
  ) as Partial<Record<ConfigResource, ReturnType<typeof makeCachedInformer>>>;

  const apply = async (a: WebhookCaAction) => {
    if (a.kind === 'issueSecret') {
      const c = await issueWebhookCerts(desired.dnsNames, now(), desired.timing);
      const ca = [c.caPem, ...a.keepCas].join('');
      const secret: Obj = {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: secretName, namespace: o.namespace, labels: { 'app.kubernetes.io/managed-by': 'coffer', 'app.kubernetes.io/part-of': 'coffer' } },
        type: 'kubernetes.io/tls',
        data: { 'tls.crt': b64(c.certPem), 'tls.key': b64(c.keyPem), 'ca.crt': b64(ca) },
      };
      if (a.existing && !a.existing.replace) {
        await rest.request('PUT', secretPath, { ...secret, metadata: { ...secret.metadata, resourceVersion: a.existing.resourceVersion } });
      } else {
        if (a.existing) await rest.request('DELETE', secretPath, { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid: a.existing.uid, resourceVersion: a.existing.resourceVersion } });
        await rest.request('POST', secretsPath, secret);
      }
      ctx.log('webhook_certificate_issued', { secret: `${o.namespace}/${secretName}`, reason: a.reason, dnsNames: desired.dnsNames, previousCas: a.keepCas.length });
    } else if (a.kind === 'pruneBundle') {
      await rest.request('PATCH', secretPath, { metadata: { resourceVersion: a.resourceVersion }, data: { 'ca.crt': b64(a.ca) } }, 'application/merge-patch+json');
      ctx.log('webhook_ca_pruned', { secret: `${o.namespace}/${secretName}` });
    } else {
      // PUT with the observed resourceVersion: a concurrent edit of the configuration means 409 and a fresh read.
      await rest.request('PUT', `${configPath(a.resource)}/${encodeURIComponent(a.name)}`, a.object);
      ctx.log('webhook_cabundle_updated', { resource: a.resource, name: a.name, webhooks: a.webhooks });
    }
  };

  const queue = new WorkQueue(
    () =>
      withConflictRetry(
        async (fresh) => {
          const read = (path: string, inf: ReturnType<typeof makeCachedInformer>, name: string, ns?: string) => (fresh ? getOrUndefined(() => rest.request<Obj>('GET', path)) : Promise.resolve(inf.get(name, ns)));
          const secret = await read(secretPath, secretInf, secretName, o.namespace);
          const configs: Partial<Record<ConfigResource, Obj>> = {};
          if (configuration !== undefined) for (const r of CONFIG_RESOURCES) configs[r] = await read(`${configPath(r)}/${encodeURIComponent(configuration)}`, configInf[r]!, configuration);
          const plan = reconcileWebhookCa(desired, { secret, configs, now: now() });
          for (const a of plan.actions) {
            try {
              await apply(a);
            } catch (e) {
              // Created (409 AlreadyExists) or deleted (404) meanwhile: like a conflict, the next pass reads afresh.
              if (e instanceof KubeApiError && e.code === 404) throw new KubeApiError(409, 'Conflict', e.message);
              throw e;
            }
          }
          if (plan.requeueAfterMs !== undefined) queue.addAfter(KEY, plan.requeueAfterMs);
        },
        (attempt, err) => ctx.log('webhook_ca_conflict', { attempt, error: err.message }),
      ),
    (_key, err, attempt) => ctx.log('webhook_ca_retry', { attempt, error: String((err as Error)?.message ?? err) }),
  );
  let synced = false;
  const informers = [secretInf, ...Object.values(configInf).filter((i) => i !== undefined)];
  for (const inf of informers) for (const verb of ['add', 'update', 'delete'] as const) inf.on(verb, () => synced && queue.add(KEY));
  const cancel = await startAll(informers, () => {
    synced = true;
    queue.add(KEY);
  });
  ctx.log('controller_started', { controller: 'webhook-ca', mode: 'self-signed', secret: `${o.namespace}/${secretName}`, configuration: configuration ?? null, dnsNames: desired.dnsNames });
  return {
    name: 'webhook-ca',
    settled: () => queue.settled(),
    async stop() {
      cancel();
      queue.stop();
      await Promise.all(informers.map((i) => i.stop()));
      rest.close();
    },
  };
}
