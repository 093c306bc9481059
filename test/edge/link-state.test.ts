import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LinkStateMachine } from '../../src/edge/link-state.js';

test('a few consecutive failures take the link offline; the first success brings it back', () => {
  const m = new LinkStateMachine(3, 'online', 0);
  assert.equal(m.observe(false, 1).changed, false);
  assert.equal(m.observe(false, 2).changed, false);
  assert.equal(m.observe(true, 3).changed, false, 'a success resets the failure count');
  m.observe(false, 4);
  m.observe(false, 5);
  const t = m.observe(false, 6);
  assert.deepEqual(t, { state: 'offline', changed: true, at: 6 });
  assert.equal(m.observe(false, 7).changed, false, 'stays offline');
  const back = m.observe(true, 8);
  assert.deepEqual(back, { state: 'online', changed: true, at: 8 });
  assert.equal(m.changedAt, 8);
});

test('starts offline until the first successful probe; rejects a bad threshold', () => {
  const m = new LinkStateMachine(2);
  assert.equal(m.state, 'offline');
  assert.equal(m.observe(false, 1).changed, false);
  assert.equal(m.observe(true, 2).state, 'online');
  assert.throws(() => new LinkStateMachine(0), RangeError);
});
