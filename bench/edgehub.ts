/**
 * Edge hub benchmark: LIST of 10,000 pods (1) directly from the fake kube-apiserver (baseline), (2) through the hub
 * online, (3) from the hub's cache offline (server SIGSTOPped), in the same run, plus the hub's RSS with the
 * 10,000 pods cached (hub as a child process, /proc/PID/status VmRSS; heap/external from its status endpoint).
 * The hub is `bin/coffer.js edgehub` as users start it, two ways: after `npm run build` (the bin runs dist/, what
 * `npm ci` produces through `prepare`) and from the sources through tsx (COFFER_TSX=1, the no-build dev path).
 * Variants alternate for ROUNDS rounds so the shared machine's load hits them alike; figures are medians.
 * COMPARE_BIN='/other/checkout/bin/coffer.js ...' adds those hubs as a further variant (before/after comparisons).
 * A bare Node pipe proxy (bench/pipe-proxy.mjs) is measured the same way in the same run: the floor of any
 * user-space proxy between the two processes on this machine, against which the hub's own cost shows.
 * Targets: offline <= 100 ms, online <= 1.2x direct, RSS <= 80 MB. Run: npm run bench:edgehub
 */
import http from 'node:http';
import { readFileSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { spawnFakeApiServer, type FakeApiServerProcess } from '../test/support/fake-apiserver-process.js';
import { spawnEdgeHub } from '../test/support/edgehub-process.js';

const PODS = Number(process.env.PODS ?? 10_000);
const RUNS = Number(process.env.RUNS ?? 11);
const SETTLE_MS = Number(process.env.SETTLE_MS ?? 2000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const HUB_ENV: Record<string, string> = Object.fromEntries((process.env.HUB_ENV ?? '').split(' ').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const root = fileURLToPath(new URL('..', import.meta.url));

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

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function checkList(url: string): Promise<number> {
  const r = await get(url);
  if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status} ${r.body.toString().slice(0, 200)}`);
  const n = JSON.parse(r.body.toString()).items.length;
  if (n !== PODS) throw new Error(`${url}: ${n} items, expected ${PODS}`);
  return r.body.length;
}

/** Direct and through-the-hub runs alternate so machine noise hits both alike. */
async function measurePair(directUrl: string, hubUrl: string): Promise<[number, number, number, number, number[]]> {
  await checkList(directUrl);
  await checkList(hubUrl);
  const d: number[] = [];
  const h: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    d.push((await get(directUrl)).ms);
    await pause(30);
    h.push((await get(hubUrl)).ms);
    await pause(30); // the hub indexes after answering, as between kubelet relists
  }
  return [median(d), median(h), Math.min(...d), Math.min(...h), h.map((x, i) => x / d[i])];
}

async function measure(url: string): Promise<number> {
  await checkList(url);
  const t: number[] = [];
  for (let i = 0; i < RUNS; i++) t.push((await get(url)).ms);
  return median(t);
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
    await pause(50);
  }
  throw new Error(`hub did not become ${state}`);
}

interface HubFigures {
  direct: number;
  online: number;
  /** Best of the runs: less sensitive to the shared machine's load than the median. */
  directBest: number;
  onlineBest: number;
  offline: number;
  rssIdle: number;
  rssCached: number;
  rssAfterOffline: number;
  rssPeak: number;
  /** V8 heap used / total and external (Buffers) memory of the hub with the pods cached, MB. */
  heapUsed: number;
  heapTotal: number;
  external: number;
  /** A hub started while the server is down, serving the 10,000 pods from the disk cache. */
  restartOffline: number;
  rssRestartedLoaded: number;
  rssRestarted: number;
}

/** Newest mtime under src/ (files and directories), as bin/coffer.js compares it with the build stamp. */
function newestSource(dir: string): number {
  let newest = statSync(dir).mtimeMs;
  for (const e of readdirSync(dir, { withFileTypes: true })) newest = Math.max(newest, e.isDirectory() ? newestSource(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs);
  return newest;
}

/** `pairRatios` collects hub/direct of each adjacent pair of LISTs (load changes between pairs hit both alike). */
async function runVariant(fake: FakeApiServerProcess, bin: string | undefined, env: Record<string, string>, pairRatios: number[]): Promise<HubFigures> {
  if (env.COFFER_TSX === '0' && statSync(join(root, 'dist/cli/BUILT')).mtimeMs < newestSource(join(root, 'src'))) {
    throw new Error('src/ changed after the build: bin/coffer.js would run the sources; rerun the benchmark');
  }
  const dir = mkdtempSync(join(tmpdir(), 'coffer-bench-edgehub-'));
  const args = ['--server', fake.url, '--cache-dir', dir, '--health-interval', '200ms', '--probe-timeout', '1s', '--failure-threshold', '2', '--cache-agents', 'kubelet'];
  let hub = await spawnEdgeHub(args, env, [], bin);
  try {
    const rssIdle = rssMb(hub.pid).rss;
    const path = '/api/v1/pods';
    const [direct, online, directBest, onlineBest, pairs] = await measurePair(fake.url + path, hub.url + path);
    pairRatios.push(...pairs);
    await pause(SETTLE_MS); // indexed and flushed to disk
    const rssCached = rssMb(hub.pid).rss;
    const mem = JSON.parse((await get(`${hub.url}/_coffer/edgehub/status`)).body.toString()).memory as Record<string, number>;
    const mb = (k: string) => (mem?.[k] ?? NaN) / 1048576;
    fake.signal('SIGSTOP');
    try {
      await waitState(hub.url, 'offline');
      const offline = await measure(hub.url + path);
      const after = rssMb(hub.pid);
      await hub.stop();
      hub = await spawnEdgeHub(args, env, [], bin);
      const rssRestartedLoaded = rssMb(hub.pid).rss;
      const restartOffline = await measure(hub.url + path);
      const rssRestarted = rssMb(hub.pid).rss;
      return { direct, online, directBest, onlineBest, offline, rssIdle, rssCached, rssAfterOffline: after.rss, rssPeak: after.hwm, heapUsed: mb('heapUsed'), heapTotal: mb('heapTotal'), external: mb('external'), restartOffline, rssRestartedLoaded, rssRestarted };
    } finally {
      fake.signal('SIGCONT');
    }
  } finally {
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const medianFigures = (fs: HubFigures[]): HubFigures => Object.fromEntries(Object.keys(fs[0]).map((k) => [k, median(fs.map((f) => f[k as keyof HubFigures]))])) as unknown as HubFigures;

const started = Date.now();
execFileSync(process.execPath, [join(root, 'scripts/build.mjs')], { stdio: 'inherit' }); // npm run build
const variants: { name: string; bin?: string; env: Record<string, string>; runs: HubFigures[]; pairs: number[] }[] = [
  { name: 'bin/coffer.js edgehub after npm run build (dist/)', env: { ...HUB_ENV, COFFER_TSX: '0' }, runs: [], pairs: [] },
  { name: 'bin/coffer.js edgehub from sources via tsx (no build)', env: { ...HUB_ENV, COFFER_TSX: '1' }, runs: [], pairs: [] },
];
for (const bin of (process.env.COMPARE_BIN ?? '').split(' ').filter(Boolean)) variants.push({ name: `compare: ${bin}`, bin, env: HUB_ENV, runs: [], pairs: [] });
const fake = await spawnFakeApiServer({ pods: PODS, nodes: 50, namespaces: 20, history: 100 });
// The floor any user-space proxy pays on this machine: a bare Node pipe proxy, measured the same way in the same run.
const floorProxy = spawn(process.execPath, [join(root, 'bench/pipe-proxy.mjs'), fake.url], { stdio: ['ignore', 'pipe', 'inherit'] });
const floorUrl = (JSON.parse(await new Promise<string>((r) => createInterface({ input: floorProxy.stdout! }).once('line', r))) as { url: string }).url;
const floorPairs: number[] = [];
const floorRuns: { direct: number; proxied: number }[] = [];
try {
  const size = await checkList(fake.url + '/api/v1/pods');
  for (let r = 0; r < ROUNDS; r++) {
    for (const v of variants) v.runs.push(await runVariant(fake, v.bin, v.env, v.pairs));
    const [direct, proxied, , , pairs] = await measurePair(fake.url + '/api/v1/pods', floorUrl + '/api/v1/pods');
    floorPairs.push(...pairs);
    floorRuns.push({ direct, proxied });
  }
  console.log(`edgehub LIST of ${PODS} pods (${(size / 1048576).toFixed(1)} MiB JSON); each variant ${ROUNDS} rounds (interleaved) of ${RUNS} LISTs each; medians; baseline = the same LIST directly from the fake apiserver, alternating with the hub's`);
  for (const v of variants) {
    const f = medianFigures(v.runs);
    const ratios = v.runs.map((x) => x.online / x.direct);
    const ratio = median(v.pairs);
    const rss = median(v.runs.map((x) => Math.max(x.rssCached, x.rssAfterOffline)));
    console.log(`  ${v.name}:`);
    console.log(`    direct (baseline)   ${f.direct.toFixed(1)} ms`);
    console.log(`    hub online          ${f.online.toFixed(1)} ms; hub/direct ${ratio.toFixed(2)}x (median of ${v.pairs.length} adjacent pairs; ratio of the round medians: ${ratios.map((x) => x.toFixed(2)).join(', ')})   target <= 1.2x  ${ratio <= 1.2 ? 'OK' : 'MISS'}`);
    console.log(`    hub offline (cache) ${f.offline.toFixed(1)} ms = ${(f.offline / f.direct).toFixed(2)}x direct   target <= 100 ms ${f.offline <= 100 ? 'OK' : 'MISS'}`);
    console.log(`    hub RSS idle ${f.rssIdle.toFixed(1)} MB; ${PODS} pods cached ${f.rssCached.toFixed(1)} MB (heap ${f.heapUsed.toFixed(1)}/${f.heapTotal.toFixed(1)} MB used/total, external ${f.external.toFixed(1)} MB); after offline LISTs ${f.rssAfterOffline.toFixed(1)} MB (peak ${f.rssPeak.toFixed(1)} MB)   target <= 80 MB ${rss <= 80 ? 'OK' : 'MISS'} (per round: ${v.runs.map((x) => Math.max(x.rssCached, x.rssAfterOffline).toFixed(1)).join(', ')})`);
    console.log(`    hub restarted with the server down: RSS ${f.rssRestartedLoaded.toFixed(1)} MB with the cache loaded; offline LIST from disk cache ${f.restartOffline.toFixed(1)} ms; RSS after the LISTs ${f.rssRestarted.toFixed(1)} MB   target <= 80 MB ${f.rssRestarted <= 80 ? 'OK' : 'MISS'}`);
    console.log(JSON.stringify({ bench: 'edgehub', variant: v.name, pods: PODS, listBytes: size, rounds: ROUNDS, ...f, onlineRatio: ratio }));
  }
  const floorRatio = median(floorPairs);
  console.log(`  bare Node pipe proxy (bench/pipe-proxy.mjs: the floor of any user-space proxy here, no caching):`);
  console.log(`    direct ${median(floorRuns.map((x) => x.direct)).toFixed(1)} ms, proxied ${median(floorRuns.map((x) => x.proxied)).toFixed(1)} ms; proxy/direct ${floorRatio.toFixed(2)}x (median of ${floorPairs.length} adjacent pairs)`);
  for (const v of variants) console.log(`    ${v.name}: hub/direct ${median(v.pairs).toFixed(2)}x = ${(median(v.pairs) / floorRatio).toFixed(2)}x the bare proxy's ratio`);
  console.log(JSON.stringify({ bench: 'edgehub', variant: 'bare pipe proxy', onlineRatio: floorRatio }));
  console.log(`  total bench time ${((Date.now() - started) / 1000).toFixed(1)} s`);
} finally {
  agent.destroy();
  floorProxy.kill();
  await fake.stop();
}
