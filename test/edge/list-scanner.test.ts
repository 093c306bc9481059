import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scanList, ListScanError } from '../../src/edge/list-scanner.js';

test('splits items exactly, strings with braces and escapes included', () => {
  const items = [{ metadata: { name: 'a', annotations: { x: '{"not":["a","list"]}', q: 'say \\"hi\\" ]}' } } }, { metadata: { name: 'b' }, data: { items: '[1,2]' } }];
  const body = Buffer.from(JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: '42', continue: '' }, items }));
  const r = scanList(body);
  assert.deepEqual(r.envelope, { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: '42', continue: '' }, items: [] });
  assert.deepEqual(r.items.map((s) => JSON.parse(body.toString('utf8', s.start, s.end))), items);
  const empty = scanList(Buffer.from('{"kind":"PodList","items":[],"metadata":{"resourceVersion":"1"}}'));
  assert.equal(empty.items.length, 0);
  assert.equal(empty.envelope.metadata.resourceVersion, '1');
  assert.throws(() => scanList(body.subarray(0, body.length - 3)), ListScanError);
});
