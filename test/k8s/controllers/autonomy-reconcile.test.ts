import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AUTONOMOUS_SINCE, LAST_OUTAGE, MANAGED_MARK, reconcileNode, RECOVERED_AT, withNodeProblemTolerations } from '../../../src/k8s/controllers/autonomy-reconcile.js';
import { makeNode, makePod } from '../../support/k8s-objects.js';

const node = (ready: boolean, annotations: Record<string, string> = {}, since = '2026-11-23T10:00:00Z') => {
  const n = makeNode('edge-1', { ready, annotations });
  n.metadata.resourceVersion = '5';
  n.status.conditions[0].lastTransitionTime = since;
  return n;
};
const pod = (name: string, extra: (p: any) => void = () => {}) => {
  const p = makePod('apps', name, 'edge-1');
  p.metadata.resourceVersion = '9';
  extra(p);
  return p;
};

test('tolerations: forever on autonomous nodes, only tolerationSeconds changes, others kept', () => {
  const t = withNodeProblemTolerations([{ key: 'gpu', operator: 'Exists', effect: 'NoSchedule' }, { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }], undefined)!;
  assert.deepEqual(t, [
    { key: 'gpu', operator: 'Exists', effect: 'NoSchedule' },
    { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute' },
    { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' },
  ]);
  assert.equal(withNodeProblemTolerations(t, undefined), undefined, 'idempotent');
});

test('autonomous node: running pods get tolerations and the managed mark; DaemonSet, mirror and finished pods are skipped', () => {
  const ds = pod('ds', (p) => (p.metadata.ownerReferences = [{ kind: 'DaemonSet', name: 'x', uid: 'u', apiVersion: 'apps/v1' }]));
  const mirror = pod('static', (p) => (p.metadata.annotations = { 'kubernetes.io/config.mirror': 'abc' }));
  const done = pod('done', (p) => (p.status.phase = 'Succeeded'));
  const acts = reconcileNode(node(true, { 'coffer.dev/autonomy': 'true' }), [pod('web'), ds, mirror, done]);
  assert.equal(acts.length, 1);
  const a = acts[0];
  assert.equal(a.kind, 'setPodTolerations');
  assert.ok(a.kind === 'setPodTolerations' && a.name === 'web' && a.mark === 'managed' && a.resourceVersion === '9');
  assert.ok(a.kind === 'setPodTolerations' && a.tolerations.every((t) => t.tolerationSeconds === undefined));
});

test('non-autonomous node: untouched pods stay untouched; managed pods get 300 s back and lose the mark', () => {
  assert.deepEqual(reconcileNode(node(true), [pod('web')]), []);
  const managed = pod('web', (p) => {
    p.metadata.annotations = { [MANAGED_MARK]: 'managed' };
    p.spec.tolerations = p.spec.tolerations.map((t: any) => ({ ...t, tolerationSeconds: undefined }));
  });
  const [a] = reconcileNode(node(true), [managed]);
  assert.ok(a.kind === 'setPodTolerations' && a.mark === null && a.tolerations.every((t) => t.tolerationSeconds === 300));
});

test('namespaces declared autonomous (IsolationPolicy) are covered on any node', () => {
  const acts = reconcileNode(node(true), [pod('web')], { autonomousNamespaces: new Set(['apps']) });
  assert.equal(acts.length, 1);
});

test('outage reporting from the Ready condition: since, then recovered + last outage; idempotent', () => {
  const down = node(false, { 'coffer.dev/autonomy': 'true' }, '2026-11-23T10:00:00Z');
  const [a1] = reconcileNode(down, []);
  assert.deepEqual(a1, { kind: 'annotateNode', name: 'edge-1', resourceVersion: '5', annotations: { [AUTONOMOUS_SINCE]: '2026-11-23T10:00:00Z' } });
  down.metadata.annotations[AUTONOMOUS_SINCE] = '2026-11-23T10:00:00Z';
  assert.deepEqual(reconcileNode(down, []), [], 'idempotent while down');
  const up = node(true, { 'coffer.dev/autonomy': 'true', [AUTONOMOUS_SINCE]: '2026-11-23T10:00:00Z' }, '2026-11-23T11:30:00Z');
  const [a2] = reconcileNode(up, []);
  assert.deepEqual(a2.kind === 'annotateNode' && a2.annotations, { [AUTONOMOUS_SINCE]: null, [RECOVERED_AT]: '2026-11-23T11:30:00Z', [LAST_OUTAGE]: '2026-11-23T10:00:00Z/2026-11-23T11:30:00Z' });
  // A NotReady node without autonomy is not "autonomous": nothing reported.
  assert.deepEqual(reconcileNode(node(false), []), []);
  // Node deleted: only its pods matter.
  assert.deepEqual(reconcileNode(undefined, [pod('web')]), []);
});
