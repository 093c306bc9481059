import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideAdmission, validateAdmission, profileMap, ANNOTATIONS, DEFAULT_ADMISSION_CONFIG, type AdmissionInput } from '../../../src/k8s/admission/engine.js';
import { applyPatch } from '../../../src/k8s/admission/json-patch.js';
import { builtinRuntimeProfiles } from '../../../src/k8s/crds/builtin-profiles.js';
import type { IsolationPolicy, RuntimeProfile } from '../../../src/k8s/crds/types.js';
import type { Pod } from '../../../src/k8s/admission/pod.js';
import { policy, pod } from '../support/fixtures.js';

const profiles = profileMap(builtinRuntimeProfiles());

function run(p: Pod, policies: IsolationPolicy[], nsLabels: Record<string, string> = { tier: 'untrusted' }, extra: Partial<AdmissionInput> = {}) {
  const d = decideAdmission({ pod: p, namespaceLabels: nsLabels, policies, profiles, ...extra });
  const mutated = applyPatch(p, d.patch);
  return { d, mutated };
}

/** Admits, applies the patch, re-admits: the second pass must change nothing and the validator must accept. */
function admitTwice(p: Pod, policies: IsolationPolicy[], ns: Record<string, string> = { tier: 'untrusted' }, extra: Partial<AdmissionInput> = {}) {
  const first = run(p, policies, ns, extra);
  assert.equal(first.d.allowed, true, first.d.reason);
  const second = decideAdmission({ pod: first.mutated, namespaceLabels: ns, policies, profiles, ...extra });
  assert.deepEqual(second.patch, [], 'second admission must be a no-op');
  const v = validateAdmission({ pod: first.mutated, namespaceLabels: ns, policies, profiles, ...extra });
  assert.equal(v.allowed, true, v.reason);
  return first;
}

test('pods that match no policy are untouched', () => {
  const pol = policy('sbx', { isolation: 'sandbox', namespaceSelector: { matchLabels: { tier: 'untrusted' } } });
  const { d } = run(pod(), [pol], { tier: 'trusted' });
  assert.equal(d.allowed, true);
  assert.deepEqual(d.patch, []);
  assert.equal(d.explanation, null);
});

test('sandbox: runtime class, its overhead and node selector, decision annotation; idempotent', () => {
  const { d, mutated } = admitTwice(pod(), [policy('sbx', { isolation: 'sandbox' })]);
  assert.equal(mutated.spec!.runtimeClassName, 'kata-qemu');
  assert.deepEqual(mutated.spec!.overhead, { memory: '160Mi', cpu: '250m' });
  assert.deepEqual(mutated.spec!.nodeSelector, { 'katacontainers.io/kata-runtime': 'true' });
  // annotations did not exist: the whole map is added (an add below a missing map would fail).
  const annOp = d.patch.find((o) => o.path.startsWith('/metadata/annotations'));
  assert.deepEqual(annOp && { op: annOp.op, path: annOp.path }, { op: 'add', path: '/metadata/annotations' });
  const dec = JSON.parse(mutated.metadata!.annotations![ANNOTATIONS.decision]);
  assert.equal(dec.policy, 'sbx');
  assert.equal(dec.isolation, 'sandbox');
  assert.equal(dec.runtimeClassName, 'kata-qemu');
});

test('annotation keys are RFC 6901-escaped when the map exists', () => {
  const { d } = run(pod({}, { annotations: { keep: 'me', 'a~b': 'x' } }), [policy('sbx', { isolation: 'sandbox' })]);
  const op = d.patch.find((o) => o.path.includes('decision'));
  assert.equal(op?.path, '/metadata/annotations/coffer.dev~1decision');
  assert.equal(op?.op, 'add');
});

test('AKS sizing: no limits gives 1 vCPU / 2048 MiB', () => {
  const { mutated } = admitTwice(pod(), [policy('aks', { isolation: 'sandbox', sizing: 'aks' })]);
  const a = mutated.metadata!.annotations!;
  assert.equal(mutated.spec!.runtimeClassName, 'kata-mshv-vm-isolation');
  assert.equal(a[ANNOTATIONS.kataVcpus], '1');
  assert.equal(a[ANNOTATIONS.kataMemory], '2048');
  assert.equal(a[ANNOTATIONS.sandboxVm], 'vcpus=1,memoryMiB=2048');
});

test('AKS sizing: limits summed over containers, CPU rounded up, memory added in MiB', () => {
  const p = pod({
    containers: [
      { name: 'a', resources: { limits: { cpu: '500m', memory: '1Gi' } } },
      { name: 'b', resources: { limits: { cpu: '1.2', memory: '512Mi' }, requests: { cpu: '8' } } },
    ],
  });
  const { mutated } = admitTwice(p, [policy('aks', { isolation: 'sandbox', sizing: 'aks' })]);
  const a = mutated.metadata!.annotations!;
  assert.equal(a[ANNOTATIONS.kataVcpus], '3'); // 1 + ceil(1.7); requests ignored
  assert.equal(a[ANNOTATIONS.kataMemory], String(2048 + 1536));
});

test('AKS sizing: a large init container dominates; sidecars add to the app sum; 0.3 CPU is exactly 300m', () => {
  const p = pod({
    initContainers: [
      { name: 'sidecar', restartPolicy: 'Always', resources: { limits: { cpu: '0.3', memory: '100M' } } },
      { name: 'migrate', resources: { limits: { cpu: '4', memory: '64Mi' } } },
    ],
    containers: [{ name: 'a', resources: { limits: { cpu: '700m', memory: '1Gi' } } }],
  });
  const { d } = run(p, [policy('aks', { isolation: 'sandbox', sizing: 'aks' })]);
  // cpu: max(0.7 + 0.3, 0.3 + 4) = 4.3 → 1 + 5; memory: max(1024 + ceil(95.37), 96 + 64) = 1120 MiB
  assert.deepEqual(d.explanation?.sandboxVm, { vcpus: 6, memoryMiB: 2048 + 1120 });
});

test('strictest isolation wins and the decision names every matched policy', () => {
  const pols = [
    policy('b-sandbox', { isolation: 'sandbox' }),
    policy('a-cvm', { isolation: 'confidential-vm', runtimeClassName: 'kata-qemu-snp', namespaceSelector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['untrusted', 'x'] }] } }),
    policy('c-none', { isolation: 'none', namespaceSelector: { matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] } }),
  ];
  const { mutated, d } = admitTwice(pod(), pols);
  assert.equal(mutated.spec!.runtimeClassName, 'kata-qemu-snp');
  assert.deepEqual(d.explanation?.matched, ['a-cvm', 'b-sandbox']);
  assert.equal(d.explanation?.isolation, 'confidential-vm');
  assert.deepEqual(mutated.spec!.overhead, { memory: '2048Mi', cpu: '1.0' });
  const terms = (mutated.spec!.affinity as any).nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms;
  assert.deepEqual(terms, [{ matchExpressions: [{ key: 'coffer.dev/attested', operator: 'In', values: ['true'] }] }]);
});

test('pod selectors: NotIn and Exists', () => {
  const pol = policy('p', { isolation: 'sandbox', podSelector: { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['infra'] }, { key: 'untrusted', operator: 'Exists' }] } });
  assert.equal(run(pod({}, { labels: { untrusted: '' } }), [pol]).d.explanation?.policy, 'p');
  assert.equal(run(pod({}, { labels: { untrusted: '', app: 'infra' } }), [pol]).d.explanation, null);
  assert.equal(run(pod({}, { labels: { app: 'web' } }), [pol]).d.explanation, null);
});

test('confidential: the attested-node expression is ANDed into every existing term', () => {
  const p = pod({
    affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [
      { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] },
      { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }] },
    ] } } },
  });
  const { mutated } = admitTwice(p, [policy('c', { isolation: 'confidential-vm', runtimeClassName: 'kata-qemu-tdx' })]);
  const terms = (mutated.spec!.affinity as any).nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms;
  assert.equal(terms.length, 2);
  for (const t of terms) assert.ok(t.matchExpressions.some((e: any) => e.key === 'coffer.dev/attested'));
});

test('enclave: EPC request = limit from the annotation, quote helper socket and SGX_AESM_ADDR=1', () => {
  const p = pod({ containers: [{ name: 'enc', env: [{ name: 'X', value: 'y' }] }, { name: 'side', volumeMounts: [{ name: 'mine', mountPath: '/var/run/aesmd' }] }] }, { annotations: { [ANNOTATIONS.epcMiB]: '64' } });
  const { mutated, d } = admitTwice(p, [policy('e', { isolation: 'enclave' })]);
  const [enc, side] = mutated.spec!.containers!;
  assert.equal(enc.resources!.limits!['kubernetes.azure.com/sgx_epc_mem_in_MiB'], '64');
  assert.equal(enc.resources!.requests!['kubernetes.azure.com/sgx_epc_mem_in_MiB'], '64');
  assert.deepEqual(enc.volumeMounts, [{ name: 'coffer-quote-helper', mountPath: '/var/run/aesmd' }]);
  assert.deepEqual(enc.env, [{ name: 'X', value: 'y' }, { name: 'SGX_AESM_ADDR', value: '1' }]);
  assert.deepEqual(side.volumeMounts, [{ name: 'mine', mountPath: '/var/run/aesmd' }], 'an existing mount at the path is kept');
  assert.deepEqual(mutated.spec!.volumes, [{ name: 'coffer-quote-helper', hostPath: { path: '/var/run/aesmd', type: 'DirectoryOrCreate' } }]);
  assert.equal(d.explanation?.epcMiB, 64);
  assert.ok(d.patch.some((o) => o.path === '/spec/containers/0/resources'), 'missing resources object is created whole');
  assert.equal(mutated.spec!.runtimeClassName, undefined, 'SGX enclaves need no VM runtime');
});

test('enclave: configurable resource name and default size; bad annotation is denied', () => {
  const config = { ...DEFAULT_ADMISSION_CONFIG, epcResourceName: 'sgx.intel.com/epc', defaultEpcMiB: 32, quoteHelperHostPath: '/var/run/tdx-qgs' };
  const { mutated } = admitTwice(pod(), [policy('e', { isolation: 'enclave', enforce: 'deny' })], undefined, { config });
  assert.equal(mutated.spec!.containers![0].resources!.limits!['sgx.intel.com/epc'], '32');
  assert.equal(mutated.spec!.volumes![0].hostPath!.path, '/var/run/tdx-qgs');
  const bad = run(pod({}, { annotations: { [ANNOTATIONS.epcMiB]: '-3' } }), [policy('e', { isolation: 'enclave' })]).d;
  assert.equal(bad.allowed, false);
  assert.match(bad.reason!, /IsolationPolicy "e" rule epc: .*coffer.dev\/epc-mib/);
});

test('autonomy: strips the 300 s bound DefaultTolerationSeconds added, adds the missing one; idempotent', () => {
  const p = pod({ tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }] });
  const { mutated, d } = admitTwice(p, [policy('edge', { isolation: 'none', autonomy: true })]);
  assert.deepEqual(mutated.spec!.tolerations, [
    { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' },
    { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute' },
  ]);
  assert.ok(d.patch.some((o) => o.op === 'remove' && o.path === '/spec/tolerations/0/tolerationSeconds'));
  assert.equal(mutated.spec!.runtimeClassName, undefined);
});

test('enforce deny: host access and weaker runtime classes are rejected, naming policy and rule', () => {
  const pol = [policy('strict', { isolation: 'sandbox', enforce: 'deny' })];
  const cases: [Pod, RegExp][] = [
    [pod({ volumes: [{ name: 'h', hostPath: { path: '/etc' } }] }), /^IsolationPolicy "strict" rule host-path: volume "h" mounts host path \/etc/],
    [pod({ hostNetwork: true }), /rule host-network/],
    [pod({ hostPID: true }), /rule host-pid/],
    [pod({ containers: [{ name: 'x', securityContext: { privileged: true } }] }), /rule privileged: containers "x" is privileged/],
    [pod({ runtimeClassName: 'runc' }), /rule runtime-class: pod asks for runtimeClassName "runc" \(isolation none\)/],
    [pod({ runtimeClassName: 'mystery' }), /rule runtime-class: .*unknown isolation/],
  ];
  for (const [p, re] of cases) {
    const d = run(p, pol).d;
    assert.equal(d.allowed, false, JSON.stringify(p.spec));
    assert.match(d.reason!, re);
    assert.deepEqual(d.patch, []);
  }
  // A stronger runtime than required is the pod's own choice and is kept.
  const ok = run(pod({ runtimeClassName: 'kata-clh' }), pol);
  assert.equal(ok.d.allowed, true);
  assert.equal(ok.mutated.spec!.runtimeClassName, 'kata-clh');
  assert.deepEqual(ok.mutated.spec!.overhead, { memory: '130Mi', cpu: '250m' });
});

test('enforce mutate: a weaker runtime class is replaced (with its overhead); host access only warns', () => {
  const p = pod({ runtimeClassName: 'gvisor', hostNetwork: true });
  const { d, mutated } = run(p, [policy('sbx', { isolation: 'sandbox', runtimeClassName: 'kata-clh' })]);
  assert.equal(d.allowed, true);
  assert.equal(mutated.spec!.runtimeClassName, 'kata-clh');
  assert.ok(d.patch.some((o) => o.op === 'replace' && o.path === '/spec/runtimeClassName'));
  assert.match(d.warnings[0], /hostNetwork/);
});

test('impossible sizing is denied against the profile capacity', () => {
  const small: RuntimeProfile = { ...builtinRuntimeProfiles()[0], spec: { ...builtinRuntimeProfiles()[0].spec, capacity: { cpu: '4', memory: '16Gi' } } };
  const extra = { profiles: profileMap([small]) };
  const pol = [policy('aks', { isolation: 'sandbox', sizing: 'aks' })];
  const big = pod({ containers: [{ name: 'a', resources: { limits: { cpu: '8' } } }] });
  const d = decideAdmission({ pod: big, namespaceLabels: {}, policies: pol, ...extra });
  assert.equal(d.allowed, false);
  assert.match(d.reason!, /rule sizing: the sandbox VM needs 9 CPU, above the 4 CPU/);
  const mem = pod({ containers: [{ name: 'a', resources: { limits: { memory: '15Gi' } } }] });
  assert.match(decideAdmission({ pod: mem, namespaceLabels: {}, policies: pol, ...extra }).reason!, /17408 MiB/);
  const fits = pod({ containers: [{ name: 'a', resources: { limits: { cpu: '3', memory: '14Gi' } } }] });
  assert.equal(decideAdmission({ pod: fits, namespaceLabels: {}, policies: pol, ...extra }).allowed, true);
});

test('bad quantities and node selector conflicts are denied, not thrown', () => {
  const pol = [policy('aks', { isolation: 'sandbox', sizing: 'aks' })];
  const d = run(pod({ containers: [{ name: 'a', resources: { limits: { cpu: 'lots' } } }] }), pol).d;
  assert.equal(d.allowed, false);
  assert.match(d.reason!, /rule input: .*'lots' is not a Kubernetes quantity/);
  const c = run(pod({ nodeSelector: { 'katacontainers.io/kata-runtime': 'false' } }), [policy('s', { isolation: 'sandbox' })]).d;
  assert.match(c.reason!, /rule node-selector/);
  const missing = run(pod(), [policy('s', { isolation: 'sandbox', runtimeClassName: 'nope' })]).d;
  assert.match(missing.reason!, /rule runtime-profile: RuntimeProfile "nope" does not exist/);
  const weak = run(pod(), [policy('s', { isolation: 'confidential-vm', runtimeClassName: 'kata-qemu' })]).d;
  assert.match(weak.reason!, /gives isolation sandbox, weaker than the required confidential-vm/);
});

test('validation rejects a pod the mutating webhook did not reach', () => {
  const pols = [policy('c', { isolation: 'confidential-vm', runtimeClassName: 'kata-qemu-tdx' })];
  const v = validateAdmission({ pod: pod(), namespaceLabels: {}, policies: pols, profiles });
  assert.equal(v.allowed, false);
  assert.match(v.reason!, /IsolationPolicy "c" rule runtime-class: pod does not satisfy rule runtime-class \(would change \/spec\/runtimeClassName\)/);
  assert.ok(v.denials.some((x) => x.rule === 'attested-nodes'));
});

test('what the API server stores still validates: canonical quantities and defaulted hostPath type', () => {
  const pols = [policy('c', { isolation: 'confidential-vm', runtimeClassName: 'kata-qemu-tdx', sizing: 'aks' }), policy('e', { isolation: 'enclave', podSelector: { matchLabels: { sgx: 'y' } } })];
  for (const labels of [{}, { sgx: 'y' }] as Record<string, string>[]) {
    const { mutated } = run(pod({ containers: [{ name: 'a', resources: { limits: { 'kubernetes.azure.com/sgx_epc_mem_in_MiB': 8 } } }] }, { labels }), pols);
    // Simulate the apiserver's canonical serialisation of quantities.
    const stored = JSON.parse(JSON.stringify(mutated).replace('"2048Mi"', '"2Gi"').replace('"1.0"', '"1"').replace(/"kubernetes.azure.com\/sgx_epc_mem_in_MiB":8/g, '"kubernetes.azure.com/sgx_epc_mem_in_MiB":"8"'));
    assert.notDeepEqual(stored, mutated);
    const v = validateAdmission({ pod: stored, namespaceLabels: {}, policies: pols, profiles });
    assert.equal(v.allowed, true, v.reason);
    assert.deepEqual(decideAdmission({ pod: stored, namespaceLabels: {}, policies: pols, profiles }).patch, []);
  }
  const enclave = run(pod({}, { labels: { sgx: 'y' } }), pols).mutated;
  assert.deepEqual(enclave.spec!.volumes, [{ name: 'coffer-quote-helper', hostPath: { path: '/var/run/aesmd', type: 'DirectoryOrCreate' } }]);
  // A different overhead (e.g. left by the class the pod arrived with) is replaced.
  const { d } = run(pod({ runtimeClassName: 'kata-qemu', overhead: { cpu: '250m', memory: '160Mi' } }), [pols[0]]);
  assert.ok(d.patch.some((o) => o.op === 'replace' && o.path === '/spec/overhead'));
});

test('impossible sizing: another profile of the same isolation that fits is used; denied when none fits', () => {
  const base = builtinRuntimeProfiles()[0];
  const small: RuntimeProfile = { ...base, spec: { ...base.spec, capacity: { cpu: '4' } } };
  const big: RuntimeProfile = { ...base, metadata: { name: 'kata-big' }, spec: { ...base.spec, capacity: { cpu: '16', memory: '64Gi' } } };
  const cvm: RuntimeProfile = { ...base, metadata: { name: 'kata-huge-cvm' }, spec: { ...base.spec, isolation: 'confidential-vm' } };
  const profiles = profileMap([small, big, cvm]);
  const big8 = pod({ containers: [{ name: 'a', resources: { limits: { cpu: '8' } } }] });
  const d = decideAdmission({ pod: big8, namespaceLabels: {}, policies: [policy('aks', { isolation: 'sandbox', sizing: 'aks' })], profiles });
  assert.equal(d.allowed, true, d.reason);
  assert.equal(d.explanation?.runtimeClassName, 'kata-big');
  const named = decideAdmission({ pod: big8, namespaceLabels: {}, policies: [policy('aks', { isolation: 'sandbox', sizing: 'aks', runtimeClassName: 'kata-mshv-vm-isolation' })], profiles });
  assert.match(named.reason!, /rule sizing: the sandbox VM needs 9 CPU/);
  const huge = pod({ containers: [{ name: 'a', resources: { limits: { cpu: '32' } } }] });
  const none = decideAdmission({ pod: huge, namespaceLabels: {}, policies: [policy('aks', { isolation: 'sandbox', sizing: 'aks' })], profiles });
  assert.match(none.reason!, /needs 33 CPU, above the 4 CPU .*no other sandbox profile fits either \(kata-big\)/);
});
