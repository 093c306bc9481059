// Leader election on a coordination.k8s.io/v1 Lease against the fake kube-apiserver: two controllers, one leads.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import { startFakeApiServer, type FakeApiServer } from '../../support/fake-apiserver.js';
import { waitFor } from '../../support/wait.js';
import { KubeRest } from '../../../src/k8s/kube-rest.js';
import { LeaderElector, microTime } from '../../../src/k8s/controllers/leader-election.js';
import { runLeaderElected } from '../../../src/k8s/controllers/leader-run.js';
import type { RunningController } from '../../../src/k8s/controllers/types.js';

let fake: FakeApiServer;
let rest: KubeRest;
const timing = { leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 200 };
const lease = (name: string) => fake.store.get('coordination.k8s.io/leases', `coffer-system/${name}`);

before(async () => {
  fake = await startFakeApiServer({ namespaces: ['coffer-system'] });
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser({ name: 'fake', server: fake.url, skipTLSVerify: true }, { name: 'controller' });
  rest = await KubeRest.fromKubeConfig(kc);
});
after(async () => {
  rest?.close();
  await fake?.close();
});

/** A controller that records whether it is running. */
function probe(name: string, live: Set<string>): () => Promise<RunningController[]> {
  return async () => {
    live.add(name);
    return [{ name, stop: async () => void live.delete(name) }];
  };
}

test('two controllers: one leads, the other takes over only after the lease expires; a clean stop hands over at once', async (t) => {
  const live = new Set<string>();
  const lost: string[] = [];
  const runs: { stop(): Promise<void> }[] = [];
  t.after(() => Promise.all(runs.map((r) => r.stop())));
  const a = runLeaderElected(rest, { namespace: 'coffer-system', name: 'ctl', identity: 'a', ...timing }, probe('a', live), () => lost.push('a'));
  runs.push(a);
  await waitFor('a leads', () => live.has('a'));
  const b = runLeaderElected(rest, { namespace: 'coffer-system', name: 'ctl', identity: 'b', ...timing }, probe('b', live), () => lost.push('b'));
  runs.push(b);
  // Several renew periods: b stays standby while a renews.
  await new Promise((r) => setTimeout(r, 1200));
  assert.deepEqual([...live], ['a']);
  const l = lease('ctl')!;
  assert.equal(l.spec.holderIdentity, 'a');
  assert.equal(l.spec.leaseDurationSeconds, 2);
  assert.equal(l.spec.leaseTransitions, 0);
  assert.match(l.spec.renewTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'MicroTime');
  assert.ok(Date.parse(l.spec.renewTime) > Date.parse(l.spec.acquireTime), 'renewed');

  // a crashes (no release): b waits a full lease duration from when it last saw a renewal, then takes over.
  const crashedAt = Date.now();
  await a.elector.stop(false);
  live.delete('a');
  await waitFor('b leads', () => live.has('b'), 5000);
  assert.ok(Date.now() - crashedAt >= 1500, `b waited for the lease to expire (${Date.now() - crashedAt} ms)`);
  assert.equal(lease('ctl')!.spec.holderIdentity, 'b');
  assert.equal(lease('ctl')!.spec.leaseTransitions, 1);

  // b stops cleanly: the lease is released and a new candidate takes it within a retry period or two.
  const c = runLeaderElected(rest, { namespace: 'coffer-system', name: 'ctl', identity: 'c', ...timing }, probe('c', live), () => lost.push('c'));
  runs.push(c);
  await new Promise((r) => setTimeout(r, 300));
  const stoppedAt = Date.now();
  await b.stop();
  assert.equal(lease('ctl')!.spec.holderIdentity ?? '', '');
  await waitFor('c leads', () => live.has('c'), 3000);
  assert.ok(Date.now() - stoppedAt < 1500, 'no wait for expiry after a release');
  assert.deepEqual([...live], ['c']);
  assert.equal(lease('ctl')!.spec.leaseTransitions, 2);
  await c.stop();
  assert.deepEqual(lost, []);
});

test('racing for an expired lease: optimistic concurrency lets exactly one win', async () => {
  const t0 = Date.now();
  await rest.request('POST', '/apis/coordination.k8s.io/v1/namespaces/coffer-system/leases', {
    apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'race' },
    spec: { holderIdentity: 'gone', leaseDurationSeconds: 1, acquireTime: microTime(t0 - 60_000), renewTime: microTime(t0 - 60_000), leaseTransitions: 4 },
  });
  let clock = t0;
  const mk = (id: string) => new LeaderElector(rest, { namespace: 'coffer-system', name: 'race', identity: id, ...timing, clock: () => clock }, { onStartedLeading() {}, onStoppedLeading() {} });
  const x = mk('x');
  const y = mk('y');
  // First look: both observe 'gone' and start their own expiry clocks.
  assert.deepEqual(await Promise.all([x.tryAcquireOrRenew(), y.tryAcquireOrRenew()]), [false, false]);
  clock += 1500;
  // Both read the same resourceVersion, both PUT: one succeeds, the other gets 409.
  const seen: string[] = [];
  fake.beforeRequest = (method) => void seen.push(method);
  const results = await Promise.all([x.tryAcquireOrRenew(), y.tryAcquireOrRenew()]);
  fake.beforeRequest = undefined;
  assert.equal(seen.filter((m) => m === 'GET').length, 2);
  assert.equal(results.filter(Boolean).length, 1, `exactly one leader: ${results}`);
  assert.equal([x, y].filter((e) => e.isLeader).length, 1);
  const l = lease('race')!;
  assert.equal(l.spec.holderIdentity, results[0] ? 'x' : 'y');
  assert.equal(l.spec.leaseTransitions, 5);
  // The loser, on its next round, sees a live holder and stays standby.
  const loser = results[0] ? y : x;
  assert.equal(await loser.tryAcquireOrRenew(), false);
  assert.equal(loser.isLeader, false);
});

test('bad timing is refused', () => {
  assert.throws(() => new LeaderElector(rest, { namespace: 'n', name: 'l', identity: 'i', leaseDurationMs: 1000, renewDeadlineMs: 1000, retryPeriodMs: 100 }, { onStartedLeading() {}, onStoppedLeading() {} }), RangeError);
});
