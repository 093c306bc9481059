// The SGX EPC device plugin against a fake kubelet over real gRPC on unix sockets: registration, the kubelet
// dialling back for ListAndWatch / Allocate / GetPreferredAllocation, re-registration after a kubelet restart, and
// health updates when the SGX device disappears.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { DevicePluginServer, checkResourceName } from '../../../src/node/deviceplugin/server.js';
import { SgxEpcSource } from '../../../src/node/deviceplugin/sgx-epc.js';
import { waitFor } from '../../support/wait.js';
import { FakeKubelet } from './fake-kubelet.js';
import { hostTree, sgxHost } from './host-tree.js';

const RESOURCE = 'kubernetes.azure.com/sgx_epc_mem_in_MiB';
const BIN = new URL('../../../bin/coffer.js', import.meta.url).pathname;

async function setup(epcMiB = 8, unitMiB = 1) {
  const t = hostTree();
  sgxHost(t, [epcMiB]);
  const dir = path.join(t.root, 'device-plugins');
  mkdirSync(dir);
  const kubelet = new FakeKubelet(dir);
  await kubelet.start();
  const source = await SgxEpcSource.create({ epcMiB, unitMiB, hostDev: t.dev, healthIntervalMs: 50 });
  const events: string[] = [];
  const plugin = new DevicePluginServer({ dir, endpoint: 'coffer-sgx-epc.sock', resourceName: RESOURCE, source, checkIntervalMs: 50, log: (e) => events.push(e) });
  const cleanup = async () => {
    await plugin.stop();
    await kubelet.stop();
    t.cleanup();
  };
  return { t, dir, kubelet, source, plugin, events, cleanup };
}

test('registers with the kubelet, which dials back: options, ListAndWatch of EPC units, Allocate, preferred allocation', async () => {
  const s = await setup(8, 2);
  try {
    await s.plugin.start();
    assert.equal(s.kubelet.registrations.length, 1);
    const reg = s.kubelet.registrations[0]!;
    assert.deepEqual(reg.request, { version: 'v1beta1', endpoint: 'coffer-sgx-epc.sock', resource_name: RESOURCE, options: { pre_start_required: false, get_preferred_allocation_available: true } });
    assert.deepEqual(await s.kubelet.call(reg, 'GetDevicePluginOptions', {}), { pre_start_required: false, get_preferred_allocation_available: true });
    await waitFor('device list', () => reg.updates.length >= 1);
    assert.deepEqual(reg.updates[0]!.map((d) => [d.ID, d.health]), [['epc-0', 'Healthy'], ['epc-1', 'Healthy'], ['epc-2', 'Healthy'], ['epc-3', 'Healthy']]);

    const alloc = await s.kubelet.call<any>(reg, 'Allocate', { container_requests: [{ devices_ids: ['epc-0', 'epc-3'] }, { devices_ids: ['epc-1'] }] });
    assert.equal(alloc.container_responses.length, 2);
    const c0 = alloc.container_responses[0];
    assert.deepEqual(c0.devices, [
      { container_path: '/dev/sgx_enclave', host_path: '/dev/sgx_enclave', permissions: 'rw' },
      { container_path: '/dev/sgx/enclave', host_path: '/dev/sgx_enclave', permissions: 'rw' },
      { container_path: '/dev/sgx_provision', host_path: '/dev/sgx_provision', permissions: 'rw' },
      { container_path: '/dev/sgx/provision', host_path: '/dev/sgx_provision', permissions: 'rw' },
    ]);
    assert.deepEqual(c0.envs, { COFFER_SGX_EPC_MIB: '4' });
    assert.deepEqual(alloc.container_responses[1].envs, { COFFER_SGX_EPC_MIB: '2' });

    await assert.rejects(s.kubelet.call(reg, 'Allocate', { container_requests: [{ devices_ids: ['epc-9'] }] }), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && /UNKNOWN_DEVICE/.test(e.details));
    await assert.rejects(s.kubelet.call(reg, 'Allocate', { container_requests: [{ devices_ids: [] }] }), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT);

    const pref = await s.kubelet.call<any>(reg, 'GetPreferredAllocation', { container_requests: [{ available_deviceIDs: ['epc-3', 'epc-1', 'epc-2'], must_include_deviceIDs: ['epc-3'], allocation_size: 2 }] });
    assert.deepEqual(pref.container_responses, [{ deviceIDs: ['epc-3', 'epc-1'] }]);
    await assert.rejects(s.kubelet.call(reg, 'GetPreferredAllocation', { container_requests: [{ available_deviceIDs: ['epc-1'], must_include_deviceIDs: [], allocation_size: 5 }] }), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT);
    assert.deepEqual(await s.kubelet.call(reg, 'PreStartContainer', { devices_ids: ['epc-0'] }), {});
  } finally {
    await s.cleanup();
  }
});

test('device gone → Unhealthy on the stream and Allocate refused (fail closed); back → Healthy', async () => {
  const s = await setup(4, 1);
  try {
    await s.plugin.start();
    const reg = s.kubelet.registrations[0]!;
    await waitFor('first list', () => reg.updates.length >= 1);
    s.t.remove('dev/sgx_enclave');
    await waitFor('unhealthy update', () => reg.updates.at(-1)!.every((d) => d.health === 'Unhealthy'), 3000);
    assert.equal(reg.updates.at(-1)!.length, 4);
    await assert.rejects(s.kubelet.call(reg, 'Allocate', { container_requests: [{ devices_ids: ['epc-0'] }] }), (e: grpc.ServiceError) => e.code === grpc.status.FAILED_PRECONDITION && /DEVICE_UNHEALTHY/.test(e.details));
    s.t.file('dev/sgx_enclave');
    await waitFor('healthy again', () => reg.updates.at(-1)!.every((d) => d.health === 'Healthy'), 3000);
  } finally {
    await s.cleanup();
  }
});

test('kubelet restart (directory wiped, kubelet.sock recreated) → the plugin serves again and re-registers', async () => {
  const s = await setup(4, 1);
  try {
    await s.plugin.start();
    assert.equal(s.plugin.registrations, 1);
    await s.kubelet.restart();
    assert.ok(!existsSync(path.join(s.dir, 'coffer-sgx-epc.sock')));
    await waitFor('re-registration', () => s.kubelet.registrations.length === 2, 5000);
    assert.ok(existsSync(path.join(s.dir, 'coffer-sgx-epc.sock')));
    const reg = s.kubelet.registrations[1]!;
    await waitFor('list after restart', () => reg.updates.length >= 1);
    assert.equal(reg.updates[0]!.length, 4);
    const alloc = await s.kubelet.call<any>(reg, 'Allocate', { container_requests: [{ devices_ids: ['epc-2'] }] });
    assert.equal(alloc.container_responses[0].devices[0].host_path, '/dev/sgx_enclave');
    assert.ok(s.events.includes('kubelet-restarted'));
    assert.equal(s.plugin.registrations, 2);
  } finally {
    await s.cleanup();
  }
});

test('plugin waits for kubelet.sock; stop removes the socket; a refused registration rejects start; bad names and sizes', async () => {
  const t = hostTree();
  sgxHost(t, [2]);
  const dir = path.join(t.root, 'dp');
  mkdirSync(dir);
  const source = await SgxEpcSource.create({ epcMiB: 2, unitMiB: 1, hostDev: t.dev, healthIntervalMs: 1000 });
  const plugin = new DevicePluginServer({ dir, endpoint: 'p.sock', resourceName: 'example.com/epc', source, checkIntervalMs: 30 });
  const kubelet = new FakeKubelet(dir);
  try {
    const started = plugin.start();
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(kubelet.registrations.length, 0);
    await kubelet.start();
    await started;
    assert.equal(kubelet.registrations.length, 1);
    await plugin.stop();
    assert.ok(!existsSync(path.join(dir, 'p.sock')));
    await kubelet.stop();

    // A kubelet that does not speak v1beta1 refuses; start() rejects so the command exits (the API's contract).
    const k2 = new FakeKubelet(dir, ['v2']);
    await k2.start();
    const refused = new DevicePluginServer({ dir, endpoint: 'q.sock', resourceName: 'example.com/epc', source: await SgxEpcSource.create({ epcMiB: 2, unitMiB: 1, hostDev: t.dev }), checkIntervalMs: 30 });
    await assert.rejects(refused.start(), (e: Error & { code?: string }) => e.code === 'REGISTRATION_FAILED' && /version v1beta1 is not supported/.test(e.message));
    await refused.stop();
    await k2.stop();
  } finally {
    await plugin.stop();
    await kubelet.stop();
    t.cleanup();
  }
  assert.throws(() => checkResourceName('kubernetes.io/epc'), /reserved kubernetes.io prefix/);
  assert.throws(() => checkResourceName('epc'), /not an extended resource name/);
  await assert.rejects(SgxEpcSource.create({ epcMiB: 0, unitMiB: 1, hostDev: '/nonexistent' }), /holds no 1 MiB unit/);
});

test('coffer agent sgx-device-plugin process: EPC size from sysfs, registers, serves, exits 0 on SIGTERM', async () => {
  const t = hostTree();
  sgxHost(t, [3, 2]);
  const dir = path.join(t.root, 'device-plugins');
  mkdirSync(dir);
  const kubelet = new FakeKubelet(dir);
  await kubelet.start();
  const child = spawn(process.execPath, [BIN, 'agent', 'sgx-device-plugin', '--resource', RESOURCE, '--kubelet-dir', dir, '--host-sys', t.sys, '--host-dev', t.dev], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c) => (err += c));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    await waitFor('registration', () => kubelet.registrations.length === 1, 15_000);
    const reg = kubelet.registrations[0]!;
    assert.equal(reg.request.resource_name, RESOURCE);
    await waitFor('devices', () => reg.updates.length >= 1);
    assert.equal(reg.updates[0]!.length, 5);
    child.kill('SIGTERM');
    assert.equal(await exited, 0, err);
    assert.ok(!existsSync(path.join(dir, 'coffer-sgx-epc.sock')));
  } finally {
    child.kill('SIGKILL');
    await kubelet.stop();
    t.cleanup();
  }
});

test('coffer agent sgx-device-plugin: no EPC in sysfs and no --epc-mib → exit 1 naming the file; bad flags exit 2', async () => {
  const { runCli } = await import('../../../src/cli/run.js');
  const t = hostTree();
  let err = '';
  const io = { out: () => undefined, err: (s: string) => (err += s) };
  try {
    assert.deepEqual(await runCli(['agent', 'sgx-device-plugin', '--resource', RESOURCE, '--host-sys', t.sys, '--kubelet-dir', t.root], io), { kind: 'exit', code: 1 });
    assert.match(err, /NO_EPC: .*sgx_total_bytes not found/);
    assert.deepEqual(await runCli(['agent', 'sgx-device-plugin', '--resource', 'kubernetes.io/epc'], io), { kind: 'exit', code: 2 });
    assert.match(err, /reserved kubernetes.io prefix/);
    assert.deepEqual(await runCli(['agent', 'sgx-device-plugin', '--resource', RESOURCE, '--unit-mib', '0'], io), { kind: 'exit', code: 2 });
    assert.deepEqual(await runCli(['agent', 'sgx-device-plugin'], io), { kind: 'exit', code: 2 });
  } finally {
    t.cleanup();
  }
});

test('re-registration: a kubelet not yet answering is retried; a kubelet refusing the version is fatal', async () => {
  const s = await setup(2, 1);
  const fatal: Error[] = [];
  const plugin = new DevicePluginServer({ dir: s.dir, endpoint: 'r.sock', resourceName: RESOURCE, source: s.source, checkIntervalMs: 40, onFatal: (e) => fatal.push(e) });
  const k2 = new FakeKubelet(s.dir);
  const k3 = new FakeKubelet(s.dir, ['v2']);
  try {
    await plugin.start();
    await s.kubelet.stop();
    for (const f of ['kubelet.sock', 'r.sock']) rmSync(path.join(s.dir, f), { force: true });
    writeFileSync(path.join(s.dir, 'kubelet.sock'), ''); // present but nobody listening: connect fails (UNAVAILABLE)
    await waitFor('re-served', () => existsSync(path.join(s.dir, 'r.sock')), 3000);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(fatal.length, 0);
    rmSync(path.join(s.dir, 'kubelet.sock'));
    await k2.start();
    await waitFor('registered with the new kubelet', () => k2.registrations.length === 1, 5000);
    await k2.stop();
    rmSync(path.join(s.dir, 'kubelet.sock'), { force: true });
    await k3.start();
    await waitFor('fatal refusal', () => fatal.length === 1, 5000);
    assert.match((fatal as Error[])[0]!.message, /not supported/);
  } finally {
    await k2.stop();
    await k3.stop();
    await plugin.stop();
    await s.cleanup();
  }
});
