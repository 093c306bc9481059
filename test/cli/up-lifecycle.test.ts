/**
 * `coffer up` as a process: a second `up` on the same data dir is refused with the owner's PID; SIGKILL leaves no
 * swtpm running and the next start takes over the stale lock; an existing --data keeps its mode while a
 * world-readable coffer.db and its -wal/-shm become 0600; an empty KEK from an interrupted first start is repaired.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServices } from '../../src/cli/commands/up.js';
import { captureContext, cli, spawnCofferServer, type CofferServer } from '../support/cli.js';
import { swtpmSkip } from '../support/swtpm.js';
import { waitFor } from '../support/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'coffer-up-life-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const alive = (pid: number) => {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
};

test('second up is refused with the PID; SIGKILL leaves no swtpm and no lock that blocks the restart', { skip: swtpmSkip }, async () => {
  const data = join(dir, 'locked');
  let server: CofferServer | undefined;
  try {
    server = await spawnCofferServer(['up', '--dev', '--swtpm', 'on', '--port', '0', '--pcs-url', 'off', '--kds-url', 'off', '--data', data], { env: { COFFER_KEK: '' } });
    const pid = server.child.pid!;
    assert.equal(readFileSync(join(data, 'coffer.lock'), 'utf8').split(' ')[0], String(pid));
    const swtpmPid = Number(readFileSync(join(data, 'swtpm', 'swtpm.pid'), 'utf8').trim());
    assert.ok(alive(swtpmPid), 'swtpm runs');

    const second = await cli(['up', '--swtpm', 'off', '--port', '0', '--pcs-url', 'off', '--kds-url', 'off', '--data', data]);
    assert.equal(second.code, 2);
    assert.equal(second.err.trim(), `coffer: data directory '${data}' is in use by PID ${pid} (${join(data, 'coffer.lock')})`);

    server.kill(); // SIGKILL: no handler runs
    await waitFor('swtpm gone with its parent', () => !alive(swtpmPid), 20_000);
    await waitFor('coffer up gone', () => !alive(pid), 20_000);
  } finally {
    server?.kill();
  }
  // The stale lock (dead PID) is taken over; swtpm starts again on the same state dir.
  const ctx = captureContext();
  const s = await startServices('up', { port: '0', host: '127.0.0.1', data, dev: true, swtpm: 'on', pcsUrl: 'off', kdsUrl: 'off' }, ctx, {});
  try {
    assert.match(ctx.out(), /dev TPM \(swtpm\) +127\.0\.0\.1:\d+, AK pinned/);
    assert.equal(readFileSync(join(data, 'coffer.lock'), 'utf8').split(' ')[0], String(process.pid));
  } finally {
    await s.stop();
  }
  assert.ok(!existsSync(join(data, 'coffer.lock')), 'a clean stop releases the lock');
});

test('a lock whose PID now belongs to another process (PID reuse) is stale', async () => {
  const data = join(dir, 'reused');
  mkdirSync(data, { recursive: true });
  // PID 1 is alive, but started long before this lock says its owner did.
  writeFileSync(join(data, 'coffer.lock'), '1 999999999999\n');
  const s = await startServices('up', { port: '0', host: '127.0.0.1', data, swtpm: 'off', pcsUrl: 'off', kdsUrl: 'off' }, captureContext(), {});
  await s.stop();
  writeFileSync(join(data, 'coffer.lock'), `1 ${readFileSync('/proc/1/stat', 'utf8').split(') ')[1].split(' ')[19]}\n`);
  await assert.rejects(startServices('up', { port: '0', host: '127.0.0.1', data, swtpm: 'off', pcsUrl: 'off', kdsUrl: 'off' }, captureContext(), {}), /is in use by PID 1 /);
});

test('--data on an existing directory keeps its mode; a world-readable coffer.db and its -wal/-shm become 0600', async () => {
  const data = join(dir, 'shared');
  mkdirSync(data, { mode: 0o755 });
  chmodSync(data, 0o755);
  // An existing database (empty file: SQLite initialises it) and WAL files someone left world-readable.
  for (const f of ['coffer.db', 'coffer.db-wal', 'coffer.db-shm']) {
    writeFileSync(join(data, f), '');
    chmodSync(join(data, f), 0o666);
  }
  const s = await startServices('up', { port: '0', host: '127.0.0.1', data, swtpm: 'off', pcsUrl: 'off', kdsUrl: 'off' }, captureContext(), {});
  try {
    await fetch(`${s.url}/v1/challenge`, { method: 'POST' }); // a write, so the WAL is in use
    assert.equal(statSync(data).mode & 0o777, 0o755, '--data keeps its mode');
    for (const f of ['coffer.db', 'coffer.db-wal', 'coffer.db-shm']) assert.equal(statSync(join(data, f)).mode & 0o777, 0o600, f);
    assert.equal(statSync(join(data, 'keys')).mode & 0o777, 0o700);
    assert.equal(statSync(join(data, 'keys', 'kek')).mode & 0o777, 0o600);
  } finally {
    await s.stop();
  }
});

test('an empty KEK left by an interrupted first start is replaced while the store is still empty', async () => {
  const data = join(dir, 'interrupted');
  mkdirSync(join(data, 'keys'), { recursive: true, mode: 0o700 });
  writeFileSync(join(data, 'coffer.db'), '', { mode: 0o600 });
  writeFileSync(join(data, 'keys', 'kek'), '', { mode: 0o600 });
  const s = await startServices('up', { port: '0', host: '127.0.0.1', data, swtpm: 'off', pcsUrl: 'off', kdsUrl: 'off' }, captureContext(), {});
  try {
    assert.match(readFileSync(join(data, 'keys', 'kek'), 'utf8'), /^[0-9a-f]{64}\n$/);
  } finally {
    await s.stop();
  }
  // No temp files left beside the keys (writes are temp + fsync + rename).
  assert.deepEqual(readFileSync(join(data, 'keys', 'kek'), 'utf8').length, 65);
});

test('--swtpm auto falls back to the sample TEE when swtpm fails to start; --swtpm on is an error', { skip: swtpmSkip }, async () => {
  const data = join(dir, 'no-swtpm');
  mkdirSync(data, { recursive: true });
  writeFileSync(join(data, 'swtpm'), 'a file where the swtpm state dir should be');
  let err = '';
  const ctx = { ...captureContext(), io: { out: () => undefined, err: (s: string) => void (err += s) } };
  const s = await startServices('up', { port: '0', host: '127.0.0.1', data, dev: true, swtpm: 'auto', pcsUrl: 'off', kdsUrl: 'off' }, ctx, {});
  try {
    assert.match(err, /coffer: swtpm did not start \(.*\); continuing without the dev TPM/);
    const r = await fetch(`${s.url}/v1/challenge`, { method: 'POST' });
    assert.equal(r.status, 201);
  } finally {
    await s.stop();
  }
  await assert.rejects(startServices('up', { port: '0', host: '127.0.0.1', data, dev: true, swtpm: 'on', pcsUrl: 'off', kdsUrl: 'off' }, captureContext(), {}), /--swtpm on: swtpm did not start/);
  assert.ok(!existsSync(join(data, 'coffer.lock')), 'the failed start released its lock');
});
