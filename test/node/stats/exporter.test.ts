// The exporter against a fake CRI server (the proto's wire format) and cgroup trees on disk: label sets, the
// cgroup fallback for a runtime without ListContainerStats (cgroup v2), pods dropped when gone, a CRI socket that
// accepts and never answers (deadline, backoff, no crash), a runtime that goes away and comes back, bad flags.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CriClient, parseCriEndpoint } from '../../../src/node/stats/cri-client.js';
import { StatsExporter, parseListen } from '../../../src/node/stats/exporter.js';
import { MAX_POD_INTERFACES, podIsolation } from '../../../src/node/stats/collector.js';
import { StatsError } from '../../../src/node/stats/errors.js';
import { startFakeCri, writeV1Container, type FakePod } from '../../support/fake-cri.js';
import { parseMetrics, pick } from '../../support/stats.js';
import { cli } from '../../support/cli.js';

function scratch() {
  const dir = mkdtempSync(path.join(tmpdir(), 'coffer-stats-'));
  const write = (f: string, t: string) => {
    mkdirSync(path.dirname(f), { recursive: true });
    writeFileSync(f, t);
  };
  return { dir, write, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function pods(n: number): FakePod[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `pod${i}`,
    name: `web-${i}`,
    namespace: 'shop',
    uid: `uid${i}`,
    handler: i % 2 ? 'kata' : '',
    pid: process.pid,
    labels: (i === 1 ? { 'coffer.dev/isolation': 'sandbox' } : {}) as Record<string, string>,
    annotations: (i === 2 ? { 'coffer.dev/decision': JSON.stringify({ isolation: 'confidential-vm', profile: 'x' }) } : {}) as Record<string, string>,
    containers: [{ id: `ctr${i}`, name: 'app', cgroupsPath: `/kubepods/pod${i}/ctr${i}`, cpuNs: (i + 1) * 1e9, workingSet: (i + 1) * 1e6 }],
  }));
}

const logs = () => {
  const lines: { event: string; detail?: Record<string, unknown> }[] = [];
  return { lines, log: (event: string, detail?: Record<string, unknown>) => void lines.push({ event, detail }) };
};

test('labels per pod and container (runtime_class from the handler, isolation from label or admission decision); blkio and pids from cgroup v1 files; CPU and memory from CRI', async () => {
  const s = scratch();
  const fake = await startFakeCri(path.join(s.dir, 'cri.sock'), pods(3));
  for (let i = 0; i < 3; i++) writeV1Container(s.dir, `/kubepods/pod${i}/ctr${i}`, i + 1, s.write);
  const { log } = logs();
  const ex = new StatsExporter({ cri: new CriClient(`unix://${fake.socket}`), cgroupRoot: s.dir, cgroupVersion: 1, procRoot: '/proc', listen: { host: '127.0.0.1', port: 0 }, log });
  try {
    const m = parseMetrics(await ex.scrape());
    const c1 = { namespace: 'shop', pod: 'web-1', container: 'app', runtime_class: 'kata', isolation: 'sandbox' };
    assert.equal(pick(m, 'coffer_pod_container_cpu_usage_seconds_total', c1), 2);
    assert.equal(pick(m, 'coffer_pod_container_memory_working_set_bytes', c1), 2e6);
    assert.equal(pick(m, 'coffer_pod_container_blkio_read_bytes_total', c1), 2 * 4096);
    assert.equal(pick(m, 'coffer_pod_container_blkio_write_bytes_total', c1), 2 * 8192);
    assert.equal(pick(m, 'coffer_pod_container_blkio_write_ops_total', c1), 4);
    assert.equal(pick(m, 'coffer_pod_container_processes', c1), 3);
    assert.equal(pick(m, 'coffer_pod_container_cpu_usage_seconds_total', { pod: 'web-0', runtime_class: 'default', isolation: '' }), 1);
    assert.equal(pick(m, 'coffer_pod_container_cpu_usage_seconds_total', { pod: 'web-2', isolation: 'confidential-vm' }), 3);
    // the pod netns counters come from /proc/<sandbox pid>/net/dev (here this process's own namespace)
    assert.ok(m.some((x) => x.name === 'coffer_pod_network_receive_packets_total' && x.labels.pod === 'web-0'));
    assert.equal(pick(m, 'coffer_stats_pods', {}), 3);
    // facts asked once per sandbox/container, not per scrape
    await ex.scrape();
    assert.equal(fake.calls.get('PodSandboxStatus'), 3);
    assert.equal(fake.calls.get('ContainerStatus'), 3);
    // a container's pod is learned once from ListContainers: steady samples ask ListContainerStats alone
    assert.equal(fake.calls.get('ListContainers'), 1);
    // a new container is an id the stats have not named before: the list is asked again, once
    fake.pods[0]!.containers.push({ id: 'ctr0b', name: 'sidecar', cgroupsPath: '/kubepods/pod0/ctr0b', cpuNs: 7e9, workingSet: 7e6 });
    assert.equal(pick(parseMetrics(await ex.scrape()), 'coffer_pod_container_cpu_usage_seconds_total', { pod: 'web-0', container: 'sidecar' }), 7);
    await ex.scrape();
    assert.equal(fake.calls.get('ListContainers'), 2);
    // a container that stops leaves the stats list and its series go
    fake.pods[0]!.containers.pop();
    assert.equal(pick(parseMetrics(await ex.scrape()), 'coffer_pod_container_cpu_usage_seconds_total', { container: 'sidecar' }), undefined);
    // a pod that goes is dropped at once, with its cached facts
    fake.pods.splice(1, 1);
    const after = parseMetrics(await ex.scrape());
    assert.equal(after.filter((x) => x.labels.pod === 'web-1').length, 0);
    assert.equal(pick(after, 'coffer_stats_pods', {}), 2);
  } finally {
    await ex.stop();
    await fake.stop();
    s.cleanup();
  }
});

test('cgroup v2 and a runtime without ListContainerStats / ListPodSandboxStats netns: CPU and memory from cpu.stat and memory.current, network from CRI', async () => {
  const s = scratch();
  const p = pods(1);
  p[0]!.pid = 999_999_999; // no such process: the netns cannot be read
  const fake = await startFakeCri(path.join(s.dir, 'cri.sock'), p);
  fake.unimplemented.add('ListContainerStats');
  const cg = path.join(s.dir, 'cg');
  s.write(path.join(cg, 'cgroup.controllers'), 'cpu io memory pids\n');
  const d = path.join(cg, 'kubepods/pod0/ctr0');
  s.write(path.join(d, 'cpu.stat'), 'usage_usec 4500000\nuser_usec 1\n');
  s.write(path.join(d, 'memory.current'), '3000000\n');
  s.write(path.join(d, 'memory.stat'), 'inactive_file 1000000\n');
  s.write(path.join(d, 'io.stat'), '8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n');
  s.write(path.join(d, 'pids.current'), '4\n');
  const ex = new StatsExporter({ cri: new CriClient(`unix://${fake.socket}`), cgroupRoot: cg, cgroupVersion: 2, procRoot: '/proc', listen: { host: '127.0.0.1', port: 0 }, log: () => {} });
  try {
    const m = parseMetrics(await ex.scrape());
    const c = { pod: 'web-0', container: 'app' };
    assert.equal(pick(m, 'coffer_pod_container_cpu_usage_seconds_total', c), 4.5);
    assert.equal(pick(m, 'coffer_pod_container_memory_working_set_bytes', c), 2e6);
    assert.equal(pick(m, 'coffer_pod_container_blkio_write_bytes_total', c), 200);
    assert.equal(pick(m, 'coffer_pod_container_processes', c), 4);
    assert.equal(pick(m, 'coffer_pod_network_transmit_bytes_total', { pod: 'web-0', interface: 'eth0' }), 2000);
    // CRI has no packet counts: none are made up
    assert.equal(pick(m, 'coffer_pod_network_transmit_packets_total', { pod: 'web-0' }), undefined);
    await ex.scrape();
    assert.equal(fake.calls.get('ListContainerStats'), 1, 'an unimplemented call is not asked again');
  } finally {
    await ex.stop();
    await fake.stop();
    s.cleanup();
  }
});

test('a CRI socket that accepts and never answers: each scrape returns within the deadline, cri_up 0, one try per backoff step; then the runtime comes back', async () => {
  const s = scratch();
  const sock = path.join(s.dir, 'hang.sock');
  const held: Socket[] = [];
  const hang = createServer((c) => void held.push(c));
  await new Promise<void>((r) => hang.listen(sock, r));
  let now = 0;
  const { lines, log } = logs();
  const ex = new StatsExporter({ cri: new CriClient(`unix://${sock}`, { timeoutMs: 300 }), cgroupRoot: s.dir, cgroupVersion: 1, procRoot: '/proc', listen: { host: '127.0.0.1', port: 0 }, log, backoff: { initialMs: 1000, maxMs: 4000 }, now: () => now });
  try {
    const t0 = Date.now();
    const m = parseMetrics(await ex.scrape());
    assert.ok(Date.now() - t0 < 5000, 'the deadline ends the call');
    assert.equal(pick(m, 'coffer_stats_cri_up', {}), 0);
    assert.equal(pick(m, 'coffer_stats_cri_errors_total', {}), 1);
    assert.equal(lines.filter((l) => l.event === 'cri-failed').length, 1);
    // inside the backoff window nothing is asked
    now = 999;
    await ex.scrape();
    assert.equal(lines.filter((l) => l.event === 'cri-failed').length, 1);
    now = 1000;
    await ex.scrape();
    const fails = lines.filter((l) => l.event === 'cri-failed');
    assert.equal(fails.length, 2);
    assert.equal(fails[1]!.detail!.retry_in_ms, 2000, 'the backoff doubles');
    // the "runtime" restarts as a real CRI server on the same socket
    hang.close();
    for (const c of held) c.destroy();
    const fake = await startFakeCri(sock, pods(1));
    try {
      now = 3000;
      let up = 0;
      for (let i = 0; i < 40 && up !== 1; i++) {
        now += 5000;
        up = pick(parseMetrics(await ex.scrape()), 'coffer_stats_cri_up', {}) ?? 0;
        if (up !== 1) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(up, 1);
      assert.ok(lines.some((l) => l.event === 'cri-recovered'));
    } finally {
      await fake.stop();
    }
  } finally {
    await ex.stop();
    hang.close();
    s.cleanup();
  }
});

test('HTTP: /metrics and /healthz over a real listener; other paths 404, other methods 405', async () => {
  const s = scratch();
  const fake = await startFakeCri(path.join(s.dir, 'cri.sock'), pods(1));
  const ex = new StatsExporter({ cri: new CriClient(`unix://${fake.socket}`), cgroupRoot: s.dir, cgroupVersion: 1, procRoot: '/proc', listen: { host: '127.0.0.1', port: 0 }, log: () => {} });
  try {
    const a = await ex.start();
    const base = `http://127.0.0.1:${a.port}`;
    const r = await fetch(`${base}/metrics`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /text\/plain; version=0.0.4/);
    assert.match(await r.text(), /coffer_pod_container_cpu_usage_seconds_total\{namespace="shop",pod="web-0",container="app",runtime_class="default",isolation=""\} 1\n/);
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await fetch(`${base}/nope`)).status, 404);
    assert.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405);
  } finally {
    await ex.stop();
    await fake.stop();
    s.cleanup();
  }
});

test('a pod with many interfaces in its netns exports at most MAX_POD_INTERFACES of them, eth0 first', async () => {
  const s = scratch();
  const p = pods(1);
  p[0]!.pid = 4242;
  const lines = Array.from({ length: 50 }, (_, i) => `  dummy${String(i).padStart(2, '0')}: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0`);
  s.write(path.join(s.dir, 'proc/4242/net/dev'), `h1\nh2\n${lines.join('\n')}\n  eth0: 5 5 0 0 0 0 0 0 6 6 0 0 0 0 0 0\n`);
  const fake = await startFakeCri(path.join(s.dir, 'cri.sock'), p);
  const ex = new StatsExporter({ cri: new CriClient(`unix://${fake.socket}`), cgroupRoot: s.dir, cgroupVersion: 1, procRoot: path.join(s.dir, 'proc'), listen: { host: '127.0.0.1', port: 0 }, log: () => {} });
  try {
    const m = parseMetrics(await ex.scrape()).filter((x) => x.name === 'coffer_pod_network_receive_bytes_total');
    assert.equal(m.length, MAX_POD_INTERFACES);
    assert.equal(m[0]!.labels.interface, 'eth0');
    assert.equal(m[0]!.value, 5);
  } finally {
    await ex.stop();
    await fake.stop();
    s.cleanup();
  }
});

test('inputs: endpoint and listen address are checked; unknown isolation values do not become labels', async () => {
  assert.equal(parseCriEndpoint('unix:///run/containerd/containerd.sock'), 'unix:///run/containerd/containerd.sock');
  assert.throws(() => parseCriEndpoint('tcp://1.2.3.4:1'), StatsError);
  assert.throws(() => parseCriEndpoint('unix://relative.sock'), StatsError);
  assert.deepEqual(parseListen('[::1]:9464'), { host: '::1', port: 9464 });
  assert.throws(() => parseListen('127.0.0.1'), StatsError);
  assert.throws(() => parseListen('127.0.0.1:70000'), StatsError);
  assert.equal(podIsolation({ labels: { 'coffer.dev/isolation': 'x'.repeat(100) } }), '');
  assert.equal(podIsolation({ annotations: { 'coffer.dev/decision': '{not json' } }), '');
  const bad = await cli(['agent', 'stats', '--cri-endpoint', 'tcp://10.0.0.1:1']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /must be unix:\/\/\//);
  const badListen = await cli(['agent', 'stats', '--listen', 'nowhere']);
  assert.equal(badListen.code, 2);
});

test('per-pod series text escapes label values exactly as prom-client does (backslash, quote, newline)', async () => {
  const { escapeLabelValue } = await import('../../../src/node/stats/metrics.js');
  const { Gauge, Registry } = await import('prom-client');
  const v = 'a\\b"c\nd';
  const r = new Registry();
  new Gauge({ name: 'x', help: 'x', labelNames: ['l'], registers: [r] }).set({ l: v }, 1);
  assert.match(await r.metrics(), new RegExp(`x\\{l="${escapeLabelValue(v).replace(/[\\"]/g, (c) => `\\${c}`)}"\\} 1`));
  assert.equal(escapeLabelValue(v), 'a\\\\b\\"c\\nd');
});
