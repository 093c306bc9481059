/**
 * Edge hub benchmark: LIST of 10,000 pods (1) directly from the fake kube-apiserver, (2) through the hub online,
 * (3) from the hub's cache offline (server SIGSTOPped), all in the same run; plus the hub's RSS with the 10,000
 * pods cached (hub as a child process, /proc/PID/status VmRSS). Targets: offline ≤ 100 ms, online ≤ 1.2× direct,
 * RSS ≤ 80 MB. Run: npm run bench:edgehub
 */
import http from 'node:http';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnFakeApiServer } from '../test/support/fake-apiserver-process.js';
import { spawnEdgeHub } from '../test/support/edgehub-process.js';

const PODS = Number(process.env.PODS ?? 10_000);
const RUNS = Number(process.env.RUNS ?? 7);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function get(url: string, ua = 'kubelet/v1.32.0 (linux/amd64) kubernetes/bench'): Promise<{ ms: number; status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.get(url, { agent, headers: { 'user-agent': ua, accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

const HUB_ENV: Record<string, string> = process.env.HUB_ENV ? Object.fromEntries(process.env.HUB_ENV.split(' ').map((kv) => kv.split('=') as [string, string])) : {};
const HUB_NODE_ARGS = process.env.HUB_NODE_ARGS ? process.env.HUB_NODE_ARGS.split(' ') : [];
const SETTLE_MS = Number(process.env.SETTLE_MS ?? 3000);

async function measurePair(directUrl: string, hubUrl: string): Promise<[number, number]> {
  for (const u of [directUrl, hubUrl]) {
    const first = await get(u);
    if (first.status !== 200) throw new Error(`${u}: HTTP ${first.status} ${first.body.toString().slice(0, 200)}`);
    const n = JSON.parse(first.body.toString()).items.length;
    if (n !== PODS) throw new Error(`${u}: ${n} items, expected ${PODS}`);
  }
  const d: number[] = [];
  const h: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    d.push((await get(directUrl)).ms);
    await new Promise((res) => setTimeout(res, 30));
    h.push((await get(hubUrl)).ms);
    await new Promise((res) => setTimeout(res, 30)); // let the hub index the previous answer, as between kubelet relists
  }
  return [median(d), median(h)];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function measure(label: string, url: string): Promise<number> {
  const first = await get(url);
  if (first.status !== 200) throw new Error(`${label}: HTTP ${first.status} ${first.body.toString().slice(0, 200)}`);
  const n = JSON.parse(first.body.toString()).items.length;
  if (n !== PODS) throw new Error(`${label}: ${n} items, expected ${PODS}`);
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await get(url);
    if (r.status !== 200) throw new Error(`${label}: HTTP ${r.status}`);
    times.push(r.ms);
    await new Promise((res) => setTimeout(res, 30)); // let the hub index the previous answer, as between kubelet relists
  }
  return median(times);
}

function rssMb(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(s.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm'))?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

async function waitState(hubUrl: string, state: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const r = await get(`${hubUrl}/_coffer/edgehub/status`);
    if (JSON.parse(r.body.toString()).state === state) return;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`hub did not become ${state}`);
}

const dir = mkdtempSync(join(tmpdir(), 'coffer-bench-edgehub-'));
const started = Date.now();
const fake = await spawnFakeApiServer({ pods: PODS, nodes: 50, namespaces: 20, history: 100 });
let hub: Awaited<ReturnType<typeof spawnEdgeHub>> | undefined;
try {
  hub = await spawnEdgeHub(['--server', fake.url, '--cache-dir', dir, '--health-interval', '200ms', '--probe-timeout', '1s', '--failure-threshold', '2', '--cache-agents', 'kubelet'], HUB_ENV, HUB_NODE_ARGS);
  const rssIdle = rssMb(hub.pid);
  const path = '/api/v1/pods';
  // Direct and through-the-hub runs alternate so machine noise hits both alike.
  const [direct, online] = await measurePair(fake.url + path, hub.url + path);
  await new Promise((r) => setTimeout(r, SETTLE_MS)); // cache indexed and flushed; V8 returns idle garbage
  const rssCached = rssMb(hub.pid);
  fake.signal('SIGSTOP');
  await waitState(hub.url, 'offline');
  const offline = await measure('hub offline', hub.url + path);
  const rssAfter = rssMb(hub.pid);
  fake.signal('SIGCONT');
  const size = (await get(hub.url + path)).body.length;

  const ratio = online / direct;
  const lines = [
    `edgehub LIST of ${PODS} pods (${(size / 1048576).toFixed(1)} MiB JSON), median of ${RUNS}:`,
    `  direct from fake apiserver (baseline) ${direct.toFixed(1)} ms`,
    `  through hub, online                   ${online.toFixed(1)} ms  ratio ${ratio.toFixed(2)}x direct (target <= 1.2x) ${ratio <= 1.2 ? 'OK' : 'MISS'}`,
    `  through hub, offline from cache       ${offline.toFixed(1)} ms  ratio ${(offline / direct).toFixed(2)}x direct (target <= 100 ms) ${offline <= 100 ? 'OK' : 'MISS'}`,
    `  hub RSS: idle ${rssIdle.rss.toFixed(1)} MB, ${PODS} pods cached ${rssCached.rss.toFixed(1)} MB, after offline LISTs ${rssAfter.rss.toFixed(1)} MB (peak ${rssAfter.hwm.toFixed(1)} MB) (target <= 80 MB) ${Math.max(rssCached.rss, rssAfter.rss) <= 80 ? 'OK' : 'MISS'}`,
    `  total bench time ${((Date.now() - started) / 1000).toFixed(1)} s`,
  ];
  console.log(lines.join('\n'));
  console.log(JSON.stringify({ bench: 'edgehub', pods: PODS, directMs: direct, onlineMs: online, offlineMs: offline, onlineRatio: ratio, rssIdleMb: rssIdle.rss, rssCachedMb: rssCached.rss, rssAfterOfflineMb: rssAfter.rss, rssPeakMb: rssAfter.hwm }));
} finally {
  agent.destroy();
  await hub?.stop();
  await fake.stop();
  rmSync(dir, { recursive: true, force: true });
}
