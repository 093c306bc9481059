// Coffer's CRI proto subset against the descriptor containerd's own binary embeds: every message and field Coffer
// declares must exist there with the same number, type and cardinality (the wire contract), and every method
// with the same request/response types. Fields newer than the binary's cri-api are named here explicitly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';
import { CONTAINERD_BIN, extractDescriptorSet } from '../../support/containerd.js';

const PROTO = fileURLToPath(new URL('../../../src/node/stats/cri-api.proto', import.meta.url));
/** cri-api 1.30 added these; containerd 1.6's descriptor predates them. */
const NEWER = new Set(['StatusResponse.runtime_handlers', 'RuntimeHandler']);

const skip = existsSync(CONTAINERD_BIN) ? false : `${CONTAINERD_BIN} not installed (apt-get install containerd)`;
if (skip) console.log(`# SKIP CRI proto check: ${skip}`);

function typeName(f: protobuf.Field): string {
  f.resolve();
  if (f.resolvedType) return f.resolvedType.fullName.replace(/^\./, '');
  return f.type;
}

test('cri-api.proto fields and methods match the runtime.v1 descriptor in the containerd binary', { skip }, () => {
  const set = extractDescriptorSet(CONTAINERD_BIN);
  void descriptor; // the import installs Root.fromDescriptor
  const theirs = (protobuf.Root as unknown as { fromDescriptor(b: Uint8Array): protobuf.Root }).fromDescriptor(set);
  const ours = new protobuf.Root().loadSync(PROTO, { keepCase: true });
  ours.resolveAll();
  theirs.resolveAll();
  const pkg = ours.lookup('runtime.v1') as protobuf.Namespace;
  let fields = 0;
  const walk = (ns: protobuf.NamespaceBase) => {
    for (const obj of ns.nestedArray) {
      const rel = obj.fullName.replace(/^\.runtime\.v1\./, '');
      if (obj instanceof protobuf.Type) {
        if (NEWER.has(rel)) continue;
        const t = theirs.lookupType(obj.fullName);
        for (const f of obj.fieldsArray) {
          if (NEWER.has(`${rel}.${f.name}`)) {
            assert.equal(t.fields[f.name], undefined, `${rel}.${f.name} is listed as newer but the binary has it: drop it from NEWER`);
            continue;
          }
          const tf = t.fields[f.name];
          assert.ok(tf, `${rel}.${f.name} not in containerd's descriptor`);
          assert.equal(f.id, tf.id, `${rel}.${f.name} field number`);
          if (f instanceof protobuf.MapField) {
            // proto3 map<K,V> is on the wire a repeated entry message {K key = 1; V value = 2} — as the descriptor has it
            assert.ok(tf.repeated && tf.resolve().resolvedType instanceof protobuf.Type, `${rel}.${f.name} is a map entry list there`);
            const entry = tf.resolvedType as protobuf.Type;
            assert.equal(entry.fields.key?.id, 1);
            assert.equal(entry.fields.key?.type, f.keyType, `${rel}.${f.name} key type`);
            assert.equal(entry.fields.value?.id, 2);
            assert.equal(entry.fields.value?.type, f.type, `${rel}.${f.name} value type`);
          } else {
            assert.equal(typeName(f), typeName(tf), `${rel}.${f.name} type`);
            assert.equal(f.repeated, tf.repeated, `${rel}.${f.name} repeated`);
          }
          fields++;
        }
        walk(obj);
      } else if (obj instanceof protobuf.Enum) {
        const te = theirs.lookupEnum(obj.fullName);
        assert.deepEqual({ ...obj.values }, Object.fromEntries(Object.entries(te.values).filter(([k]) => k in obj.values)), `${rel} values`);
      } else if (obj instanceof protobuf.Service) {
        const ts = theirs.lookupService(obj.fullName);
        for (const m of obj.methodsArray) {
          const tm = ts.methods[m.name];
          assert.ok(tm, `${rel}.${m.name} not in containerd's descriptor`);
          assert.equal(m.resolvedRequestType!.fullName, (tm.resolve() as protobuf.Method).resolvedRequestType!.fullName, `${m.name} request`);
          assert.equal(m.resolvedResponseType!.fullName, tm.resolvedResponseType!.fullName, `${m.name} response`);
        }
      }
    }
  };
  walk(pkg);
  assert.ok(fields > 80, `compared ${fields} fields`);
});
