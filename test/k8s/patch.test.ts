import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyPatch, jsonPatch, mergePatch, PatchError, patchTypeOf, strategicMergePatch } from '../../src/k8s/patch.js';

test('JSON merge patch (RFC 7386): null deletes, objects merge, arrays replace', () => {
  assert.deepEqual(mergePatch({ a: 1, b: { c: 2, d: 3 }, l: [1, 2] }, { a: null, b: { c: 9 }, l: [3] }), { b: { c: 9, d: 3 }, l: [3] });
});

test('strategic merge patch: lists merged by patchMergeKey, $patch delete/replace, finalizers union', () => {
  const pod = { spec: { containers: [{ name: 'a', image: 'x:1' }, { name: 'b', image: 'y:1' }], tolerations: [{ key: 't' }] }, metadata: { finalizers: ['f1'] } };
  const out = strategicMergePatch(pod, {
    spec: { containers: [{ name: 'b', image: 'y:2' }, { name: 'a', $patch: 'delete' }, { name: 'c', image: 'z:1' }], tolerations: [{ key: 'u' }] },
    metadata: { finalizers: ['f2'] },
  }) as any;
  assert.deepEqual(out.spec.containers, [{ name: 'b', image: 'y:2' }, { name: 'c', image: 'z:1' }]);
  assert.deepEqual(out.spec.tolerations, [{ key: 'u' }], 'no merge key: replaced');
  assert.deepEqual(out.metadata.finalizers, ['f1', 'f2']);
  assert.deepEqual(strategicMergePatch({ a: { x: 1, y: 2 } }, { a: { $patch: 'replace', z: 3 } }), { a: { z: 3 } });
  assert.deepEqual(pod.spec.containers[1].image, 'y:1', 'input untouched');
});

test('JSON patch (RFC 6902): add/remove/replace/test/move/copy, pointer escapes, failures typed', () => {
  const doc = { metadata: { annotations: { 'a/b': '1' } }, list: [1, 2] };
  const out = jsonPatch(doc, [
    { op: 'add', path: '/metadata/annotations/sgx.intel.com~1epc', value: '4Mi' },
    { op: 'remove', path: '/metadata/annotations/a~1b' },
    { op: 'add', path: '/list/-', value: 3 },
    { op: 'replace', path: '/list/0', value: 0 },
    { op: 'test', path: '/list/1', value: 2 },
    { op: 'copy', from: '/list/2', path: '/three' },
    { op: 'move', from: '/three', path: '/moved' },
  ]);
  assert.deepEqual(out, { metadata: { annotations: { 'sgx.intel.com/epc': '4Mi' } }, list: [0, 2, 3], moved: 3 });
  assert.throws(() => jsonPatch(doc, [{ op: 'test', path: '/list/0', value: 9 }]), PatchError);
  assert.throws(() => jsonPatch(doc, [{ op: 'add', path: '/nope/x', value: 1 }]), PatchError);
  assert.throws(() => jsonPatch(doc, { op: 'add' }), PatchError);
});

test('patch types from Content-Type', () => {
  assert.equal(patchTypeOf('application/merge-patch+json; charset=utf-8'), 'merge');
  assert.equal(patchTypeOf('application/strategic-merge-patch+json'), 'strategic');
  assert.equal(patchTypeOf('application/json-patch+json'), 'json');
  assert.equal(patchTypeOf('application/apply-patch+yaml'), undefined);
  assert.deepEqual(applyPatch('merge', { a: 1 }, { b: 2 }), { a: 1, b: 2 });
});
