import { CoreV1Api, CustomObjectsApi, KubeConfig, makeInformer, type KubernetesObject, type Informer, type ObjectCache } from '@kubernetes/client-node';
import { builtinRuntimeProfiles } from '../crds/builtin-profiles.js';
import { checkIsolationPolicy, checkRuntimeProfile } from '../crds/load.js';
import { COFFER_GROUP, COFFER_VERSION, type IsolationPolicy, type RuntimeProfile } from '../crds/types.js';
import { namespaceLabels } from './inputs.js';
import type { AdmissionSources, WebhookLogger } from './server.js';

type Cached<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

/**
 * The webhook's view of the cluster: informers (list, then watch from the list's resourceVersion; the client
 * relists on 410 Gone) over Namespaces, IsolationPolicies and RuntimeProfiles. Derived policy and profile sets are
 * rebuilt on change, not per request. Not ready until every informer has listed once; until then — and for a
 * namespace it has not seen — the webhook answers 503 so the configuration's failurePolicy decides.
 */
export class KubeSources implements AdmissionSources {
  private readonly namespaces: Cached<KubernetesObject>;
  private readonly policyInformer: Cached<KubernetesObject>;
  private readonly profileInformer: Cached<KubernetesObject>;
  private policyList: IsolationPolicy[] = [];
  private profileSet = new Map<string, RuntimeProfile>();
  private synced = new Set<string>();
  private stopped = false;

  constructor(kc: KubeConfig, private readonly log?: WebhookLogger) {
    const core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    // Synced = its list succeeded. informer.start() resolves even when the list fails (the error goes to the
    // 'error' callbacks), so readiness must come from the list itself, or an empty cache would admit everything.
    const listed = <T>(name: string, list: () => Promise<T>) => async () => {
      const r = await list();
      this.synced.add(name);
      return r as never;
    };
    const listCustom = (plural: string) => () => custom.listClusterCustomObject({ group: COFFER_GROUP, version: COFFER_VERSION, plural });
    this.namespaces = makeInformer(kc, '/api/v1/namespaces', listed('namespaces', () => core.listNamespace()));
    this.policyInformer = makeInformer(kc, `/apis/${COFFER_GROUP}/${COFFER_VERSION}/isolationpolicies`, listed('policies', listCustom('isolationpolicies')));
    this.profileInformer = makeInformer(kc, `/apis/${COFFER_GROUP}/${COFFER_VERSION}/runtimeprofiles`, listed('profiles', listCustom('runtimeprofiles')));
    for (const verb of ['add', 'update', 'delete'] as const) {
      this.policyInformer.on(verb, () => this.rebuildPolicies());
      this.profileInformer.on(verb, () => this.rebuildProfiles());
    }
    this.rebuildProfiles();
    for (const [name, inf] of [['namespaces', this.namespaces], ['policies', this.policyInformer], ['profiles', this.profileInformer]] as const) {
      inf.on('error', (err) => {
        this.log?.warn({ informer: name, err: String((err as Error)?.message ?? err) }, 'watch failed; restarting');
        setTimeout(() => {
          if (!this.stopped) void inf.start().catch(() => undefined);
        }, 1000).unref();
      });
    }
  }

  /** Starts the informers; resolves once each has tried its first list (check ready() for the outcome). */
  async start(): Promise<void> {
    await Promise.all([this.namespaces.start(), this.policyInformer.start(), this.profileInformer.start()]);
    this.rebuildPolicies();
    this.rebuildProfiles();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([this.namespaces.stop(), this.policyInformer.stop(), this.profileInformer.stop()]);
  }

  ready(): boolean {
    return this.synced.size === 3;
  }

  policies(): readonly IsolationPolicy[] {
    return this.policyList;
  }

  profiles(): ReadonlyMap<string, RuntimeProfile> {
    return this.profileSet;
  }

  namespaceLabels(name: string): Record<string, string> | undefined {
    if (!this.synced.has('namespaces')) return undefined;
    const ns = this.namespaces.get(name);
    return ns ? namespaceLabels(ns as { metadata?: { name?: string; labels?: Record<string, string> } }, name) : undefined;
  }

  /** Objects the API server accepted but Coffer's loader rejects (e.g. written before a schema change) are skipped, loudly. */
  private rebuildPolicies(): void {
    const out: IsolationPolicy[] = [];
    for (const o of this.policyInformer.list()) {
      try {
        out.push(checkIsolationPolicy(o));
      } catch (e) {
        this.log?.warn({ policy: o.metadata?.name, err: (e as Error).message }, 'ignoring invalid IsolationPolicy');
      }
    }
    this.policyList = out.sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  }

  private rebuildProfiles(): void {
    const map = new Map(builtinRuntimeProfiles().map((p) => [p.metadata.name, p]));
    for (const o of this.profileInformer.list()) {
      try {
        const p = checkRuntimeProfile(o);
        map.set(p.metadata.name, p);
      } catch (e) {
        this.log?.warn({ profile: o.metadata?.name, err: (e as Error).message }, 'ignoring invalid RuntimeProfile');
      }
    }
    this.profileSet = map;
  }
}
