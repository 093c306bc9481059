/**
 * Webhook serving certificate and CA bundle, the pure part: (the webhook Secret, the Mutating- and
 * ValidatingWebhookConfiguration, now) → actions.
 * - The Secret (type kubernetes.io/tls: tls.crt, tls.key, plus ca.crt = the trust bundle) is reissued when it is
 *   missing, unusable, for other names, or due for renewal (checkServingSecret); a Secret of another type is
 *   replaced (type is immutable). Expired previous CAs are pruned from ca.crt.
 * - Every webhook entry of the two configurations whose clientConfig points at our Service gets
 *   caBundle = base64(ca.crt). Entries for other services are left alone. Nothing is written to the
 *   configurations while the Secret itself needs work (the next pass, triggered by the Secret event, does it).
 * Returns when to look again (the renewal time) so rotation happens without any event.
 */
import { checkServingSecret, validCas, type CertTiming } from './webhook-certs.js';

type Obj = Record<string, any>;

export const CONFIG_RESOURCES = ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations'] as const;
export type ConfigResource = (typeof CONFIG_RESOURCES)[number];

export interface WebhookCaDesired {
  namespace: string;
  service: string;
  secretName: string;
  dnsNames: string[];
  timing: CertTiming;
}

export interface WebhookCaObserved {
  secret?: Obj;
  configs: Partial<Record<ConfigResource, Obj>>;
  now: number;
}

export type WebhookCaAction =
  | { kind: 'issueSecret'; reason: string; keepCas: string[]; existing?: { resourceVersion: string; uid: string; replace: boolean } }
  | { kind: 'pruneBundle'; resourceVersion: string; ca: string }
  | { kind: 'setCaBundle'; resource: ConfigResource; name: string; object: Obj; webhooks: string[] };

export interface WebhookCaPlan {
  actions: WebhookCaAction[];
  /** Reconcile again after this long (certificate renewal), if set. */
  requeueAfterMs?: number;
}

export function secretFiles(secret: Obj | undefined): { cert?: string; key?: string; ca?: string } {
  const d = secret?.data ?? {};
  const dec = (k: string) => (typeof d[k] === 'string' ? Buffer.from(d[k], 'base64').toString('utf8') : undefined);
  return { cert: dec('tls.crt'), key: dec('tls.key'), ca: dec('ca.crt') };
}

export function reconcileWebhookCa(desired: WebhookCaDesired, observed: WebhookCaObserved): WebhookCaPlan {
  const { secret, now } = observed;
  const files = secretFiles(secret);
  const wrongType = secret !== undefined && secret.type !== 'kubernetes.io/tls';
  const verdict = wrongType ? ({ ok: false, reason: `Secret type is ${secret.type}, not kubernetes.io/tls` } as const) : checkServingSecret(files, desired.dnsNames, now, desired.timing);
  if (!verdict.ok) {
    const action: WebhookCaAction = { kind: 'issueSecret', reason: secret ? verdict.reason : 'Secret missing', keepCas: validCas(files.ca, now) };
    if (secret) action.existing = { resourceVersion: secret.metadata.resourceVersion, uid: secret.metadata.uid, replace: wrongType };
    return { actions: [action] };
  }
  const actions: WebhookCaAction[] = [];
  let bundle = files.ca!;
  if (verdict.expiredCas > 0) {
    // The current CA first, then the previous ones that are still valid.
    const [current] = validCas(bundle, now, 1);
    bundle = [current, ...validCas(bundle, now).filter((c) => c !== current)].join('');
    actions.push({ kind: 'pruneBundle', resourceVersion: secret!.metadata.resourceVersion, ca: bundle });
  }
  const caBundle = Buffer.from(bundle, 'utf8').toString('base64');
  for (const resource of CONFIG_RESOURCES) {
    const cfg = observed.configs[resource];
    if (!cfg) continue;
    const changed: string[] = [];
    const webhooks = (cfg.webhooks ?? []).map((w: Obj) => {
      const svc = w.clientConfig?.service;
      if (!svc || svc.name !== desired.service || svc.namespace !== desired.namespace || w.clientConfig.caBundle === caBundle) return w;
      changed.push(w.name);
      return { ...w, clientConfig: { ...w.clientConfig, caBundle } };
    });
    if (changed.length) actions.push({ kind: 'setCaBundle', resource, name: cfg.metadata.name, object: { ...cfg, webhooks }, webhooks: changed });
  }
  return { actions, requeueAfterMs: Math.max(1000, verdict.renewAt - now) };
}
