import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ItemStreamScanner, scanList, ListScanError } from '../../src/edge/list-scanner.js';

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

test('streaming scanner agrees with the whole-buffer scanner for every chunking', () => {
  const items = Array.from({ length: 7 }, (_, i) => ({ metadata: { name: `p${i}`, annotations: { tricky: `"}]\\\\${'x'.repeat(i * 13)}{[` } }, n: i }));
  const body = Buffer.from(JSON.stringify({ meta: { kind: 'Pod' }, rv: '12', items, tail: { x: [1] } }));
  const whole = scanList(body);
  for (const size of [1, 2, 3, 7, 16, 64, 1000, body.length]) {
    const got: { start: number; text: string }[] = [];
    const s = new ItemStreamScanner((b, start) => got.push({ start, text: b.toString() }));
    for (let off = 0; off < body.length; off += size) {
      // A reused read buffer: the scanner must copy what it keeps.
      const scratch = Buffer.alloc(size);
      const n = body.copy(scratch, 0, off, Math.min(body.length, off + size));
      s.feed(scratch.subarray(0, n), off);
      scratch.fill(0);
    }
    assert.deepEqual(s.finish(), whole.envelope, `envelope, chunk ${size}`);
    assert.deepEqual(got, whole.items.map((r) => ({ start: r.start, text: body.toString('utf8', r.start, r.end) })), `items, chunk ${size}`);
  }
  const t = new ItemStreamScanner(() => {});
  t.feed(body.subarray(0, body.length - 5), 0);
  assert.throws(() => t.finish(), ListScanError);
});
