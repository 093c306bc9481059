/**
 * bench:attest:ab — the attestation service's CPU per attestation with and without its CryptoBatch, paired.
 *
 * One service process, one SQLite store, two apps on it (cryptoBatch true and false). The load generator sends the
 * same kind of request (SGX DCAP quotes from the test PKI, each binding its own nonce) to one app then the other,
 * in BENCH_ROUNDS pairs of BENCH_BLOCK requests, the order alternating (ABBA), and reads the service's CPU (all
 * threads) around each block. On a shared machine the cost of the same work drifts by tens of percent within a
 * minute; the difference within a pair does not share that drift's size, so the median of the paired differences
 * (and how many pairs went which way) says more than the two totals.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load, sgxKit, startServer, stopServer } from './attest-load.js';

const ROUNDS = Math.max(2, Number(process.env.BENCH_ROUNDS ?? 24));
const BLOCK = Math.max(100, Number(process.env.BENCH_BLOCK ?? 700));
const WARM = 1500;
const VARIANTS = ['batch', 'plain'] as const;
type Variant = (typeof VARIANTS)[number];

async function server(): Promise<void> {
  const { Kek, SqliteStore } = await import('../src/store/index.js');
  const { buildAttestationApp } = await import('../src/attestation/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'coffer-bench-ab-'));
  const store = SqliteStore.open({ path: join(dir, 'bench.db'), kek: Kek.fromBytes(Buffer.alloc(32, 1)), synchronous: 'FULL', writer: 'thread', exclusive: true });
  await store.putDocument('reference-values', 'default', JSON.stringify({ tees: ['sgx'] }), 'bench', Date.now());
  const build = (cryptoBatch: boolean) =>
    buildAttestationApp({
      store, adminKeys: [], nonceTtlMs: 60 * 60_000, cryptoBatch,
      upstream: { pcsUrl: process.env.BENCH_PCS_URL, kdsUrl: false },
      verifyOptions: { trustAnchors: [new Uint8Array(Buffer.from(process.env.BENCH_ROOT ?? '', 'base64'))] },
    });
  const apps = { batch: await build(true), plain: await build(false) };
  const urls: Record<string, string> = {};
  for (const v of VARIANTS) {
    await apps[v].app.listen({ port: 0, host: '127.0.0.1' });
    urls[v] = `http://127.0.0.1:${(apps[v].app.server.address() as { port: number }).port}`;
  }
  // Both apps share the store, so a nonce either issued is good at either.
  const n = 2 * (ROUNDS * BLOCK + WARM);
  const nonces: string[] = [];
  for (let i = 0; i < n; i += 500) {
    const chunk = await Promise.all(Array.from({ length: Math.min(500, n - i) }, () => apps.batch.service.nonces.issue(Date.now())));
    nonces.push(...chunk.map((c) => c.nonce));
  }
  process.send!({ urls, nonces });
  process.on('message', async (m) => {
    if (m === 'cpu') {
      const c = process.cpuUsage();
      return void process.send!({ cpu: c.user + c.system, crypto: apps.batch.service.crypto?.stats });
    }
    if (m === 'stop') return void (await stopServer(VARIANTS.map((v) => apps[v].app), store, dir));
  });
}

async function main(): Promise<void> {
  if (process.argv.includes('--server')) return server();
  const kit = await sgxKit();
  const { child, hello } = await startServer<{ urls: Record<Variant, string>; nonces: string[] }>(import.meta.url, { BENCH_PCS_URL: kit.pcsUrl, BENCH_ROOT: Buffer.from(kit.root).toString('base64') });
  try {
    const { urls, nonces } = hello;
    const bodies = nonces.map((nonce) => JSON.stringify({ tee: 'sgx', evidence: Buffer.from(kit.quoteFor(new Uint8Array(Buffer.from(nonce, 'base64')))).toString('base64'), nonce }));
    const cpu = () => new Promise<{ cpu: number; crypto?: { flushes: number; ops: number } }>((r) => (child.once('message', (m) => r(m as never)), child.send('cpu')));
    const block = async (v: Variant, count: number) => {
      const r = await load(urls[v], bodies.splice(0, count), { connections: 8, seconds: 60, amount: count });
      if (r.non2xx || r.errors || r.total !== count) throw new Error(`bench: ${v} answered ${r.total} of ${count}, ${r.non2xx} non-200 ${JSON.stringify(r.codes)}, ${r.errors} errors`);
    };
    for (const v of VARIANTS) await block(v, WARM);
    const per: Record<Variant, number[]> = { batch: [], plain: [] };
    let ops = 0;
    let flushes = 0;
    for (let r = 0; r < ROUNDS; r++) {
      for (const v of r % 2 ? [...VARIANTS].reverse() : VARIANTS) {
        const a = await cpu();
        await block(v, BLOCK);
        const b = await cpu();
        per[v].push((b.cpu - a.cpu) / BLOCK);
        if (v === 'batch' && a.crypto && b.crypto) (ops += b.crypto.ops - a.crypto.ops, flushes += b.crypto.flushes - a.crypto.flushes);
      }
    }
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    const d = per.batch.map((x, i) => x - per.plain[i]).sort((x, y) => x - y);
    const q = (f: number) => d[Math.min(d.length - 1, Math.floor(f * d.length))];
    console.log(`bench:attest:ab — POST /v1/attest (SGX DCAP v3 quotes, test PKI), one service process and store, ${ROUNDS} pairs of ${BLOCK} requests (8 connections), ABBA order`);
    for (const v of VARIANTS) console.log(`  ${v === 'batch' ? 'CryptoBatch   ' : 'each at once  '} ${mean(per[v]).toFixed(1)} µs CPU per attestation (all threads; blocks ${per[v].map((x) => x.toFixed(0)).join(' ')})`);
    console.log(`  CryptoBatch runs: ${(ops / Math.max(1, flushes)).toFixed(1)} operations per run`);
    console.log(`  paired difference (CryptoBatch - each at once): median ${q(0.5).toFixed(1)} µs, quartiles ${q(0.25).toFixed(1)} .. ${q(0.75).toFixed(1)}; CryptoBatch cheaper in ${d.filter((x) => x < 0).length} of ${d.length} pairs`);
  } finally {
    child.send('stop');
    await kit.stop();
  }
}

await main();
