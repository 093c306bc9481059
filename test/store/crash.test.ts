import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kek, SqliteStore } from '../../src/store/index.js';

const root = new URL('../..', import.meta.url).pathname;

test('SIGKILL under write load: every reported commit survives, nothing is half-written', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-crash-'));
  const kekHex = 'ab'.repeat(32);
  const db = join(dir, 'crash.db');
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test/store/crash-writer.ts'), db, kekHex], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    const committed = new Map<string, number>();
    let buf = '';
    let ready = false;
    let kill: NodeJS.Timeout | undefined;
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_c, sig) => resolve(sig)));
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line === 'ready') {
          ready = true;
          // Kill mid-stream, after enough writes that many are in flight and overwritten.
          kill = setTimeout(() => child.kill('SIGKILL'), 700);
          continue;
        }
        const [p, i] = line.split(' ');
        committed.set(p, Math.max(committed.get(p) ?? -1, Number(i)));
      }
    });
    const sig = await exited;
    clearTimeout(kill);
    assert.ok(ready, 'writer never became ready');
    assert.equal(sig, 'SIGKILL');
    assert.ok(committed.size > 10, `only ${committed.size} writes were committed before the kill`);

    const s = SqliteStore.open({ path: db, kek: Kek.parse(kekHex) });
    try {
      for (const p of await s.listResources()) {
        const r = (await s.getResource(p))!; // GCM authentication fails on any torn record
        const v = Buffer.from(r.value);
        const body = v.subarray(0, v.length - 32);
        assert.deepEqual(v.subarray(v.length - 32), createHash('sha256').update(body).digest(), `${p} is half-written`);
        const [hp, hi] = body.toString('latin1').split('#');
        assert.equal(hp, p);
        // The stored generation is at least the last one reported committed (a later unreported one may also be there).
        const want = committed.get(p);
        if (want !== undefined) assert.ok(Number(hi) >= want, `${p}: committed generation ${want} lost (found ${hi})`);
      }
      for (const p of committed.keys()) assert.ok(await s.getResource(p), `committed ${p} is missing`);
      const audits = await s.listAudit({ limit: 1000 });
      assert.ok(audits.length > 0);
    } finally {
      await s.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
