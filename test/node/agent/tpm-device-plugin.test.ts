// The shared TPM device plugin (coffer.dev/tpm) against the fake kubelet over real gRPC on unix sockets: N
// interchangeable units all backed by /dev/tpmrm0, Allocate hands out the device (and the event log directory when
// the host has one), fails closed when the device is gone, and the `coffer agent tpm-device-plugin` process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { DevicePluginServer } from '../../../src/node/deviceplugin/server.js';
import { TpmDeviceSource, TPM_RESOURCE } from '../../../src/node/deviceplugin/tpm.js';
import { DevicePluginError } from '../../../src/node/deviceplugin/errors.js';
import { runCli } from '../../../src/cli/run.js';
import { waitFor } from '../../support/wait.js';
import { FakeKubelet } from './fake-kubelet.js';
import { hostTree } from './host-tree.js';

const BIN = new URL('../../../bin/coffer.js', import.meta.url).pathname;

async function setup(o: { eventLog: boolean; shares?: number }) {
  const t = hostTree();
  t.file('dev/tpmrm0');
  if (o.eventLog) t.file('sys/kernel/security/tpm0/binary_bios_measurements', 'log');
  const dir = path.join(t.root, 'device-plugins');
  mkdirSync(dir);
  const kubelet = new FakeKubelet(dir);
  await kubelet.start();
  const source = await TpmDeviceSource.create({ shares: o.shares ?? 3, hostDev: t.dev, hostSys: t.sys, healthIntervalMs: 50 });
  const plugin = new DevicePluginServer({ dir, endpoint: 'coffer-tpm.sock', resourceName: TPM_RESOURCE, source, checkIntervalMs: 50 });
  return {
    t, dir, kubelet, source, plugin,
    cleanup: async () => {
      await plugin.stop();
      await kubelet.stop();
      t.cleanup();
    },
  };
}

test('coffer.dev/tpm: N shared units, Allocate returns /dev/tpmrm0 (+ event log mount), preferred allocation', async () => {
  const s = await setup({ eventLog: true });
  try {
    await s.plugin.start();
    const reg = s.kubelet.registrations[0]!;
    assert.equal(reg.request.resource_name, 'coffer.dev/tpm');
    assert.equal(reg.request.endpoint, 'coffer-tpm.sock');
    await waitFor('device list', () => reg.updates.length >= 1);
    assert.deepEqual(reg.updates[0]!.map((d) => [d.ID, d.health]), [['tpm-0', 'Healthy'], ['tpm-1', 'Healthy'], ['tpm-2', 'Healthy']]);
    // Two containers (the agent and the quote helper), each holding a unit: the same device for both.
    const alloc = await s.kubelet.call<any>(reg, 'Allocate', { container_requests: [{ devices_ids: ['tpm-0'] }, { devices_ids: ['tpm-2', 'tpm-1'] }] });
    for (const c of alloc.container_responses) {
      assert.deepEqual(c.devices, [{ container_path: '/dev/tpmrm0', host_path: '/dev/tpmrm0', permissions: 'rw' }]);
      assert.deepEqual(c.mounts, [{ container_path: '/run/coffer/tpm0', host_path: '/sys/kernel/security/tpm0', read_only: true }]);
      assert.deepEqual(c.envs, { COFFER_TPM_DEVICE: '/dev/tpmrm0', COFFER_TPM_EVENT_LOG: '/run/coffer/tpm0/binary_bios_measurements' });
    }
    await assert.rejects(s.kubelet.call(reg, 'Allocate', { container_requests: [{ devices_ids: ['tpm-7'] }] }), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && /UNKNOWN_DEVICE/.test(e.details));
    await assert.rejects(s.kubelet.call(reg, 'Allocate', { container_requests: [{ devices_ids: ['tpm-1', 'tpm-1'] }] }), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT);
    await assert.rejects(s.kubelet.call(reg, 'Allocate', { container_requests: [{ devices_ids: [] }] }), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT);
    const pref = await s.kubelet.call<any>(reg, 'GetPreferredAllocation', { container_requests: [{ available_deviceIDs: ['tpm-2', 'tpm-1'], must_include_deviceIDs: [], allocation_size: 1 }] });
    assert.deepEqual(pref.container_responses, [{ deviceIDs: ['tpm-1'] }]);
  } finally {
    await s.cleanup();
  }
});

test('no event log on the host → device only; device gone → Unhealthy and Allocate refused; back → Healthy', async () => {
  const s = await setup({ eventLog: false, shares: 2 });
  try {
    await s.plugin.start();
    const reg = s.kubelet.registrations[0]!;
    await waitFor('first list', () => reg.updates.length >= 1);
    const a = await s.kubelet.call<any>(reg, 'Allocate', { container_requests: [{ devices_ids: ['tpm-0'] }] });
    assert.deepEqual(a.container_responses[0].mounts, []);
    assert.deepEqual(a.container_responses[0].envs, { COFFER_TPM_DEVICE: '/dev/tpmrm0' });
    s.t.remove('dev/tpmrm0');
    await waitFor('unhealthy update', () => reg.updates.at(-1)!.every((d) => d.health === 'Unhealthy'), 3000);
    await assert.rejects(s.kubelet.call(reg, 'Allocate', { container_requests: [{ devices_ids: ['tpm-0'] }] }), (e: grpc.ServiceError) => e.code === grpc.status.FAILED_PRECONDITION && /DEVICE_UNHEALTHY/.test(e.details));
    s.t.file('dev/tpmrm0');
    await waitFor('healthy again', () => reg.updates.at(-1)!.every((d) => d.health === 'Healthy'), 3000);
  } finally {
    await s.cleanup();
  }
  await assert.rejects(TpmDeviceSource.create({ shares: 0, hostDev: '/nonexistent', hostSys: '/nonexistent' }), (e: unknown) => e instanceof DevicePluginError && e.code === 'BAD_REQUEST');
  await assert.rejects(TpmDeviceSource.create({ shares: 65, hostDev: '/nonexistent', hostSys: '/nonexistent' }), (e: unknown) => e instanceof DevicePluginError && e.code === 'BAD_REQUEST');
});

test('coffer agent tpm-device-plugin process: registers coffer.dev/tpm, serves, exits 0 on SIGTERM; bad flags exit 2', async () => {
  const t = hostTree();
  t.file('dev/tpmrm0');
  const dir = path.join(t.root, 'device-plugins');
  mkdirSync(dir);
  const kubelet = new FakeKubelet(dir);
  await kubelet.start();
  const child = spawn(process.execPath, [BIN, 'agent', 'tpm-device-plugin', '--kubelet-dir', dir, '--host-sys', t.sys, '--host-dev', t.dev, '--shares', '5'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c) => (err += c));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    await waitFor('registration', () => kubelet.registrations.length === 1, 15_000);
    const reg = kubelet.registrations[0]!;
    assert.equal(reg.request.resource_name, 'coffer.dev/tpm');
    await waitFor('devices', () => reg.updates.length >= 1);
    assert.equal(reg.updates[0]!.length, 5);
    child.kill('SIGTERM');
    assert.equal(await exited, 0, err);
    assert.ok(!existsSync(path.join(dir, 'coffer-tpm.sock')));
  } finally {
    child.kill('SIGKILL');
    await kubelet.stop();
    t.cleanup();
  }
  let out = '';
  for (const args of [['--shares', '0'], ['--shares', '100'], ['--resource', 'kubernetes.io/tpm']]) {
    out = '';
    const r = await runCli(['agent', 'tpm-device-plugin', '--kubelet-dir', '/nonexistent', ...args], { out: () => undefined, err: (s) => (out += s) });
    assert.deepEqual(r, { kind: 'exit', code: 2 }, `${args.join(' ')}: ${out}`);
  }
});
