/**
 * Micro-bench: what the real attestation app adds over the floor app (createHttpApp) for the same route and bodies.
 * Child process serves both; parent loads each in long alternating runs and reads the child's process.cpuUsage.
 */
import { fork } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { stopServer } from './attest-load.js';

const N = Number(process.env.GAP_N ?? 20000);
const ROUNDS = Number(process.env.GAP_ROUNDS ?? 4);

async function server(): Promise<void> {
  const { Kek, SqliteStore } = await import('../src/store/index.js');
  const { buildAttestationApp } = await import('../src/attestation/index.js');
  const { createHttpApp } = await import('../src/attestation/http.js');
  if (process.env.GAP_NOMETRICS) (await import('../src/attestation/metrics.js')).Metrics.prototype.install = () => {}; // what the metrics hook costs
  const dir = mkdtempSync(join(tmpdir(), 'coffer-gap-'));
  const store = SqliteStore.open({ path: join(dir, 'b.db'), kek: Kek.fromBytes(Buffer.alloc(32, 1)), synchronous: 'FULL', writer: 'thread', exclusive: true });
  await store.putDocument('reference-values', 'default', JSON.stringify({ tees: ['sample'] }), 'bench', Date.now());
  const { app, service } = await buildAttestationApp({ store, adminKeys: [], dev: true, nonceTtlMs: 10 * 60_000 });
  // GAP_REAL=N: the app first serves N real (sample TEE) attestations, as in bench:attest before its split.
  const real: string[] = [];
  for (let i = 0; i < Number(process.env.GAP_REAL ?? 0); i++) {
    const { nonce } = await service.nonces.issue(Date.now());
    real.push(JSON.stringify({ tee: 'sample', evidence: Buffer.from(JSON.stringify({ svn: '1', report_data: nonce })).toString('base64'), nonce }));
  }
  const filler = 'x'.repeat(Number(process.env.GAP_FILL ?? 1300));
  const empty = async (req: { body: unknown }) => ({ token: filler, status: 'affirming', failures: [], warnings: [], tee: (req.body as { tee?: string }).tee });
  app.post('/bench/empty', empty);
  const { installProblemHandlers } = await import('../src/attestation/problem.js');
  const { isAdminPath } = await import('../src/attestation/admin-paths.js');
  // The attestation plugin's context, rebuilt: problem handlers, the YAML parser, the admin onRequest hook.
  const ctx = (hook: 'full' | 'none' | 'url') => async (c: any) => {
    installProblemHandlers(c);
    c.addContentTypeParser(['application/yaml', 'text/yaml', 'text/plain'], { parseAs: 'string' }, (_r: unknown, b: unknown, d: any) => d(null, b));
    if (hook === 'full') c.addHook('onRequest', (req: any, _rep: unknown, done: any) => { if (!isAdminPath(req.url) && !req.routeOptions.url?.startsWith('/v1/admin')) return done(); done(new Error('x')); });
    if (hook === 'url') c.addHook('onRequest', (req: any, _rep: unknown, done: any) => { if (!isAdminPath(req.url)) return done(); done(new Error('x')); });
    c.post('/ctx', empty);
  };
  await app.register(ctx('full'), { prefix: '/bench-full' });
  await app.register(ctx('none'), { prefix: '/bench-none' });
  await app.register(ctx('url'), { prefix: '/bench-url' });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const floor = createHttpApp({ bodyLimit: 1024 * 1024 });
  floor.post('/v1/attest', empty);
  await floor.listen({ port: 0, host: '127.0.0.1' });
  const port = (a: { server: { address(): unknown } }) => (a.server.address() as { port: number }).port;
  const a = `http://127.0.0.1:${port(app)}`;
  process.send!({ real, attest: `${a}/v1/attest`, app: `${a}/bench/empty`, full: `${a}/bench-full/ctx`, none: `${a}/bench-none/ctx`, url: `${a}/bench-url/ctx`, floor: `http://127.0.0.1:${port(floor)}/v1/attest` });
  process.on('message', async (m) => {
    if (m === 'cpu') return void process.send!({ cpu: process.cpuUsage() });
    if (m === 'stop') return void (await stopServer([app, floor], store, dir));
  });
}

async function main(): Promise<void> {
  if (process.argv.includes('--server')) return server();
  const child = fork(new URL(import.meta.url).pathname, ['--server'], { execArgv: process.env.GAP_DIST ? [] : ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  process.on('exit', () => child.kill('SIGKILL'));
  const urls = await new Promise<Record<string, string> & { real: string[] }>((r) => child.once('message', (m) => r(m as never)));
  if (urls.real.length) {
    const r = await autocannon({ url: urls.attest, connections: 8, amount: urls.real.length, requests: [{ method: 'POST', headers: { 'content-type': 'application/json' }, setupRequest: (q: Record<string, unknown>) => ({ ...q, body: urls.real.pop() }) }] } as autocannon.Options);
    console.log(`real sample attestations first: ${r.requests.total}, non-2xx ${r.non2xx}`);
  }
  const cpu = () => new Promise<number>((r) => { const on = (m: any) => { if (m.cpu) (child.off('message', on), r(m.cpu.user + m.cpu.system)); }; child.on('message', on); child.send('cpu'); });
  const body = JSON.stringify({ tee: 'sgx', evidence: Buffer.alloc(Number(process.env.GAP_BODY ?? 4700), 7).toString('base64'), nonce: Buffer.alloc(32, 1).toString('base64') });
  const run = async (url: string, n: number) => {
    const c0 = await cpu();
    const r = await autocannon({ url, connections: 8, amount: n, method: 'POST', headers: { 'content-type': 'application/json' }, body } as autocannon.Options);
    const c1 = await cpu();
    if (r.non2xx) throw new Error(`${url}: ${r.non2xx} non-2xx`);
    return (c1 - c0) / r.requests.total;
  };
  const keys = (process.env.GAP_KEYS ?? 'app,full,none,url,floor').split(',');
  for (const k of keys) await run(urls[k], 3000);
  const res: Record<string, number[]> = Object.fromEntries(keys.map((k) => [k, []]));
  for (let i = 0; i < ROUNDS; i++) {
    const order = keys.map((_, j) => keys[(i + j) % keys.length]);
    for (const k of order) res[k].push(await run(urls[k], N)); // rotation: each target first in turn
  }
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  console.log(`app-gap: ${N} req x ${ROUNDS} rounds, body ${body.length} B`);
  for (const k of keys) console.log(`  ${k.padEnd(6)} µs/req: ${res[k].map((x) => x.toFixed(1)).join(' ')}  median ${med(res[k]).toFixed(1)}; minus floor (paired) ${res[k].map((x, i) => (x - res.floor[i]).toFixed(1)).join(' ')}`);
  child.send('stop');
}

await main();
