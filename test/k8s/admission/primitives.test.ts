import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ceilMiB, ceilMilli, parseQuantity } from '../../../src/k8s/quantity.js';
import { matchesSelector } from '../../../src/k8s/admission/selector.js';
import { applyPatch, escapePointerToken, PatchBuilder } from '../../../src/k8s/admission/json-patch.js';

test('quantities: SI, binary, exponent and fractional forms, exactly', () => {
  assert.equal(ceilMilli(parseQuantity('0.3')), 300n);
  assert.equal(ceilMilli(parseQuantity('250m')), 250n);
  assert.equal(ceilMilli(parseQuantity('1.0001')), 1001n);
  assert.equal(ceilMilli(parseQuantity('1e3')), 1_000_000n);
  assert.equal(ceilMilli(parseQuantity(2)), 2000n);
  assert.equal(ceilMiB(parseQuantity('1Gi')), 1024n);
  assert.equal(ceilMiB(parseQuantity('1G')), 954n);
  assert.equal(ceilMiB(parseQuantity('128974848')), 123n);
  assert.equal(ceilMiB(parseQuantity('129e6')), 124n);
  for (const bad of ['', 'Gi', '1GB', '1.2.3', 'one', '1 Gi', '1e999']) assert.throws(() => parseQuantity(bad), /quantity|exponent/, bad);
});

test('label selectors: empty matches all; NotIn/DoesNotExist match a missing key', () => {
  assert.equal(matchesSelector({}, undefined), true);
  assert.equal(matchesSelector({ matchLabels: { a: '1' } }, { a: '1', b: '2' }), true);
  assert.equal(matchesSelector({ matchLabels: { a: '1' } }, { a: '2' }), false);
  assert.equal(matchesSelector({ matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['1'] }] }, {}), true);
  assert.equal(matchesSelector({ matchExpressions: [{ key: 'a', operator: 'In', values: ['1'] }] }, {}), false);
  assert.equal(matchesSelector({ matchExpressions: [{ key: 'a', operator: 'DoesNotExist' }] }, { b: '' }), true);
  assert.equal(matchesSelector({ matchExpressions: [{ key: 'a', operator: 'Exists' }] }, { a: '' }), true);
  assert.equal(matchesSelector({ matchExpressions: [{ key: 'a', operator: 'Bogus' as never }] }, { a: '' }), false);
  // toString/constructor are not labels.
  assert.equal(matchesSelector({ matchExpressions: [{ key: 'constructor', operator: 'Exists' }] }, {}), false);
});

test('JSON pointer escaping and patch application', () => {
  assert.equal(escapePointerToken('a/b~c'), 'a~1b~0c');
  const b = new PatchBuilder({ metadata: {} });
  b.set(['metadata', 'annotations', 'x/y~z'], '1');
  b.set(['metadata', 'annotations', 'x/y~z'], '1');
  b.append(['spec', 'list'], 1);
  b.append(['spec', 'list'], 2);
  assert.deepEqual(b.ops, [
    { op: 'add', path: '/metadata/annotations', value: { 'x/y~z': '1' } },
    { op: 'add', path: '/spec', value: { list: [1] } },
    { op: 'add', path: '/spec/list/-', value: 2 },
  ]);
  assert.deepEqual(applyPatch({ metadata: {} }, b.ops), b.doc);
  assert.throws(() => applyPatch({}, [{ op: 'add', path: '/a/b', value: 1 }]), /parent of 'b' does not exist/);
  assert.throws(() => applyPatch({}, [{ op: 'remove', path: '/a' }]), /nothing to remove/);
});
