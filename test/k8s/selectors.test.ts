import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchFields, matchLabels, parseFieldSelector, parseLabelSelector, selectableFields, SelectorError, validateFieldSelector } from '../../src/k8s/selectors.js';

test('label selector grammar: equality, inequality, set-based, existence', () => {
  const sel = parseLabelSelector('app=web,tier!=db,env in (prod, staging),!legacy,team');
  assert.equal(sel.length, 5);
  assert.ok(matchLabels(sel, { app: 'web', env: 'prod', team: 'a' }));
  assert.ok(!matchLabels(sel, { app: 'web', env: 'prod', team: 'a', legacy: '' }));
  assert.ok(!matchLabels(sel, { app: 'web', env: 'dev', team: 'a' }));
  assert.ok(!matchLabels(sel, { app: 'web', env: 'prod', team: 'a', tier: 'db' }));
  assert.ok(matchLabels(parseLabelSelector('x notin (a,b)'), {}), 'notin matches a missing key');
  assert.ok(matchLabels(parseLabelSelector('a==1'), { a: '1' }));
  assert.ok(matchLabels(parseLabelSelector(''), { a: '1' }));
  assert.throws(() => parseLabelSelector('a=b c'), SelectorError);
  assert.throws(() => parseLabelSelector('-bad=1'), SelectorError);
  assert.throws(() => parseLabelSelector('a,,b'), SelectorError);
});

test('field selectors: spec.nodeName, metadata.*, escapes, unsupported labels', () => {
  const pod = { metadata: { name: 'p', namespace: 'ns' }, spec: { nodeName: 'edge-1' }, status: { phase: 'Running' } };
  const f = selectableFields('Pod', pod, true);
  assert.ok(matchFields(parseFieldSelector('spec.nodeName=edge-1,metadata.namespace==ns'), f));
  assert.ok(!matchFields(parseFieldSelector('spec.nodeName!=edge-1'), f));
  assert.ok(matchFields(parseFieldSelector('status.phase=Running'), f));
  assert.deepEqual(parseFieldSelector('metadata.name=a\\,b'), [{ field: 'metadata.name', op: '=', value: 'a,b' }]);
  assert.throws(() => parseFieldSelector('nonsense'), SelectorError);
  assert.throws(() => validateFieldSelector(parseFieldSelector('spec.nodeName=x'), 'Node', false), /field label not supported: spec.nodeName/);
  assert.throws(() => validateFieldSelector(parseFieldSelector('metadata.namespace=x'), 'Node', false), SelectorError);
  validateFieldSelector(parseFieldSelector('metadata.name=x'), 'Node', false);
});
