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
