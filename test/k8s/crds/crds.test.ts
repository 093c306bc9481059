import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition';
import { cofferCrds, isolationPolicyCrd, runtimeProfileCrd } from '../../../src/k8s/crds/schemas.js';
import { builtinRuntimeProfiles } from '../../../src/k8s/crds/builtin-profiles.js';
import { checkIsolationPolicy, checkRuntimeProfile, parseIsolationPolicies } from '../../../src/k8s/crds/load.js';
import { K8sInputError } from '../../../src/k8s/errors.js';

function openapi(crd: Record<string, unknown>): Record<string, unknown> {
  return (crd as any).spec.versions[0].schema.openAPIV3Schema;
}

// ajv checks the JSON-Schema part; the Kubernetes extensions (x-kubernetes-*) are not JSON Schema keywords.
function validator(crd: Record<string, unknown>) {
  const ajv = new Ajv({ strict: false, allErrors: true, useDefaults: true });
  const f = ajv.compile(openapi(crd));
  const check = (d: unknown): boolean => f(d);
  return Object.assign(check, { get errors() { return f.errors; } });
}

/** Walks a structural schema: every node with properties/items/additionalProperties must say its type. */
function assertStructural(node: any, path = '$'): void {
  if (node === null || typeof node !== 'object') return;
  const typed = node.type !== undefined || node['x-kubernetes-int-or-string'] || node['x-kubernetes-preserve-unknown-fields'];
  if (node.properties || node.items || node.additionalProperties) assert.ok(typed, `${path} has children but no type`);
  for (const [k, v] of Object.entries(node.properties ?? {})) assertStructural(v, `${path}.${k}`);
  if (node.items) assertStructural(node.items, `${path}[]`);
  if (typeof node.additionalProperties === 'object') assertStructural(node.additionalProperties, `${path}{}`);
}

test('CRDs are valid apiextensions.k8s.io/v1 objects with structural schemas, printer columns and short names', () => {
  for (const crd of cofferCrds()) {
    new CustomResourceDefinition(crd as any).validate();
    assertStructural(openapi(crd));
    const spec = (crd as any).spec;
    assert.equal(spec.group, 'coffer.dev');
    assert.equal(spec.scope, 'Cluster');
    assert.ok(spec.names.shortNames.length > 0);
    assert.ok(spec.versions[0].additionalPrinterColumns.length >= 3);
  }
});

test('every built-in RuntimeProfile validates against the CRD schema and the loader', () => {
  const v = validator(runtimeProfileCrd());
  const names = builtinRuntimeProfiles().map((p) => p.metadata.name);
  assert.deepEqual(names.sort(), ['gvisor', 'kata-clh', 'kata-mshv-vm-isolation', 'kata-qemu', 'kata-qemu-coco-dev', 'kata-qemu-snp', 'kata-qemu-tdx', 'runc', 'runv']);
  for (const p of builtinRuntimeProfiles()) {
    assert.ok(v(structuredClone(p)), `${p.metadata.name}: ${JSON.stringify(v.errors)}`);
    assert.deepEqual(checkRuntimeProfile(structuredClone(p)), p);
  }
  const byName = new Map(builtinRuntimeProfiles().map((p) => [p.metadata.name, p]));
  assert.equal(byName.get('kata-qemu-tdx')!.spec.isolation, 'confidential-vm');
  assert.deepEqual(byName.get('kata-qemu-tdx')!.spec.overhead, { podFixed: { memory: '2048Mi', cpu: '1.0' } });
  assert.equal(byName.get('gvisor')!.spec.handler, 'runsc');
  assert.equal(byName.get('kata-mshv-vm-isolation')!.spec.handler, 'kata');
});

test('IsolationPolicy schema: enums, required fields, patterns, defaults', () => {
  const v = validator(isolationPolicyCrd());
  const good = { apiVersion: 'coffer.dev/v1alpha1', kind: 'IsolationPolicy', metadata: { name: 'p' }, spec: { namespaceSelector: {}, isolation: 'sandbox' } };
  const copy: any = structuredClone(good);
  assert.ok(v(copy));
  assert.deepEqual([copy.spec.enforce, copy.spec.sizing, copy.spec.autonomy], ['mutate', 'none', false], 'schema defaults');
  assert.ok(!v({ ...good, spec: { namespaceSelector: {}, isolation: 'vm' } }));
  assert.ok(!v({ ...good, spec: { isolation: 'sandbox' } }));
  assert.ok(!v({ ...good, spec: { namespaceSelector: { matchLabels: { k: 'bad value!' } }, isolation: 'sandbox' } }));
  assert.ok(!v({ ...good, spec: { namespaceSelector: {}, isolation: 'sandbox', runtimeClassName: 'Not_DNS' } }));
  // The loader applies the same defaults and the CEL rules the schema declares.
  assert.deepEqual(checkIsolationPolicy(structuredClone(good)).spec, { namespaceSelector: {}, isolation: 'sandbox', enforce: 'mutate', sizing: 'none', autonomy: false });
  const rules = (openapi(isolationPolicyCrd()) as any).properties.spec['x-kubernetes-validations'];
  assert.equal(rules.length, 3);
  // spec.images: the schema and the loader agree on shape; the loader also compiles keys and patterns.
  const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const withImages = { ...good, spec: { namespaceSelector: {}, isolation: 'sandbox', images: { repositories: ['r.example/**'], signers: [{ name: 'k', publicKey: pem }, { name: 'ci', keyless: { issuer: 'https://i', subjectRegExp: '.*@example\\.com' } }] } } };
  assert.ok(v(structuredClone(withImages)));
  assert.equal(checkIsolationPolicy(structuredClone(withImages)).spec.images!.signers.length, 2);
  assert.ok(!v({ ...good, spec: { namespaceSelector: {}, isolation: 'sandbox', images: { signers: [] } } }));
  assert.ok(!v({ ...good, spec: { namespaceSelector: {}, isolation: 'sandbox', images: { platform: 'linux', signers: [{ name: 'k', publicKey: pem }] } } }));
  assert.throws(() => checkIsolationPolicy({ ...good, spec: { namespaceSelector: {}, isolation: 'none', images: withImages.spec.images } }), /applies to sandbox, confidential-vm and enclave/);
  assert.throws(() => checkIsolationPolicy({ ...good, spec: { namespaceSelector: {}, isolation: 'sandbox', images: { signers: [{ name: 'ci', keyless: { issuer: 'x', subjectRegExp: '(a+)+$' } }] } } }), (e: unknown) => e instanceof K8sInputError && /nested repetition/.test(e.message));
  assert.throws(() => checkIsolationPolicy({ ...good, spec: { namespaceSelector: {}, isolation: 'confidential-vm' } }), /needs an explicit runtimeClassName/);
  assert.throws(() => checkIsolationPolicy({ ...good, spec: { namespaceSelector: {}, isolation: 'none', sizing: 'aks' } }), /sizing applies to sandboxed pods/);
  assert.throws(
    () => checkIsolationPolicy({ ...good, spec: { namespaceSelector: { matchExpressions: [{ key: 'a', operator: 'In' }] }, isolation: 'sandbox' } }),
    (e: unknown) => e instanceof K8sInputError && /operator In needs a non-empty values list/.test(e.message),
  );
  assert.throws(() => checkIsolationPolicy({ ...good, apiVersion: 'v1' }), /apiVersion must be coffer.dev\/v1alpha1/);
});

test('multi-document YAML policies parse; a bad document is named', () => {
  const text = `apiVersion: coffer.dev/v1alpha1
kind: IsolationPolicy
metadata: {name: a}
spec: {namespaceSelector: {}, isolation: sandbox}
---
---
apiVersion: coffer.dev/v1alpha1
kind: IsolationPolicy
metadata: {name: b}
spec: {namespaceSelector: {matchLabels: {x: y}}, isolation: enclave, enforce: deny}
`;
  const ps = parseIsolationPolicies(text, 'p.yaml');
  assert.deepEqual(ps.map((p) => p.metadata.name), ['a', 'b']);
  assert.throws(() => parseIsolationPolicies(text + '---\nkind: [\n', 'p.yaml'), /p.yaml: document \d+ is not valid YAML/);
  assert.throws(() => parseIsolationPolicies('apiVersion: coffer.dev/v1alpha1\nkind: IsolationPolicy\nmetadata: {name: a}\nspec: {namespaceSelector: {}, isolation: nope}\n', 'p.yaml'), /p.yaml document 1/);
});
