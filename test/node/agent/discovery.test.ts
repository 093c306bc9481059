import { test } from 'node:test';
import assert from 'node:assert/strict';
import { discoverTee } from '../../../src/node/discovery/discover.js';
import { labelPatch, runtimeLabels, teeLabels } from '../../../src/node/discovery/labels.js';
import { hostTree, sgxHost } from './host-tree.js';

test('an empty host has no TEE and no labels', async () => {
  const t = hostTree();
  try {
    const f = await discoverTee(t);
    assert.deepEqual(f, { sgx: undefined, tdxGuest: false, snpGuest: false, tsmReport: false, tpm: undefined, kvm: false, mshv: false });
    assert.deepEqual(teeLabels(f), {});
  } finally {
    t.cleanup();
  }
});

test('SGX in-tree driver: EPC summed over NUMA nodes, FLC implied, labels the agent-sgx DaemonSet selects on', async () => {
  const t = hostTree();
  try {
    sgxHost(t, [64, 32]);
    t.file('sys/devices/system/node/node2/meminfo', 'no sgx here');
    const f = await discoverTee(t);
    assert.equal(f.sgx?.driver, 'in-tree');
    assert.equal(f.sgx?.epcBytes, 96 * 1024 * 1024);
    assert.deepEqual(f.sgx?.epcByNode, { 0: 64 * 1024 * 1024, 1: 32 * 1024 * 1024 });
    assert.deepEqual(teeLabels(f), { 'coffer.dev/tee.sgx': 'true', 'coffer.dev/sgx.flc': 'true', 'coffer.dev/epc-mib': '96' });
  } finally {
    t.cleanup();
  }
});

test('SGX out-of-tree driver: SGX without the FLC guarantee; an old kernel without sgx_total_bytes gives no EPC label', async () => {
  const t = hostTree();
  try {
    t.file('dev/sgx/enclave');
    t.file('sys/devices/system/node/node0/x86/sgx_total_bytes', 'garbage');
    const f = await discoverTee(t);
    assert.equal(f.sgx?.driver, 'out-of-tree');
    assert.equal(f.sgx?.flc, false);
    assert.equal(f.sgx?.epcBytes, undefined);
    assert.deepEqual(teeLabels(f), { 'coffer.dev/tee.sgx': 'true' });
  } finally {
    t.cleanup();
  }
});

test('TDX and SNP guests, configfs-tsm, TPM 2.0, KVM and mshv', async () => {
  const t = hostTree();
  try {
    t.file('dev/tdx_guest');
    t.file('dev/sev-guest');
    t.file('sys/kernel/config/tsm/report/.keep');
    t.file('dev/tpmrm0');
    t.file('sys/class/tpm/tpm0/tpm_version_major', '2\n');
    t.file('dev/kvm');
    t.file('dev/mshv');
    const f = await discoverTee(t);
    assert.deepEqual(teeLabels(f), {
      'coffer.dev/tee.tdx': 'true',
      'coffer.dev/tee.snp': 'true',
      'coffer.dev/tsm-report': 'true',
      'coffer.dev/tee.tpm': 'true',
      'coffer.dev/tpm.version': '2',
      'coffer.dev/kvm': 'true',
      'coffer.dev/hv.mshv': 'true',
    });
  } finally {
    t.cleanup();
  }
});

test('a file where the tsm report directory should be is not configfs-tsm', async () => {
  const t = hostTree();
  try {
    t.file('sys/kernel/config/tsm/report', 'not a dir');
    assert.equal((await discoverTee(t)).tsmReport, false);
  } finally {
    t.cleanup();
  }
});

test('runtime handlers become coffer.dev/runtime.<handler> labels; names that cannot be labels are reported, not published', () => {
  assert.deepEqual(runtimeLabels(['kata', 'runc', 'runsc']), {
    labels: { 'coffer.dev/runtime.kata': 'true', 'coffer.dev/runtime.runc': 'true', 'coffer.dev/runtime.runsc': 'true' },
    skipped: [],
  });
  assert.deepEqual(runtimeLabels(['ok', 'bad/name', 'x'.repeat(56), '-lead']), { labels: { 'coffer.dev/runtime.ok': 'true' }, skipped: ['bad/name', 'x'.repeat(56), '-lead'] });
});

test('label patch: sets what differs, nulls owned labels that no longer apply, never touches others', () => {
  const current = { 'kubernetes.io/os': 'linux', 'coffer.dev/tee.sgx': 'true', 'coffer.dev/epc-mib': '96', 'coffer.dev/attested': 'true', 'coffer.dev/runtime.gvisor': 'true' };
  assert.deepEqual(labelPatch(current, { 'coffer.dev/tee.tdx': 'true' }, false), {
    metadata: { labels: { 'coffer.dev/tee.tdx': 'true', 'coffer.dev/tee.sgx': null, 'coffer.dev/epc-mib': null } },
  });
  // Runtime labels are owned only when the agent reads the containerd config.
  assert.deepEqual(labelPatch(current, { 'coffer.dev/tee.sgx': 'true', 'coffer.dev/epc-mib': '96' }, true), { metadata: { labels: { 'coffer.dev/runtime.gvisor': null } } });
  assert.equal(labelPatch(current, { 'coffer.dev/tee.sgx': 'true', 'coffer.dev/epc-mib': '96' }, false), undefined);
});
