/**
 * bench:attest — loopback load on the attestation service (SQLite store, synchronous=FULL) and, in the same run,
 * the bare verifier (verifyEvidenceWith on the same evidence, in-process). Bounded: ~50 s per TEE (interleaved rounds, see the max-load phase).
 *
 * Two evidence kinds (BENCH_TEE=sample|sgx|both, default both): the dev sample TEE, and real SGX DCAP quotes from
 * the project's test PKI whose report data binds each challenge nonce (signed in the load generator before the
 * timed phase), verified with collateral the service fetched once from a loopback PCS into its store cache.
 * The service runs in a child process (so the load generator does not share its event loop); it pre-issues the
 * single-use nonces through its NonceService before the timed window and hands them over IPC. Each request is
 * one POST /v1/attest: nonce consume + verification + appraisal + ES256 EAR token + audit row.
 *
 * Beside the service, in the same interleaved rounds: the HTTP floor, the bare verifier, one ES256 signature, the
 * empty route in the real app, and the minimal service (see minimalRoute): the mandatory steps of an attestation
 * (verification, the EAR token, the nonce's durable consume with its audit record) composed with nothing of the
 * product around them: the floor the service's CPU sits on, measured in the same rounds.
 */
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { serialize } from 'node:v8';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { generateKeyPairSync, hash, randomUUID, sign } from 'node:crypto';
import { frozenCollateral, load, sgxKit, startServer, stopServer, type SgxKit } from './attest-load.js';

const NONCES = Number(process.env.BENCH_NONCES ?? 72000);
const DURATION = Number(process.env.BENCH_SECONDS ?? 4);
/** Interleaved measurement rounds (see the max-load phase). */
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 6));

function evidenceFor(nonce: string): string {
  return Buffer.from(JSON.stringify({ svn: '1', report_data: nonce })).toString('base64');
}

async function server(): Promise<void> {
  const { Kek, SqliteStore } = await import('../src/store/index.js');
  const { buildAttestationApp } = await import('../src/attestation/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'coffer-bench-'));
  // BENCH_SYNC=NORMAL shows what the fsync-per-commit of the default (FULL) costs on this disk.
  const synchronous = process.env.BENCH_SYNC === 'NORMAL' ? 'NORMAL' : 'FULL';
  // BENCH_WRITER=inline commits hot-path writes on the event loop (the pre-writer-thread behaviour), for comparison.
  const writer = process.env.BENCH_WRITER === 'inline' ? 'inline' : 'thread';
  // exclusive: this process alone uses the file, as `coffer up` on its data dir (BENCH_EXCLUSIVE=0: a shared file).
  const exclusive = process.env.BENCH_EXCLUSIVE !== '0';
  const store = SqliteStore.open({ path: join(dir, 'bench.db'), kek: Kek.fromBytes(Buffer.alloc(32, 1)), synchronous, writer, exclusive });
  await store.putDocument('reference-values', 'default', JSON.stringify({ tees: ['sample', 'sgx'] }), 'bench', Date.now());
  const root = new Uint8Array(Buffer.from(process.env.BENCH_ROOT ?? '', 'base64'));
  const { app, service } = await buildAttestationApp({
    store, adminKeys: [], dev: true, nonceTtlMs: 10 * 60_000,
    upstream: { pcsUrl: process.env.BENCH_PCS_URL, kdsUrl: false },
    verifyOptions: { trustAnchors: [root] },
  });
  // The split of the service's cost: the same bodies to an empty route registered in the real app (its JSON parser
  // and its root hooks: the metrics onResponse; not the attestation plugin's own onRequest admin check), answered
  // like the floor below. Service minus this = the handler's work; this minus the floor = what the app adds.
  let filler = ''; // sized to the real answer before the floor is measured (BENCH_FLOOR_RESPONSE was a fixed 1400)
  const empty = async (req: { body: unknown }) => ({ token: filler, status: 'affirming', failures: [], warnings: [], tee: (req.body as { tee?: string }).tee });
  app.post('/bench/empty', empty);
  await app.listen({ port: 0, host: '127.0.0.1' });
  // The floor any HTTP attestation API on this stack pays: the same fastify setup, the same request bodies parsed,
  // a response of the real one's size, no verification, no store, no token. Measured in the same process.
  const { createHttpApp } = await import('../src/attestation/http.js');
  const floor = createHttpApp({ bodyLimit: 1024 * 1024 });
  floor.post('/v1/attest', empty);
  // The minimal service, on the floor's app: the mandatory steps of an attestation composed with nothing of the
  // product around them (see minimalRoute). What the stack costs when those steps run in one request.
  const minimal = await minimalRoute(service, store);
  floor.post('/bench/minimal', minimal.handler);
  await floor.listen({ port: 0, host: '127.0.0.1' });
  const nonces: string[] = [];
  // Issued concurrently in chunks so the store's group commit writes them in a few transactions.
  for (let i = 0; i < NONCES; i += 500) {
    const chunk = await Promise.all(Array.from({ length: Math.min(500, NONCES - i) }, () => service.nonces.issue(Date.now())));
    nonces.push(...chunk.map((c) => c.nonce));
  }
  const port = (a: { server: { address(): unknown } }) => (a.server.address() as { port: number }).port;
  process.send!({ url: `http://127.0.0.1:${port(app)}`, floorUrl: `http://127.0.0.1:${port(floor)}`, nonces });
  process.on('message', async (m) => {
    // CPU of the whole service process (event loop + store writer/checkpoint threads), for per-request cost.
    if (m === 'cpu') return void process.send!({ cpu: process.cpuUsage(), threads: threadCpu(), writer: (store as { writerStats?: () => unknown }).writerStats?.(), crypto: { ...(service.crypto?.stats ?? { flushes: 0, ops: 0 }) } });
    // The floor answers with a response of the real one's size (measured by the load generator per TEE).
    if (typeof m === 'object' && m !== null && 'responseBytes' in m) {
      const r = m as unknown as { responseBytes: number; tee: string };
      const base = JSON.stringify(await empty({ body: { tee: r.tee } })).length - filler.length;
      filler = 'x'.repeat(Math.max(0, r.responseBytes - base));
      minimal.setToken((m as unknown as { token: string }).token);
      return void process.send!({ filler: filler.length });
    }
    if (m === 'profStart' || m === 'profStop') return void profile(m).then(() => process.send!({ prof: m }));
    if (m === 'stop') return void (await stopServer([app, floor], store, dir));
  });
}

/**
 * The minimal service's handler: the mandatory steps of an attestation and nothing of the product around them.
 * - the bare term's verifier call (its own registry, the bare term's options and collateral), through the service's
 *   CryptoBatch like the service's;
 * - the token: the EAR claims built from the verifier's claims (the service's shape, a fixed affirming appraisal) and
 *   signed by the service's own TokenIssuer (JSON, base64url, one ES256 signature in the CryptoBatch);
 * - the nonce's single-use consume and the attempt's audit record (the evidence's SHA-256, the policy, the TCB
 *   status: what the service records), committed durably by the same store writer in one transaction.
 * Each is product behaviour a relying party or operator depends on (README: an attestation is one commit, nonce
 * consumed with its audit record; the token is the /v1/attest contract). Left out: the nonce pre-check, policy
 * resolution and appraisal, metrics, input checks and app hooks (it runs on the floor's app).
 * BENCH_MINIMAL_AUDIT=0 commits the consume without the audit row; BENCH_MINIMAL_SKIP (comma list of verify, sign,
 * store) leaves steps out (`sign`: no token is built, a token of the real size is answered): what each costs.
 */
async function minimalRoute(service: import('../src/attestation/service.js').AttestationService, store: import('../src/store/types.js').Store) {
  const { createVerifierRegistry } = await import('../src/tee/index.js');
  const { verifyEvidenceWith } = await import('../src/tee/verify-evidence.js');
  const { NONCE_SCOPE } = await import('../src/attestation/nonces.js');
  const { EAR_PROFILE, VERIFIER_ID } = await import('../src/attestation/service.js');
  const { deserialize } = await import('node:v8');
  const bare = process.env.BENCH_BARE_OPTIONS ? (deserialize(readFileSync(process.env.BENCH_BARE_OPTIONS)) as Record<string, unknown>) : {};
  // Frozen again, as the bare term's (v8.deserialize does not keep it).
  const coll = (bare.dcap as { collateral?: { certs: unknown[]; crls: unknown[] } } | undefined)?.collateral;
  if (coll) bare.dcap = { ...(bare.dcap as object), collateral: frozenCollateral(coll) };
  const registry = createVerifierRegistry();
  const skip = new Set((process.env.BENCH_MINIMAL_SKIP ?? '').split(','));
  const withAudit = process.env.BENCH_MINIMAL_AUDIT !== '0';
  const crypto = service.crypto;
  // An affirming appraisal under the built-in default policy (its trust vector as the service's tokens carry it),
  // turned into the token's submod and the audit's policy id by the service's own appraisal() and policyIdOf().
  const outcome = Object.freeze({
    verdict: { status: 'affirming', failures: [], warnings: [], trustVector: { 'instance-identity': 0, configuration: 2, executables: 0, 'file-system': 0, hardware: 2, 'runtime-opaque': 2, 'storage-opaque': 0, 'sourced-data': 0 } },
    policy: Object.freeze({ id: 'default', version: null, rules: { rules: [] }, referenceValues: {}, referenceValuesRef: null }),
  }) as unknown as import('../src/attestation/service.js').AppraisalOutcome;
  const policyId = service.policyIdOf(outcome);
  let filler = '';
  return {
    /** The real token: its size is what the minimal service answers when told to skip the token (`sign`). */
    setToken(token: string) {
      filler = token;
    },
    handler: async (req: { body: unknown }, reply: { code(n: number): unknown }) => {
      const b = req.body as { tee: Tee; evidence: string; nonce: string };
      const now = Date.now();
      const evidence = Buffer.from(b.evidence, 'base64');
      let claims: Record<string, unknown> & { tcbStatus?: string; advisories?: string[] } = {};
      if (!skip.has('verify')) {
        const r = await verifyEvidenceWith(registry, evidence, { tee: b.tee, nonce: Buffer.from(b.nonce, 'base64'), at: new Date(now), ...bare, verifySignature: crypto?.verify });
        if (!r.verified) throw new Error(`minimal service: ${JSON.stringify(r.errors)}`);
        claims = r.claims as unknown as typeof claims;
      }
      let token: Promise<string> = Promise.resolve(filler);
      if (!skip.has('sign')) {
        const submods: Record<string, unknown> = {};
        submods[b.tee] = service.appraisal(outcome, claims);
        token = service.tokens.sign({ eat_profile: EAR_PROFILE, 'ear.verifier-id': VERIFIER_ID, eat_nonce: b.nonce, jti: randomUUID(), submods }, now);
        token.catch(() => undefined); // dropped on a 409, like the service's token: no unhandled rejection
      }
      let consumed = 'ok';
      if (!skip.has('store')) {
        const details = { evidenceDigest: hash('sha256', evidence, 'hex'), policy: policyId, failures: [], tcbStatus: claims.tcbStatus ?? null, advisories: claims.advisories };
        consumed = withAudit
          ? await store.consumeNonceWithAudit(b.nonce, NONCE_SCOPE, now, { at: now, actor: 'bench', action: 'attest', target: b.tee, result: 'affirming', details })
          : await store.consumeNonce(b.nonce, NONCE_SCOPE, now);
      }
      if (consumed !== 'ok') return (reply.code(409), { error: consumed });
      return { token: await token, status: 'affirming', failures: [], warnings: [] };
    },
  };
}

type Tee = 'sample' | 'sgx';

let session: import('node:inspector/promises').Session | undefined;
/** BENCH_PROF=DIR: a CPU profile of the service's main thread during the max-load phase only. */
async function profile(m: 'profStart' | 'profStop'): Promise<void> {
  if (m === 'profStart') {
    const { Session } = await import('node:inspector/promises');
    session = new Session();
    session.connect();
    if (process.env.BENCH_HEAP_PROF) {
      // BENCH_HEAP_PROF=1: a sampling heap profile instead, counting objects that GC already collected (what the
      // request allocated, not what survived).
      await session.post('HeapProfiler.enable');
      await session.post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never);
      return;
    }
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    return;
  }
  const { writeFileSync } = await import('node:fs');
  if (process.env.BENCH_HEAP_PROF) {
    const { profile: h } = await session!.post('HeapProfiler.stopSampling');
    writeFileSync(join(process.env.BENCH_PROF!, `attest-max-${Date.now()}.heapprofile`), JSON.stringify(h));
  } else {
    const { profile: p } = await session!.post('Profiler.stop');
    writeFileSync(join(process.env.BENCH_PROF!, `attest-max-${Date.now()}.cpuprofile`), JSON.stringify(p));
  }
  session!.disconnect();
}

/**
 * Raw ES256 (P-256, SHA-256) signatures over an input the size of the real token's signing input (header.payload),
 * node:crypto: the token's irreducible cost.
 */
function es256Signer(inputBytes: number): (n: number) => { cpu: number; wall: number } {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const input = Buffer.alloc(inputBytes, 0x61);
  const one = () => sign('sha256', input, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  for (let i = 0; i < 200; i++) one();
  return (n) => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) one();
    const c = process.cpuUsage(c0);
    return { cpu: c.user + c.system, wall: (performance.now() - t0) * 1000 };
  };
}

/** CPU µs per thread of this process, by thread name (Linux /proc; empty elsewhere). */
function threadCpu(): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const us = ((Number(f[11]) + Number(f[12])) * 1e6) / 100; // utime + stime, USER_HZ = 100
      const key = tid === String(process.pid) ? 'main' : `${name}/${tid}`;
      out[key] = (out[key] ?? 0) + us;
    }
  } catch {
    /* not Linux */
  }
  return out;
}

/**
 * The bare verifier in this (otherwise idle) process, warmed once: each call verifies the next `n` inputs and returns
 * CPU µs (process.cpuUsage, the same kind of figure as the service's) and wall µs.
 */
async function bareVerifier(tee: Tee, inputs: { ev: Uint8Array; nonce: Uint8Array }[], extra: Record<string, unknown>): Promise<(n: number) => Promise<{ cpu: number; wall: number }>> {
  const { createVerifierRegistry } = await import('../src/tee/index.js');
  const { verifyEvidenceWith } = await import('../src/tee/verify-evidence.js');
  const registry = createVerifierRegistry();
  for (const i of inputs.slice(0, 500)) await verifyEvidenceWith(registry, i.ev, { tee, nonce: i.nonce, ...extra }); // warm-up
  let next = 0;
  return async (n) => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let k = 0; k < n; k++) {
      const i = inputs[next++ % inputs.length];
      const r = await verifyEvidenceWith(registry, i.ev, { tee, nonce: i.nonce, at: new Date(), ...extra });
      if (!r.verified) throw new Error(`bare verification failed: ${JSON.stringify(r.errors)}`);
    }
    const c = process.cpuUsage(c0);
    return { cpu: c.user + c.system, wall: (performance.now() - t0) * 1000 };
  };
}

/** Request bodies (and bare-verifier inputs) for each nonce: sample evidence, or an SGX quote binding the nonce. */
async function bodies(tee: Tee, nonces: string[], sgx: SgxKit) {
  return nonces.map((nonce) => {
    const n = new Uint8Array(Buffer.from(nonce, 'base64'));
    const ev = tee === 'sample' ? new Uint8Array(Buffer.from(evidenceFor(nonce), 'base64')) : sgx.quoteFor(n);
    // BENCH_NEXT_CHALLENGE=1: the node agent's flow, each answer carries the next challenge (one nonce issued per attestation).
    const next = process.env.BENCH_NEXT_CHALLENGE === '1' ? { nextChallenge: true } : {};
    return { body: JSON.stringify({ tee, evidence: Buffer.from(ev).toString('base64'), nonce, ...next }), ev, nonce: n };
  });
}

async function main(): Promise<void> {
  if (process.argv.includes('--server')) return server();
  const tees: Tee[] = process.env.BENCH_TEE === 'sample' ? ['sample'] : process.env.BENCH_TEE === 'sgx' ? ['sgx'] : ['sample', 'sgx'];
  const kit = await sgxKit();
  // The bare term's options (its collateral) for the minimal service in the child: v8-serialized (Uint8Arrays).
  const bareFile = join(mkdtempSync(join(tmpdir(), 'coffer-bench-bare-')), 'options');
  writeFileSync(bareFile, serialize(kit.bareOptions));
  const { child, hello } = await startServer<{ url: string; floorUrl: string; nonces: string[] }>(import.meta.url, { BENCH_PCS_URL: kit.pcsUrl, BENCH_ROOT: Buffer.from(kit.root).toString('base64'), BENCH_BARE_OPTIONS: bareFile });
  const { url, floorUrl, nonces } = hello;
  const sync = process.env.BENCH_SYNC === 'NORMAL' ? 'NORMAL' : 'FULL';
  const cpu = () =>
    new Promise<{ total: number; threads: Record<string, number>; writer?: { commits: number; writes: number }; crypto: { flushes: number; ops: number } }>((resolve) => {
      const on = (m: unknown) => {
        const r = m as { cpu?: { user: number; system: number }; threads?: Record<string, number>; writer?: { commits: number; writes: number }; crypto: { flushes: number; ops: number } };
        if (r.cpu) (child.off('message', on), resolve({ total: r.cpu.user + r.cpu.system, threads: r.threads ?? {}, writer: r.writer, crypto: r.crypto }));
      };
      child.on('message', on);
      child.send('cpu');
    });
  try {
    const per = Math.floor(nonces.length / tees.length);
    for (const [k, tee] of tees.entries()) {
      const mine = await bodies(tee, nonces.slice(k * per, (k + 1) * per), kit);
      const bareRun = await bareVerifier(tee, mine.slice(-3000), tee === 'sgx' ? kit.bareOptions : {});
      // Each phase spends its own fresh nonces: the fixed-rate phase gets what it needs, the warm-up a little, the
      // max-load rounds the rest.
      const pool = mine.map((m) => m.body);
      const fixedPool = pool.splice(0, Math.ceil(500 * DURATION * 1.2));
      const warmPool = pool.splice(0, Math.min(2000, Math.floor(pool.length / 4)));
      await load(url, warmPool, { connections: 4, seconds: 1, amount: warmPool.length }); // warm-up (JIT, SQLite cache, collateral fetched once)
      // One real answer's size (one more nonce spent) for the floor's and the empty route's responses.
      const sample = await fetch(`${url}/v1/attest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: pool.pop()! });
      const sampleText = await sample.text();
      const responseBytes = Buffer.byteLength(sampleText);
      if (sample.status !== 200) throw new Error(`bench: a real attestation answered ${sample.status}`);
      const token = (JSON.parse(sampleText) as { token: string }).token;
      const signRun = es256Signer(token.lastIndexOf('.')); // the signing input: the token up to its last '.'
      await new Promise<void>((r) => (child.once('message', () => r()), child.send({ responseBytes, tee, token })));
      const prof = (m: string) =>
        process.env.BENCH_PROF ? new Promise<void>((r) => (child.send(m), child.once('message', () => r()))) : Promise.resolve();
      const ok = (what: string, r: Awaited<ReturnType<typeof load>>) => {
        if (r.non2xx || r.errors) throw new Error(`bench: ${what} answered ${r.non2xx} non-200 ${JSON.stringify(r.codes)}, ${r.errors} errors`);
        return r;
      };
      // The floor routes keep nothing, so they get the same bodies again (copies: load() pops its pool).
      const floorBodies = mine.map((m) => m.body);
      ok('the floor', await load(floorUrl, floorBodies.slice(0, 2000), { connections: 4, seconds: 1, amount: 2000 }));
      ok('the empty route', await load(url, floorBodies.slice(0, 1000), { connections: 4, seconds: 1, amount: 1000, path: '/bench/empty' }));

      // Every term of the ratio is measured in ROUNDS interleaved blocks of the same size, in an order that rotates
      // from round to round: on a shared machine the CPU cost of the same work drifts by tens of percent within a
      // minute (other tenants, caches), and terms measured minutes apart made the ratio swing by 0.3 between runs.
      // Blocks side by side share the drift; the ratio is of the sums.
      // The service and the minimal service each spend a fresh nonce per request.
      const block = Math.floor(pool.length / (2 * ROUNDS));
      type Block = 'service' | 'floor' | 'empty' | 'bare' | 'sign' | 'minimal';
      const order: Block[] = ['service', 'floor', 'bare', 'minimal', 'empty', 'sign'];
      const sum = Object.fromEntries(order.map((k) => [k, { cpu: 0, main: 0, n: 0, wall: 0 }])) as Record<Block, { cpu: number; main: number; n: number; wall: number }>;
      const rounds: Record<Block, number>[] = [];
      const threads: Record<string, number> = {};
      const maxRuns: Awaited<ReturnType<typeof load>>[] = [];
      let commits = 0;
      let writes = 0;
      let cryptoOps = 0;
      let cryptoFlushes = 0;
      for (let r = 0; r < ROUNDS; r++) {
        const here = {} as Record<Block, number>;
        for (let i = 0; i < order.length; i++) {
          const k = order[(i + r) % order.length];
          let cpuUs: number;
          let main = 0;
          let wall: number;
          // BENCH_PERF_MARKS=FILE: each block's start and stop, CLOCK_MONOTONIC ns (`perf record -k CLOCK_MONOTONIC`).
          const mark = (e: string) => process.env.BENCH_PERF_MARKS && appendFileSync(process.env.BENCH_PERF_MARKS, `${k} ${e} ${process.hrtime.bigint()}\n`);
          mark('start');
          if (k === 'bare' || k === 'sign') {
            const m = k === 'bare' ? await bareRun(block) : signRun(block);
            cpuUs = m.cpu;
            wall = m.wall;
          } else {
            const c0 = await cpu();
            const t0 = performance.now();
            if (k === 'service') await prof('profStart');
            const run = k === 'service' || k === 'minimal'
              ? ok(`the ${k === 'service' ? 'service' : 'minimal service'}`, await load(k === 'service' ? url : floorUrl, pool.splice(0, block), { connections: 8, seconds: DURATION, amount: block, path: k === 'service' ? '/v1/attest' : '/bench/minimal' }))
              : ok(k, await load(k === 'floor' ? floorUrl : url, floorBodies.slice(r * block, (r + 1) * block), { connections: 8, seconds: DURATION, amount: block, path: k === 'floor' ? '/v1/attest' : '/bench/empty' }));
            if (k === 'service') await prof('profStop');
            wall = (performance.now() - t0) * 1000;
            const c1 = await cpu();
            if (run.total !== block) throw new Error(`bench: ${k} answered ${run.total} of ${block} requests`);
            cpuUs = c1.total - c0.total;
            main = (c1.threads.main ?? 0) - (c0.threads.main ?? 0);
            if (k === 'service') {
              maxRuns.push(run);
              for (const [name, us] of Object.entries(c1.threads)) threads[name] = (threads[name] ?? 0) + us - (c0.threads[name] ?? 0);
              if (c0.writer && c1.writer) (commits += c1.writer.commits - c0.writer.commits, writes += c1.writer.writes - c0.writer.writes);
              cryptoOps += c1.crypto.ops - c0.crypto.ops;
              cryptoFlushes += c1.crypto.flushes - c0.crypto.flushes;
            }
          }
          mark('stop');
          sum[k].cpu += cpuUs;
          sum[k].main += main;
          sum[k].wall += wall;
          sum[k].n += block;
          here[k] = cpuUs / block;
        }
        rounds.push(here);
      }
      const us = (k: Block) => sum[k].cpu / sum[k].n;
      const serviceUs = us('service');
      const bareUs = us('bare');
      const floorUs = us('floor');
      const signUs = us('sign');
      const floorSum = bareUs + floorUs + signUs;
      const n = sum.service.n;
      const perThread = Object.entries(threads)
        .map(([name, t]) => [name, t / n] as const)
        .filter(([, t]) => t >= 1)
        .sort((a, b) => b[1] - a[1])
        .map(([name, t]) => `${name} ${t.toFixed(0)} µs`)
        .join(', ');
      const fixed = await load(url, fixedPool, { connections: 8, overallRate: 500, seconds: DURATION });
      const what = tee === 'sample' ? 'sample TEE' : 'SGX DCAP v3 quotes, test PKI, PCS collateral from the store cache';
      const fmt = (r: { p50: number; p99: number; non2xx: number; codes: Record<number, number>; errors: number }) => `p50 ${r.p50} ms, p99 ${r.p99} ms, non-200 ${r.non2xx}${r.non2xx ? ` ${JSON.stringify(r.codes)}` : ''}, errors ${r.errors}`;
      const rps = n / (sum.service.wall / 1e6);
      console.log(`bench:attest — POST /v1/attest (${what}; SQLite synchronous=${sync}, writer ${process.env.BENCH_WRITER === 'inline' ? 'inline' : 'thread'}), loopback, service in a child process`);
      console.log(`  ${ROUNDS} rounds of ${block} requests or operations per term, in rotating order: service, HTTP floor, bare verifier, minimal service, empty route in the real app, ES256 signature`);
      console.log(`  bare verifier (verifyEvidenceWith, in-process): ${(1e6 / (sum.bare.wall / sum.bare.n)).toFixed(0)} verifications/s (${(sum.bare.wall / sum.bare.n).toFixed(1)} µs each, CPU ${bareUs.toFixed(1)} µs)`);
      const worst = maxRuns.reduce((a, b) => (b.p99 > a.p99 ? b : a));
      console.log(`  service, max load (8 conns): ${rps.toFixed(0)} attestations/s, ${fmt({ ...worst, non2xx: 0, codes: {}, errors: 0 })} (the worst round's)`);
      console.log(`  service, 500 req/s fixed (${DURATION}s): ${fixed.rps.toFixed(0)} attestations/s, ${fmt(fixed)}`);
      console.log(`  service CPU per attestation (all threads): ${serviceUs.toFixed(0)} µs vs bare verifier ${bareUs.toFixed(1)} µs: ratio ${(serviceUs / bareUs).toFixed(2)}; one-core capacity ${(1e6 / serviceUs).toFixed(0)}/s`);
      if (perThread) console.log(`  by thread (10 ms ticks): ${perThread}`);
      if (process.env.BENCH_PROF) console.log(`  profiled: the service blocks, ${n} attestations, one profile per round`);
      if (commits) console.log(`  store writer: ${commits} commits for ${n} attestations, ${(writes / commits).toFixed(1)} writes per commit`);
      console.log(`  signature runs (evidence checks and token signatures, each run back to back): ${cryptoOps} operations in ${cryptoFlushes} runs, ${(cryptoOps / Math.max(1, cryptoFlushes)).toFixed(1)} per run`);
      const own = serviceUs - floorSum;
      console.log(`  CPU µs: bare verifier ${bareUs.toFixed(1)}, one ES256 signature (${token.lastIndexOf('.')}-byte input) ${signUs.toFixed(1)}, HTTP floor (same fastify, same bodies, empty handler, ${responseBytes}-byte answers) ${floorUs.toFixed(0)}; service rest (nonce + audit commit, appraisal, claims, JSON) ${own.toFixed(0)}`);
      const mainOf = (k: Block) => sum[k].main / sum[k].n;
      console.log(`  split (main thread, 10 ms ticks): HTTP floor ${mainOf('floor').toFixed(0)} µs; empty route in the real app ${mainOf('empty').toFixed(0)} µs (all threads ${us('empty').toFixed(0)}) = floor + ${(mainOf('empty') - mainOf('floor')).toFixed(0)} µs of app hooks; service ${mainOf('service').toFixed(0)} µs = empty route + ${(mainOf('service') - mainOf('empty')).toFixed(0)} µs of handler work (verification, appraisal, token, store calls)`);
      const ratios = rounds.map((x) => x.service / (x.bare + x.floor + x.sign)).sort((a, b) => a - b);
      console.log(`  per round, service / (bare + floor + signature): ${rounds.map((x) => (x.service / (x.bare + x.floor + x.sign)).toFixed(2)).join(' ')} (median ${ratios[Math.floor(ratios.length / 2)].toFixed(2)})`);
      console.log(`  service / (bare + floor + signature), CPU: ${serviceUs.toFixed(0)} / ${floorSum.toFixed(0)} µs = ${(serviceUs / floorSum).toFixed(2)} (issue 16 target <= 1.5)`);
      const minimalUs = us('minimal');
      const target = 1.5 * floorSum;
      console.log(`  minimal service (on the floor's app: the bare verifier's call, the EAR token (claims, JSON, ES256), the nonce's durable consume${process.env.BENCH_MINIMAL_AUDIT === '0' ? '' : ' + audit row'}; no pre-check, appraisal, metrics${process.env.BENCH_MINIMAL_SKIP ? `; without ${process.env.BENCH_MINIMAL_SKIP}` : ''}): ${minimalUs.toFixed(0)} µs = ${(minimalUs / floorSum).toFixed(2)} x (bare + floor + signature); service / minimal service = ${(serviceUs / minimalUs).toFixed(2)}`);
      console.log(`  minimal service by thread (10 ms ticks): main ${mainOf('minimal').toFixed(0)} µs, others ${(minimalUs - mainOf('minimal')).toFixed(0)} µs; the service: main ${mainOf('service').toFixed(0)} µs, others ${(serviceUs - mainOf('service')).toFixed(0)} µs`);
      console.log(`  per round, minimal service / (bare + floor + signature): ${rounds.map((x) => (x.minimal / (x.bare + x.floor + x.sign)).toFixed(2)).join(' ')}`);
      console.log(`  the target, 1.5 x (bare + floor + signature) = ${target.toFixed(0)} µs, is ${minimalUs >= target ? 'at or BELOW' : 'above'} the minimal service's ${minimalUs.toFixed(0)} µs measured in this run`);
      console.log(`  targets: p99 <= 10 ms at 500 req/s: ${fixed.p99 <= 10 && fixed.non2xx === 0 ? 'MET' : 'NOT MET'}; service CPU <= 1.5 x (bare + floor + signature): ${serviceUs <= 1.5 * floorSum ? 'MET' : minimalUs >= target ? `NOT MET, the target sits at or below the floor of the mandatory steps measured in this run (minimal service ${(minimalUs / floorSum).toFixed(2)} x; service / minimal service ${(serviceUs / minimalUs).toFixed(2)})` : 'NOT MET'}`);
    }
  } finally {
    child.send('stop');
    await kit.stop();
    rmSync(dirname(bareFile), { recursive: true, force: true });
  }
}

await main();
