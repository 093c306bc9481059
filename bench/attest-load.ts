/**
 * Shared by the attestation service benches (bench:attest, bench:attest:ab, app-gap): the SGX evidence kit (test-PKI
 * platform, loopback PCS, a fast quote signer), the loopback load generator, and the service child's start and stop.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { KeyObject, sign } from 'node:crypto';
import { rmSync } from 'node:fs';
import autocannon from 'autocannon';

/**
 * Forks `moduleUrl` with `--server` (the bench's service side) and waits for its first message. Under tsx the child
 * loads tsx too; bundled (`node scripts/bench-bundle.mjs`) it runs the same JavaScript as the parent, without tsx.
 * The child is killed when this process exits, even on a crash.
 */
export async function startServer<T>(moduleUrl: string, env: Record<string, string> = {}): Promise<{ child: ChildProcess; hello: T }> {
  const child = fork(new URL(moduleUrl).pathname, ['--server'], {
    execArgv: moduleUrl.endsWith('.ts') ? ['--import', 'tsx'] : [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, ...env },
  });
  process.on('exit', () => child.kill('SIGKILL'));
  const hello = await new Promise<T>((resolve, reject) => {
    child.once('message', (m) => resolve(m as T));
    child.once('exit', (c) => reject(new Error(`bench server exited ${c}`)));
  });
  return { child, hello };
}

/** The service side's end: closes its apps, then its store, removes its temporary directory and exits. */
export async function stopServer(apps: { close(): Promise<unknown> }[], store: { close(): Promise<unknown> }, dir: string): Promise<never> {
  for (const a of apps) await a.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

export interface SgxKit {
  root: Uint8Array;
  pcsUrl: string;
  stop(): Promise<void>;
  quoteFor(nonce: Uint8Array): Uint8Array;
  bareOptions: Record<string, unknown>;
}

/** Test-PKI SGX platform, a loopback PCS serving its collateral, and a fast quote signer (template + one ECDSA sign). */
export async function sgxKit(): Promise<SgxKit> {
  const { createDcapWorld } = await import('../test/support/dcap-world.js');
  const { fakePcs } = await import('../test/support/fake-pcs.js');
  const { parseQuote } = await import('../src/tee/dcap/quote.js');
  const w = await createDcapWorld();
  const pcs = await fakePcs(w);
  const marker = new Uint8Array(64).fill(0x5a);
  const template = Buffer.from(await w.quote({ version: 3, tee: 'sgx', reportData: marker }));
  const parsed = parseQuote(template);
  const rdAt = template.indexOf(Buffer.from(marker));
  const sigAt = template.indexOf(Buffer.from(parsed.signature));
  const signedLen = parsed.signedData.length;
  const key = KeyObject.from(w.attKey.privateKey);
  const coll = await w.collateral('sgx');
  return {
    root: w.pki.root.der,
    pcsUrl: pcs.base,
    stop: pcs.stop,
    quoteFor(nonce) {
      const q = Buffer.from(template);
      q.fill(0, rdAt, rdAt + 64);
      q.set(nonce, rdAt);
      q.set(sign('sha256', q.subarray(0, signedLen), { key, dsaEncoding: 'ieee-p1363' }), sigAt);
      return new Uint8Array(q);
    },
    bareOptions: { trustAnchors: [w.pki.root.der], dcap: { collateral: frozenCollateral(coll) } },
  };
}

/**
 * A DCAP collateral set frozen as BundleCollateralProvider hands them out: the verifier prepares a frozen set once
 * and hashes an unfrozen one on every call.
 */
export function frozenCollateral<T extends { certs: unknown[]; crls: unknown[] }>(coll: T): T {
  return Object.freeze({ ...coll, certs: Object.freeze(coll.certs), crls: Object.freeze(coll.crls) });
}

export async function load(url: string, pool: string[], o: { connections: number; overallRate?: number; seconds: number; amount?: number; path?: string }) {
  let non2xx = 0;
  const used = pool[0];
  const codes: Record<number, number> = {};
  const result = await autocannon({
    url: `${url}${o.path ?? '/v1/attest'}`,
    connections: o.connections,
    // With `amount` the phase ends when its nonce pool is spent (a replayed nonce would measure the 409 path).
    ...(o.amount ? { amount: o.amount } : { duration: o.seconds }),
    ...(o.overallRate ? { overallRate: o.overallRate } : {}),
    requests: [{
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      setupRequest: (req: Record<string, unknown>) => {
        // An exhausted pool re-sends a used nonce: the 409s show up as non-200 in the report (raise BENCH_NONCES).
        return { ...req, body: pool.pop() ?? used };
      },
      onResponse: (status: number) => {
        if (status !== 200) (non2xx++, (codes[status] = (codes[status] ?? 0) + 1));
      },
    }],
  } as autocannon.Options);
  return { rps: result.requests.average, total: result.requests.total, p50: result.latency.p50, p99: result.latency.p99, non2xx, errors: result.errors, codes };
}

