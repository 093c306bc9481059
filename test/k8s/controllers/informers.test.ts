// Controller informers: list, then watch with allowWatchBookmarks; a BOOKMARK keeps the resourceVersion fresh, so a
// dropped watch resumes after a compaction without relisting (without bookmarks it would get 410 and relist).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import { startFakeApiServer } from '../../support/fake-apiserver.js';
import { waitFor } from '../../support/wait.js';
import { makeCachedInformer } from '../../../src/k8s/controllers/informers.js';
import { KubeRest } from '../../../src/k8s/kube-rest.js';

test('bookmarks keep a quiet informer resumable across compaction; the watch asks for them', async () => {
  const fake = await startFakeApiServer({ bookmarkIntervalMs: 50 });
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser({ name: 'fake', server: fake.url, skipTLSVerify: true }, { name: 'u' });
  const rest = await KubeRest.fromKubeConfig(kc);
  const reqs: string[] = [];
  fake.beforeRequest = (m, u) => u.startsWith('/apis/node.k8s.io/v1/runtimeclasses') && reqs.push(`${m} ${u}`);
  const inf = makeCachedInformer(kc, rest, { kubeConfig: kc, log: () => {} }, { name: 'rc', path: '/apis/node.k8s.io/v1/runtimeclasses' });
  try {
    fake.put('runtimeclasses', { metadata: { name: 'a' }, handler: 'a' }, 'node.k8s.io');
    await inf.start();
    assert.ok(inf.synced());
    assert.equal(inf.get('a')?.handler, 'a');
    const watch = await waitFor('watch', () => reqs.find((r) => r.includes('watch=true')));
    assert.match(watch!, /allowWatchBookmarks=true/);
    // Other kinds move the global resourceVersion; the quiet collection learns it only from BOOKMARKs.
    for (let i = 0; i < 5; i++) fake.put('configmaps', { metadata: { name: `c${i}`, namespace: 'default' }, data: {} });
    const rv = fake.store.rv;
    await new Promise((r) => setTimeout(r, 200));
    fake.store.compact();
    const before = reqs.length;
    fake.store.dropWatchers();
    await waitFor('re-watch', () => reqs.slice(before).some((r) => r.includes('watch=true')));
    const rewatch = reqs.slice(before).find((r) => r.includes('watch=true'))!;
    assert.match(rewatch, new RegExp(`resourceVersion=${rv}(&|$)`), rewatch);
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(!reqs.slice(before).some((r) => r.startsWith('GET') && !r.includes('watch=true')), `no relist: ${reqs.slice(before)}`);
    fake.put('runtimeclasses', { metadata: { name: 'b' }, handler: 'b' }, 'node.k8s.io');
    await waitFor('event after resume', () => inf.get('b'));
  } finally {
    fake.beforeRequest = undefined;
    await inf.stop();
    rest.close();
    await fake.close();
  }
});
