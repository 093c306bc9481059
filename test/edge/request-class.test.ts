import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyRequest, componentOf } from '../../src/edge/request-class.js';

const agents = new Set(['kubelet', 'coffer']);

test('component from User-Agent, verb from method/path/query, cacheability', () => {
  assert.equal(componentOf('kubelet/v1.32.0 (linux/amd64) kubernetes/abc'), 'kubelet');
  assert.equal(componentOf('Coffer'), 'coffer');
  const w = classifyRequest('GET', '/api/v1/pods?fieldSelector=spec.nodeName%3Dn1&watch=true', 'kubelet/v1.32', agents);
  assert.equal(w.verb, 'watch');
  assert.ok(w.cacheable);
  assert.equal(classifyRequest('GET', '/api/v1/watch/namespaces/a/pods', 'kubelet/1', agents).verb, 'watch');
  assert.equal(classifyRequest('GET', '/api/v1/namespaces/a/pods/p', 'kubelet/1', agents).verb, 'get');
  assert.equal(classifyRequest('GET', '/api/v1/namespaces/a/pods', 'kubectl/1', agents).cacheable, false, 'agent not allow-listed');
  assert.equal(classifyRequest('PATCH', '/api/v1/nodes/n1/status', 'kubelet/1', agents).verb, 'patch');
  assert.equal(classifyRequest('PATCH', '/api/v1/nodes/n1/status', 'kubelet/1', agents).cacheable, false);
  assert.equal(classifyRequest('GET', '/api/v1/namespaces/a/secrets', 'kubelet/1', agents).cacheable, false);
  assert.equal(classifyRequest('GET', '/api/v1/namespaces/a/pods/p/log', 'kubelet/1', agents).cacheable, false);
  assert.equal(classifyRequest('DELETE', '/api/v1/namespaces/a/pods', 'kubelet/1', agents).verb, 'deletecollection');
  const d = classifyRequest('GET', '/apis/coordination.k8s.io/v1', 'kubelet/1', agents);
  assert.ok(d.discovery && d.cacheable);
  assert.ok(classifyRequest('GET', '/api/v1/pods', 'anything', new Set(['*'])).cacheable);
});
