/**
 * npm peers the benchmarks measure beside Coffer, installed in bench/peers (own package.json and lockfile; never a
 * dependency of Coffer). Installed on first use with `npm ci`; when that fails (offline) the peers are skipped
 * with a message.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const dir = fileURLToPath(new URL('./peers/', import.meta.url));

export interface DcapPeer {
  name: string;
  /** Verifies a quote against dcap-qvl QuoteCollateralV3 JSON (the shared vectors' format) at `nowSecs`; returns the TCB status. */
  verify(quote: Uint8Array, collateral: Record<string, string>, nowSecs: number): string;
}

function ensureInstalled(): boolean {
  if (existsSync(join(dir, 'node_modules', '@phala', 'dcap-qvl', 'package.json')) && existsSync(join(dir, 'node_modules', '@phala', 'dcap-qvl-web', 'package.json'))) return true;
  try {
    console.log('bench: installing the npm peers into bench/peers (npm ci)...');
    execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'], timeout: 180_000 });
    return true;
  } catch (e) {
    console.log(`bench: npm peers unavailable, skipping them (${(e as Error).message.split('\n')[0]})`);
    return false;
  }
}

export async function dcapPeers(): Promise<DcapPeer[]> {
  if (!ensureInstalled()) return [];
  const peers: DcapPeer[] = [];
  try {
    const qvl = createRequire(join(dir, 'package.json'))('@phala/dcap-qvl') as { verify(q: Uint8Array, c: unknown, now: number): { status: string } };
    peers.push({ name: '@phala/dcap-qvl (JS)', verify: (q, c, now) => qvl.verify(Buffer.from(q), c, now).status });
  } catch (e) {
    console.log(`bench: @phala/dcap-qvl unavailable: ${(e as Error).message}`);
  }
  try {
    const webDir = join(dir, 'node_modules', '@phala', 'dcap-qvl-web');
    const web = (await import(join(webDir, 'dcap-qvl-web.js'))) as {
      initSync(o: { module: Uint8Array }): void;
      js_verify(q: Uint8Array, c: unknown, now: bigint): { status: string };
    };
    web.initSync({ module: readFileSync(join(webDir, 'dcap-qvl-web_bg.wasm')) });
    peers.push({ name: '@phala/dcap-qvl-web (Rust/WASM)', verify: (q, c, now) => web.js_verify(q, c, BigInt(now)).status });
  } catch (e) {
    console.log(`bench: @phala/dcap-qvl-web unavailable: ${(e as Error).message}`);
  }
  return peers;
}

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
