import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Collection } from '../../src/edge/object-cache.js';
import { buildList, objectJson } from '../../src/edge/offline-responses.js';
import { parseFieldSelector, parseLabelSelector } from '../../src/k8s/selectors.js';
import { makePod } from '../support/k8s-objects.js';

const meta = { group: '', version: 'v1', resource: 'pods', kind: 'Pod', apiVersion: 'v1', namespaced: true };
const pod = (ns: string, name: string, node: string, rv: string) => {
  const p = makePod(ns, name, node);
  p.metadata.resourceVersion = rv;
  return p;
};

test('a LIST replaces only its own scope; watch events update; offline LIST honours selectors and rv', () => {
  const c = new Collection(meta);
  c.replaceScope(undefined, [], [], [pod('a', 'p1', 'n1', '1'), pod('a', 'p2', 'n2', '2'), pod('b', 'p3', 'n1', '3')], '3');
  // The kubelet's list by spec.nodeName=n1 no longer includes p1: only n1's scope is replaced.
  c.replaceScope(undefined, [], parseFieldSelector('spec.nodeName=n1'), [pod('b', 'p3', 'n1', '3')], '5');
  assert.deepEqual([...c.items.keys()].sort(), ['a/p2', 'b/p3']);
  c.upsert(pod('a', 'p4', 'n1', '6'));
  c.remove(pod('a', 'p2', 'n2', '7'));
  c.bookmark('8');
  assert.equal(c.rv, '8');
  const list = JSON.parse([...buildList(c, { namespace: undefined, labels: [], fields: parseFieldSelector('spec.nodeName=n1'), limit: 0, continueToken: undefined }, false, 'Metadata').parts].join(''));
  assert.equal(list.kind, 'PodList');
  assert.equal(list.apiVersion, 'v1');
  assert.equal(list.metadata.resourceVersion, '8');
  assert.deepEqual(list.items.map((i: any) => i.metadata.name), ['p4', 'p3']);
  assert.equal(list.items[0].kind, undefined);
  const byNs = JSON.parse([...buildList(c, { namespace: 'b', labels: parseLabelSelector('app=p3'), fields: [], limit: 0, continueToken: undefined }, false, 'Metadata').parts].join(''));
  assert.deepEqual(byNs.items.map((i: any) => i.metadata.name), ['p3']);
  const got = JSON.parse(objectJson(c, c.get('a', 'p4')!));
  assert.equal(got.kind, 'Pod');
  assert.equal(got.metadata.resourceVersion, '6');
});

test('offline pagination with limit/continue and a Table for kubectl', () => {
  const c = new Collection(meta);
  c.replaceScope(undefined, [], [], Array.from({ length: 5 }, (_, i) => pod('a', `p${i}`, 'n1', String(i + 1))), '5');
  const r1 = JSON.parse([...buildList(c, { namespace: undefined, labels: [], fields: [], limit: 2, continueToken: undefined }, false, 'Metadata').parts].join(''));
  assert.equal(r1.items.length, 2);
  assert.equal(r1.metadata.remainingItemCount, 3);
  const r2 = JSON.parse([...buildList(c, { namespace: undefined, labels: [], fields: [], limit: 10, continueToken: r1.metadata.continue }, false, 'Metadata').parts].join(''));
  assert.deepEqual(r2.items.map((i: any) => i.metadata.name), ['p2', 'p3', 'p4']);
  const t = buildList(c, { namespace: undefined, labels: [], fields: [], limit: 0, continueToken: undefined }, true, 'Metadata');
  assert.equal(t.contentType, 'application/json;as=Table;v=v1;g=meta.k8s.io');
  const table = JSON.parse([...t.parts].join(''));
  assert.equal(table.kind, 'Table');
  assert.deepEqual(table.rows[0].cells.slice(0, 4), ['p0', '1/1', 'Running', '0']);
  assert.equal(table.rows[0].object.metadata.namespace, 'a');
});

test('a LIST indexed after its answer leaves what watch events changed since then alone', () => {
  const c = new Collection(meta);
  c.replaceScope(undefined, [], [], [pod('a', 'p1', 'n1', '1'), pod('a', 'p2', 'n1', '2'), pod('a', 'p3', 'n1', '3')], '3');
  // The LIST answer (rv 10: p1 changed, p2 unchanged, p3 gone, p4 new) ended; then, before it is indexed, the
  // client's watch delivers p1 at rv 11, deletes p2 and adds p5.
  const mark = c.track();
  c.upsert(pod('a', 'p1', 'n1', '11'));
  c.remove(pod('a', 'p2', 'n1', '12'));
  c.upsert(pod('a', 'p5', 'n1', '13'));
  const list = [pod('a', 'p1', 'n1', '9'), pod('a', 'p2', 'n1', '2'), pod('a', 'p4', 'n1', '8')].map((p) => c.entryOf(p));
  c.replaceScopeEntries(undefined, [], [], list, '10', c.touchedSince(mark));
  c.untrack();
  assert.deepEqual([...c.items.keys()].sort(), ['a/p1', 'a/p4', 'a/p5'], 'p2 stays deleted, p3 gone, p4 added, p5 kept');
  assert.equal(c.get('a', 'p1')!.rv, '11', 'the newer watch state wins over the older LIST');
  assert.equal(c.rv, '13', 'the resourceVersion does not go back to the LIST');
  // Without tracking, a relist replaces its scope entirely (a restored server with lower resourceVersions too).
  c.replaceScopeEntries(undefined, [], [], [c.entryOf(pod('a', 'x', 'n1', '2'))], '2');
  assert.deepEqual([...c.items.keys()], ['a/x']);
  assert.equal(c.rv, '2');
});
