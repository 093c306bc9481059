// Discovery labels written to the Node through the fake kube-apiserver: merge patch of only what differs, owned
// labels removed when the hardware goes, other labels (kubernetes.io/*, coffer.dev/attested) left alone. Then the
// real `coffer agent` process with the DaemonSet's flags keeping a node in step as its fake host changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { startFakeApiServer } from '../../support/fake-apiserver.js';
import { makeNode } from '../../support/k8s-objects.js';
import { waitFor } from '../../support/wait.js';
import { KubeRest } from '../../../src/k8s/kube-rest.js';
import { reconcileNodeLabels } from '../../../src/node/discovery/node-labeler.js';
import { hostTree, sgxHost } from './host-tree.js';

const BIN = new URL('../../../bin/coffer.js', import.meta.url).pathname;

test('reconcile: merge-patches the labels, removes owned ones that no longer apply, writes nothing when in step', async () => {
  const fake = await startFakeApiServer();
  const t = hostTree();
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser({ name: 'fake', server: fake.url, skipTLSVerify: true }, { name: 'u' });
  const rest = await KubeRest.fromKubeConfig(kc);
  const writes: string[] = [];
  fake.beforeRequest = (m) => m !== 'GET' && writes.push(m);
  try {
    fake.put('nodes', makeNode('sgx-1', { labels: { 'kubernetes.io/os': 'linux', 'coffer.dev/attested': 'true', 'coffer.dev/tee.snp': 'true' } }));
    sgxHost(t, [64, 64]);
    const opts = { host: t, nodeName: 'sgx-1' };
    const r1 = await reconcileNodeLabels(rest, opts);
    assert.deepEqual(r1.patch, { metadata: { labels: { 'coffer.dev/tee.sgx': 'true', 'coffer.dev/sgx.flc': 'true', 'coffer.dev/epc-mib': '128', 'coffer.dev/tee.snp': null } } });
    const labels = () => fake.store.get('/nodes', 'sgx-1')!.metadata.labels;
    assert.deepEqual(labels(), { 'kubernetes.io/hostname': 'sgx-1', 'kubernetes.io/os': 'linux', 'coffer.dev/attested': 'true', 'coffer.dev/tee.sgx': 'true', 'coffer.dev/sgx.flc': 'true', 'coffer.dev/epc-mib': '128' });
    assert.deepEqual(writes, ['PATCH']);

    const r2 = await reconcileNodeLabels(rest, opts);
    assert.equal(r2.patch, undefined);
    assert.deepEqual(writes, ['PATCH'], 'no write when already in step');

    t.remove('dev/sgx_enclave');
    t.remove('dev/sgx_provision');
    await reconcileNodeLabels(rest, opts);
    assert.deepEqual(labels(), { 'kubernetes.io/hostname': 'sgx-1', 'kubernetes.io/os': 'linux', 'coffer.dev/attested': 'true' });

    await assert.rejects(reconcileNodeLabels(rest, { host: t, nodeName: 'missing' }), (e: Error & { code?: number }) => e.code === 404);
    // runtime labels from a config; then the config goes unreadable: runtime labels stay (never "no runtimes"),
    // the error is reported, and TEE labels still follow the host
    t.file('ctd/config.toml', 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc]\nruntime_type = "io.containerd.runsc.v1"\n');
    await reconcileNodeLabels(rest, { ...opts, containerdConfig: path.join(t.root, 'ctd/config.toml') });
    assert.equal(labels()['coffer.dev/runtime.runsc'], 'true');
    assert.equal(labels()['coffer.dev/runtime.runc'], 'true');
    t.file('dev/tdx_guest');
    const bad = await reconcileNodeLabels(rest, { ...opts, containerdConfig: path.join(t.root, 'nope.toml') });
    assert.match(bad.runtimeError ?? '', /containerd config .* could not be read/);
    assert.equal(labels()['coffer.dev/runtime.runsc'], 'true', 'runtime labels left alone');
    assert.equal(labels()['coffer.dev/tee.tdx'], 'true', 'TEE labels still reconciled');
    t.file('ctd/config.toml', 'version = 2\n[plugins\n');
    assert.match((await reconcileNodeLabels(rest, { ...opts, containerdConfig: path.join(t.root, 'ctd/config.toml') })).runtimeError ?? '', /not valid TOML/);
    assert.equal(labels()['coffer.dev/runtime.runsc'], 'true');
  } finally {
    rest.close();
    t.cleanup();
    await fake.close();
  }
});

test('coffer agent (DaemonSet flags): labels the node, follows host changes, stops on SIGTERM', async () => {
  const fake = await startFakeApiServer();
  const t = hostTree();
  const kubeconfig = path.join(t.root, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    `apiVersion: v1\nkind: Config\nclusters: [{name: fake, cluster: {server: "${fake.url}"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: fake, user: u}}]\ncurrent-context: c\n`,
  );
  fake.put('nodes', makeNode('worker-1', { labels: { 'kubernetes.io/os': 'linux' } }));
  t.file('dev/tdx_guest');
  t.file('sys/kernel/config/tsm/report/.keep');
  const child = spawn(process.execPath, [BIN, 'agent', '--host-sys', t.sys, '--host-dev', t.dev, '--kubeconfig', kubeconfig, '--interval', '150ms'], {
    env: { ...process.env, NODE_NAME: 'worker-1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (c) => (err += c));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    const labels = () => fake.store.get('/nodes', 'worker-1')!.metadata.labels as Record<string, string>;
    await waitFor('tdx labels', () => labels()['coffer.dev/tee.tdx'] === 'true', 15_000);
    assert.equal(labels()['coffer.dev/tsm-report'], 'true');
    t.remove('dev/tdx_guest');
    t.file('dev/tpmrm0');
    t.file('sys/class/tpm/tpm0/tpm_version_major', '2');
    await waitFor('tpm labels, tdx gone', () => labels()['coffer.dev/tee.tpm'] === 'true' && !('coffer.dev/tee.tdx' in labels()), 5000);
    assert.equal(labels()['coffer.dev/tpm.version'], '2');
    assert.match(err, /"event":"labels-updated"/);
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  } finally {
    child.kill('SIGKILL');
    t.cleanup();
    await fake.close();
  }
});

test('coffer agent: usage errors before any API call', async () => {
  const { runCli } = await import('../../../src/cli/run.js');
  let err = '';
  const io = { out: () => undefined, err: (s: string) => (err += s) };
  const env = process.env.NODE_NAME;
  delete process.env.NODE_NAME;
  try {
    assert.deepEqual(await runCli(['agent', '--kubeconfig', '/dev/null'], io), { kind: 'exit', code: 2 });
    assert.match(err, /--node-name or \$NODE_NAME is required/);
    assert.deepEqual(await runCli(['agent', '--node-name', 'Bad_Node'], io), { kind: 'exit', code: 2 });
    assert.match(err, /not a valid Kubernetes name/);
    assert.deepEqual(await runCli(['agent', '--interval', 'soon', '--node-name', 'n'], io), { kind: 'exit', code: 2 });
  } finally {
    if (env !== undefined) process.env.NODE_NAME = env;
  }
});
