import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lineDiff } from '../../src/ui/diff.js';
import { pastedBytes, toBase64 } from '../../src/ui/evidence.js';

test('lineDiff: kept, removed and added lines in order; a trailing newline is no extra line', () => {
  assert.deepEqual(lineDiff('a\nb\nc\n', 'a\nx\nc\n'), [
    { op: ' ', text: 'a' }, { op: '-', text: 'b' }, { op: '+', text: 'x' }, { op: ' ', text: 'c' },
  ]);
  assert.deepEqual(lineDiff('', 'new\n'), [{ op: '+', text: 'new' }]);
  assert.deepEqual(lineDiff('same', 'same'), [{ op: ' ', text: 'same' }]);
  // Past the size bound: everything old removed, everything new added (still a correct, if blunt, diff).
  const big = Array.from({ length: 2100 }, (_, i) => `l${i}`).join('\n');
  const d = lineDiff(big, `${big}\nmore`);
  assert.equal(d.filter((l) => l.op === '-').length, 2100);
  assert.equal(d.filter((l) => l.op === '+').length, 2101);
});

test('pasted evidence: JSON stays text, hex and base64 (either alphabet) are decoded', () => {
  assert.equal(Buffer.from(pastedBytes(' {"a":1} ')).toString(), '{"a":1}');
  assert.deepEqual([...pastedBytes('0x0aff10')], [0x0a, 0xff, 0x10]);
  assert.deepEqual([...pastedBytes('de ad\nbe ef')], [0xde, 0xad, 0xbe, 0xef]);
  assert.deepEqual([...pastedBytes('AQID')], [1, 2, 3]);
  assert.deepEqual([...pastedBytes('-_8=')], [0xfb, 0xff]);
  const bytes = new Uint8Array(70_000).map((_, i) => i % 251);
  assert.deepEqual(Buffer.from(toBase64(bytes), 'base64'), Buffer.from(bytes));
});
