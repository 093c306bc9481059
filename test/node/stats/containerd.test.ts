// The stats exporter and runtime discovery against a real containerd (CRI v1) started by this suite: pods on runc
// and a second handler, real pod-to-pod traffic over a CNI bridge and O_DIRECT+fsync disk writes, then the
// exporter's numbers must have moved by at least what was done; a deleted pod leaves /metrics; a containerd that
// is killed and restarted is survived. Skips (with the reason) where containerd cannot run: not root, not installed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { containerdUnavailable, execSync, removePod, runPod, startContainerd, type Containerd } from '../../support/containerd.js';
import { pick, scrape, spawnStats, type Sample, type StatsProcess } from '../../support/stats.js';
import { waitFor } from '../../support/wait.js';
import { containerdConfigHandlers } from '../../../src/node/discovery/containerd-config.js';
import { criRuntimeHandlers } from '../../../src/node/discovery/cri-handlers.js';
import { runtimeLabels } from '../../../src/node/discovery/labels.js';
import { CriClient } from '../../../src/node/stats/cri-client.js';

const skip = containerdUnavailable();
if (skip) console.log(`# SKIP real-containerd stats tests: ${skip}`);

const MiB = 1024 * 1024;
const SERVE = 'mkdir -p /www && head -c 6291456 /dev/urandom > /www/big && exec httpd -f -p 8080 -h /www';
const IDLE = 'while :; do sleep 3600; done';

let ctd: Containerd | undefined;
let stats: StatsProcess | undefined;
let server: { podId: string; containerId: string; ip: string } | undefined;
let client: { podId: string; containerId: string; ip: string } | undefined;
let second = '';

before(async () => {
  if (skip) return;
  ctd = await startContainerd();
  second = ctd.handlers.find((h) => h !== 'runc')!;
  server = await runPod(ctd, { name: 'server', namespace: 'stats-test', handler: 'runc', script: SERVE });
  client = await runPod(ctd, { name: 'client', namespace: 'stats-test', handler: second, script: IDLE, labels: { 'coffer.dev/isolation': 'sandbox' } });
  stats = await spawnStats(['--cri-endpoint', ctd.endpoint, '--listen', '127.0.0.1:0', '--cgroup-root', '/sys/fs/cgroup']);
});

after(async () => {
  const code = await stats?.stop();
  await ctd?.stop();
  if (stats) assert.equal(code, 0, `exporter exit: ${stats.stderr()}`);
});

const podSel = (pod: string) => ({ namespace: 'stats-test', pod });
const ctrSel = (pod: string) => ({ ...podSel(pod), container: 'work' });
const net = (s: Sample[], pod: string, name: string) => pick(s, name, { ...podSel(pod), interface: 'eth0' }) ?? NaN;

test('per-pod and per-container series carry namespace, pod, container, runtime_class and isolation labels', { skip }, async () => {
  const s = await waitFor<Sample[] | undefined>('both pods in /metrics', async () => {
    const x = await scrape(stats!.url);
    return pick(x, 'coffer_pod_container_cpu_usage_seconds_total', ctrSel('server')) !== undefined && pick(x, 'coffer_pod_container_cpu_usage_seconds_total', ctrSel('client')) !== undefined ? x : undefined;
  }, 30_000, 250).then((x) => x!);
  assert.equal(pick(s, 'coffer_stats_cri_up', {}), 1);
  const srv = s.find((x) => x.name === 'coffer_pod_container_memory_working_set_bytes' && x.labels.pod === 'server')!;
  assert.deepEqual(srv.labels, { namespace: 'stats-test', pod: 'server', container: 'work', runtime_class: 'runc', isolation: '' });
  const cli = s.find((x) => x.name === 'coffer_pod_container_memory_working_set_bytes' && x.labels.pod === 'client')!;
  assert.deepEqual(cli.labels, { namespace: 'stats-test', pod: 'client', container: 'work', runtime_class: second, isolation: 'sandbox' });
  assert.ok(srv.value > 0 && cli.value > 0, 'memory working set is reported');
  assert.ok((pick(s, 'coffer_pod_container_processes', ctrSel('server')) ?? 0) >= 1, `httpd is a process: ${JSON.stringify(s.filter((x) => x.labels.pod === 'server' && x.labels.container))}`);
  assert.ok((pick(s, 'coffer_pod_container_cpu_usage_seconds_total', ctrSel('server')) ?? 0) > 0, 'generating 6 MiB of urandom took CPU');
});

test('network: bytes and packets served pod to pod over the bridge show on both pods, at least what was sent', { skip }, async () => {
  const s0 = await scrape(stats!.url);
  const r = await execSync(ctd!, client!.containerId, ['sh', '-c', `for i in 1 2 3; do wget -q -O /dev/null http://${server!.ip}:8080/big || exit 1; done`]);
  assert.equal(r.exit_code, 0, r.stderr);
  const sent = 3 * 6 * MiB;
  const s1 = await scrape(stats!.url);
  const d = (pod: string, name: string) => net(s1, pod, name) - net(s0, pod, name);
  assert.ok(d('server', 'coffer_pod_network_transmit_bytes_total') >= sent, `server tx moved ${d('server', 'coffer_pod_network_transmit_bytes_total')} < ${sent}`);
  assert.ok(d('client', 'coffer_pod_network_receive_bytes_total') >= sent, `client rx moved ${d('client', 'coffer_pod_network_receive_bytes_total')} < ${sent}`);
  // veth segments with GSO/GRO: at most 64 KiB per counted packet, so that many bytes are at least this many
  assert.ok(d('server', 'coffer_pod_network_transmit_packets_total') >= Math.floor(sent / 65536), `server tx packets moved ${d('server', 'coffer_pod_network_transmit_packets_total')}`);
  assert.ok(d('client', 'coffer_pod_network_receive_packets_total') >= Math.floor(sent / 65536), `client rx packets moved ${d('client', 'coffer_pod_network_receive_packets_total')}`);
  assert.equal(d('client', 'coffer_pod_network_receive_errors_total'), 0, 'no receive errors');
  // CRI's own pod network stats (containerd 1.6 has bytes, no packets) agree with the netns counters
  const cri = await ctd!.cri.call<{ stats: { attributes: { id: string }; linux: { network?: { default_interface?: { name: string; rx_bytes?: { value: number } } } } }[] }>('ListPodSandboxStats', { filter: {} });
  const criRx = cri.stats.find((x) => x.attributes.id === client!.podId)?.linux.network?.default_interface?.rx_bytes?.value;
  assert.ok(criRx !== undefined && criRx >= net(s0, 'client', 'coffer_pod_network_receive_bytes_total') + sent, `CRI rx ${criRx}`);
});

test('block IO: O_DIRECT + fsync writes and O_DIRECT reads count in the container, at least the bytes done', { skip }, async () => {
  const s0 = await scrape(stats!.url);
  const size = 8 * MiB;
  const r = await execSync(ctd!, client!.containerId, ['sh', '-c', 'dd if=/dev/zero of=/root/io bs=1M count=8 oflag=direct conv=fsync 2>&1 && dd if=/root/io of=/dev/null bs=1M iflag=direct 2>&1']);
  assert.equal(r.exit_code, 0, r.stdout + r.stderr);
  const s1 = await scrape(stats!.url);
  const d = (name: string) => (pick(s1, name, ctrSel('client')) ?? NaN) - (pick(s0, name, ctrSel('client')) ?? NaN);
  assert.ok(d('coffer_pod_container_blkio_write_bytes_total') >= size, `write bytes moved ${d('coffer_pod_container_blkio_write_bytes_total')}`);
  assert.ok(d('coffer_pod_container_blkio_write_ops_total') >= 8, `write ops moved ${d('coffer_pod_container_blkio_write_ops_total')}`);
  assert.ok(d('coffer_pod_container_blkio_read_bytes_total') >= size, `read bytes moved ${d('coffer_pod_container_blkio_read_bytes_total')}`);
  assert.ok(d('coffer_pod_container_blkio_read_ops_total') >= 8);
});

test('discovery: the containerd config and CRI Status both list exactly the configured handlers', { skip }, async () => {
  assert.deepEqual(await containerdConfigHandlers(ctd!.configPath), ctd!.handlers);
  const cri = new CriClient(ctd!.endpoint);
  try {
    assert.deepEqual(await criRuntimeHandlers(cri), ctd!.handlers);
  } finally {
    cri.close();
  }
  assert.deepEqual(Object.keys(runtimeLabels(ctd!.handlers).labels).sort(), ctd!.handlers.map((h) => `coffer.dev/runtime.${h}`).sort());
});

test('a deleted pod disappears from /metrics', { skip }, async () => {
  await removePod(ctd!, server!.podId);
  const s = await scrape(stats!.url);
  assert.equal(s.filter((x) => x.labels.pod === 'server').length, 0, 'no series of the deleted pod');
  assert.ok(s.some((x) => x.labels.pod === 'client'));
  assert.equal(pick(s, 'coffer_stats_pods', {}), 1);
});

test('containerd killed: cri_up 0 and no pod series, the exporter keeps serving; restarted: back with the same pods', { skip }, async () => {
  await ctd!.kill();
  const down = await scrape(stats!.url);
  assert.equal(pick(down, 'coffer_stats_cri_up', {}), 0);
  assert.equal(down.filter((x) => x.labels.pod).length, 0);
  assert.match(stats!.stderr(), /"event":"cri-failed"/);
  await ctd!.restart();
  const up = await waitFor<Sample[] | undefined>('exporter back after the restart', async () => {
    const s = await scrape(stats!.url);
    return pick(s, 'coffer_stats_cri_up', {}) === 1 ? s : undefined;
  }, 60_000, 500).then((x) => x!);
  assert.ok(pick(up, 'coffer_pod_container_cpu_usage_seconds_total', ctrSel('client')) !== undefined);
  assert.match(stats!.stderr(), /"event":"cri-recovered"/);
  assert.ok(stats!.child.exitCode === null && stats!.child.signalCode === null, 'never exited');
});
