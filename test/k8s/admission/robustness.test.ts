import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkPodShape } from '../../../src/k8s/admission/review.js';
import { decideAdmission, validateAdmission, profileMap } from '../../../src/k8s/admission/engine.js';
import { builtinRuntimeProfiles } from '../../../src/k8s/crds/builtin-profiles.js';
import { K8sInputError } from '../../../src/k8s/errors.js';
import { policy } from '../support/fixtures.js';

// Deterministic PRNG (mulberry32) so a failure reproduces.
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const GARBAGE = [null, 0, -1, 1e308, '', 'x', '-5', '1e999', true, [], [null], {}, { a: 1 }, [[]], '~/', 'Gi'];

const base = () => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'p', labels: { a: 'b' }, annotations: { 'coffer.dev/epc-mib': '8' } },
  spec: {
    runtimeClassName: 'kata-qemu',
    overhead: { cpu: '250m' },
    nodeSelector: { z: 'a' },
    initContainers: [{ name: 'i', restartPolicy: 'Always', resources: { limits: { cpu: '1' } } }],
    containers: [{ name: 'c', env: [{ name: 'X', value: '1' }], volumeMounts: [{ name: 'v', mountPath: '/m' }], resources: { limits: { cpu: '2', memory: '1Gi' }, requests: { cpu: '1' } }, securityContext: { privileged: false } }],
    volumes: [{ name: 'v', hostPath: { path: '/h' } }],
    tolerations: [{ key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }],
    affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'k', operator: 'In', values: ['v'] }] }] } } },
  },
});

/** Every path to a value inside the object. */
function paths(o: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (o === null || typeof o !== 'object') return [prefix];
  const out: (string | number)[][] = prefix.length ? [prefix] : [];
  for (const [k, v] of Object.entries(o)) out.push(...paths(v, [...prefix, Array.isArray(o) ? Number(k) : k]));
  return out;
}

test('garbage anywhere in a pod: a typed rejection or a decision, never an unexpected exception', () => {
  const r = rng(7);
  const policies = [
    policy('s', { isolation: 'sandbox', sizing: 'aks', enforce: 'deny' }),
    policy('e', { isolation: 'enclave', autonomy: true, podSelector: { matchLabels: { a: 'b' } } }),
    policy('c', { isolation: 'confidential-vm', runtimeClassName: 'kata-qemu-tdx', podSelector: { matchExpressions: [{ key: 'a', operator: 'DoesNotExist' }] } }),
  ];
  const profiles = profileMap(builtinRuntimeProfiles());
  const all = paths(base());
  let typed = 0;
  let decided = 0;
  for (let i = 0; i < 3000; i++) {
    const pod: any = base();
    const edits = 1 + Math.floor(r() * 3);
    for (let e = 0; e < edits; e++) {
      const p = all[Math.floor(r() * all.length)];
      let cur = pod;
      for (const k of p.slice(0, -1)) cur = cur?.[k];
      if (cur && typeof cur === 'object') cur[p[p.length - 1]] = structuredClone(GARBAGE[Math.floor(r() * GARBAGE.length)]);
    }
    try {
      checkPodShape(pod, 'pod');
    } catch (err) {
      assert.ok(err instanceof K8sInputError, `case ${i}: ${(err as Error).stack}`);
      typed++;
      continue;
    }
    for (const f of [decideAdmission, validateAdmission]) {
      try {
        const d = f({ pod, namespaceLabels: {}, policies, profiles });
        assert.equal(typeof d.allowed, 'boolean');
        if (!d.allowed) assert.match(d.reason!, /^IsolationPolicy "\w+" rule [\w-]+: /);
      } catch (err) {
        assert.fail(`case ${i}: ${f.name} threw on ${JSON.stringify(pod)}: ${(err as Error).stack}`);
      }
    }
    decided++;
  }
  assert.ok(typed > 100 && decided > 100, `typed ${typed}, decided ${decided}`);
});
