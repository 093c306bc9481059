/**
 * The policy-status controller: informers on IsolationPolicies, Namespaces and Pods feed a work queue with two key
 * kinds, `policy/<name>` (its status) and `namespace/<name>` (its coffer.dev/isolation label); the pure part is
 * policy-status-reconcile.ts. Writes carry the observed resourceVersion (merge patches of the status subresource
 * and of the namespace's labels): 409 reruns the pass on a fresh read.
 */
import { KubeRest } from '../kube-rest.js';
import { COFFER_GROUP, COFFER_VERSION, ISOLATION_NS_LABEL, type IsolationPolicy } from '../crds/types.js';
import { getOrUndefined, withConflictRetry } from './conflict.js';
import { makeCachedInformer, startAll, type Obj } from './informers.js';
import { effectivePolicies } from './policies.js';
import { reconcileNamespaceLabel, reconcilePolicyStatus, type PolicyStatusAction } from './policy-status-reconcile.js';
import type { ControllerContext, ControllerFactory, RunningController } from './types.js';
import { WorkQueue } from './work-queue.js';

const POLICIES = `/apis/${COFFER_GROUP}/${COFFER_VERSION}/isolationpolicies`;
const enc = encodeURIComponent;

export const policyStatusController: ControllerFactory<Record<string, never>> = {
  name: 'policy-status',
  description: `reports each IsolationPolicy's matched pods and namespaces in its status; labels every namespace an IsolationPolicy selects ${ISOLATION_NS_LABEL}=<strictest level> (the webhooks fail closed there)`,
  async start(ctx: ControllerContext): Promise<RunningController> {
    const rest = await KubeRest.fromKubeConfig(ctx.kubeConfig, 'coffer-controller/policy-status');
    const policyInf = makeCachedInformer(ctx.kubeConfig, rest, ctx, { name: 'isolationpolicies', path: POLICIES });
    const nsInf = makeCachedInformer(ctx.kubeConfig, rest, ctx, { name: 'namespaces', path: '/api/v1/namespaces' });
    const podInf = makeCachedInformer(ctx.kubeConfig, rest, ctx, { name: 'pods', path: '/api/v1/pods' });
    let policies: IsolationPolicy[] = [];
    const invalidSeen = new Set<string>();
    const rebuild = () => {
      policies = effectivePolicies(policyInf.list(), (name, err) => {
        if (!invalidSeen.has(`${name}:${err.message}`)) ctx.log('isolationpolicy_invalid', { policy: name, error: err.message });
        invalidSeen.add(`${name}:${err.message}`);
      });
    };

    const apply = async (a: PolicyStatusAction) => {
      if (a.kind === 'setStatus') {
        await rest.request('PATCH', `${POLICIES}/${enc(a.name)}/status`, { metadata: { resourceVersion: a.resourceVersion }, status: a.status }, 'application/merge-patch+json');
        ctx.log('policy_status_updated', { policy: a.name, matchedPods: a.status.matchedPods, matchedNamespaces: a.status.matchedNamespaces });
      } else {
        await rest.request('PATCH', `/api/v1/namespaces/${enc(a.name)}`, { metadata: { resourceVersion: a.resourceVersion, labels: { [ISOLATION_NS_LABEL]: a.value } } }, 'application/merge-patch+json');
        ctx.log('namespace_isolation_label', { namespace: a.name, value: a.value });
      }
    };

    const handle = (key: string) =>
      withConflictRetry(
        async (fresh) => {
          const [kind, name] = [key.slice(0, key.indexOf('/')), key.slice(key.indexOf('/') + 1)];
          if (kind === 'policy') {
            const obj = fresh ? await getOrUndefined(() => rest.request<Obj>('GET', `${POLICIES}/${enc(name)}`)) : policyInf.get(name);
            if (!obj) return;
            const [policy] = effectivePolicies([obj]);
            if (!policy) return; // invalid: reported by rebuild(), no status to compute
            for (const a of reconcilePolicyStatus(policy, obj.status, nsInf.list(), podInf.list())) await apply(a);
          } else {
            const ns = fresh ? await getOrUndefined(() => rest.request<Obj>('GET', `/api/v1/namespaces/${enc(name)}`)) : nsInf.get(name);
            if (!ns || ns.status?.phase === 'Terminating') return;
            for (const a of reconcileNamespaceLabel(ns, policies)) await apply(a);
          }
        },
        (attempt, err) => ctx.log('policy_status_conflict', { key, attempt, error: err.message }),
      );
    const queue = new WorkQueue(handle, (key, err, attempt) => ctx.log('policy_status_retry', { key, attempt, error: String((err as Error)?.message ?? err) }));

    let synced = false;
    const allPolicies = () => policyInf.list().forEach((p) => queue.add(`policy/${p.metadata.name}`));
    const allNamespaces = () => nsInf.list().forEach((n) => queue.add(`namespace/${n.metadata.name}`));
    for (const verb of ['add', 'update', 'delete'] as const) {
      policyInf.on(verb, (p) => {
        rebuild();
        if (!synced) return;
        queue.add(`policy/${p.metadata.name}`);
        allNamespaces(); // a selector change can move any namespace in or out
      });
      nsInf.on(verb, (n) => {
        if (!synced) return;
        queue.add(`namespace/${n.metadata.name}`);
        allPolicies();
      });
      // Pod churn touches only the counts; the queue merges bursts into one pass per policy.
      podInf.on(verb, () => synced && allPolicies());
    }
    const cancel = await startAll([policyInf, nsInf, podInf], () => {
      synced = true;
      rebuild();
      allPolicies();
      allNamespaces();
      ctx.log('controller_synced', { controller: 'policy-status', policies: policies.length });
    });
    ctx.log('controller_started', { controller: 'policy-status' });
    return {
      name: 'policy-status',
      settled: () => queue.settled(),
      async stop() {
        cancel();
        queue.stop();
        await Promise.all([policyInf.stop(), nsInf.stop(), podInf.stop()]);
        rest.close();
      },
    };
  },
};
