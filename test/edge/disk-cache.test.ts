import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeCacheFile, DiskCache, encodeCacheFile } from '../../src/edge/disk-cache.js';
import { ObjectCache } from '../../src/edge/object-cache.js';
import { makePod } from '../support/k8s-objects.js';

const podMeta = { group: '', version: 'v1', resource: 'pods', kind: 'Pod', apiVersion: 'v1', namespaced: true };

test('file format: checksum and length detect torn and altered files', () => {
  const f = encodeCacheFile('{"a":1}');
  const d = decodeCacheFile(f);
  assert.equal(d.ok && d.body.toString(), '{"a":1}');
  assert.equal(decodeCacheFile(f.subarray(0, f.length - 2)).ok, false);
  const flipped = Buffer.from(f);
  flipped[flipped.length - 2] ^= 1;
  const r = decodeCacheFile(flipped);
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.reason, 'checksum mismatch');
  assert.equal(decodeCacheFile(Buffer.from('garbage')).ok, false);
});

test('persist and reload a collection; torn file ignored; no temp files left; size bound', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-edge-'));
  try {
    const cache = new ObjectCache();
    const c = cache.collection('kubelet', podMeta)!;
    c.replaceScope(undefined, [], [], [{ ...makePod('a', 'p1', 'n1'), metadata: { ...makePod('a', 'p1', 'n1').metadata, resourceVersion: '7' } }, makePod('a', 'p2', 'n2')], '9');
    const disk = new DiskCache(dir, 10 * 1024 * 1024);
    await disk.flush(cache);
    assert.deepEqual(readdirSync(join(dir, 'kubelet')), ['pods.v1.core.json']);
    // Persisted entries keep only their index in memory; their bytes are read back from the file.
    assert.equal(c.get('a', 'p1')!.raw, undefined);
    assert.equal(JSON.parse(c.bytesOf(c.get('a', 'p1')!).toString()).metadata.resourceVersion, '7');
    c.upsert({ ...makePod('a', 'p3', 'n1'), metadata: { ...makePod('a', 'p3', 'n1').metadata, resourceVersion: '10' } });
    assert.ok(c.get('a', 'p3')!.raw, 'a newer entry is in memory until the next flush');
    await disk.flush(cache);
    assert.equal(JSON.parse(c.bytesOf(c.get('a', 'p2')!).toString()).metadata.name, 'p2', 'rewritten from the previous file generation');
    c.remove({ metadata: { namespace: 'a', name: 'p3' } });
    await disk.flush(cache);
    disk.close();
    const again = new ObjectCache();
    const reloaded = new DiskCache(dir, 10 * 1024 * 1024);
    const r = await reloaded.load(again);
    assert.deepEqual(r, { loaded: 1, rejected: 0 });
    const c2 = again.find('kubelet', '', 'v1', 'pods')!;
    assert.equal(c2.rv, '10', 'latest resourceVersion seen (p3 came and went)');
    assert.equal(c2.items.size, 2);
    assert.equal(c2.get('a', 'p1')!.fields['spec.nodeName'], 'n1');
    assert.equal(c2.get('a', 'p1')!.raw, undefined, 'loaded entries point into the file');
    assert.equal(JSON.parse(c2.bytesOf(c2.get('a', 'p2')!).toString()).spec.nodeName, 'n2');

    reloaded.close();
    // Torn write (a crash mid-write without our rename discipline): detected and ignored.
    const p = join(dir, 'kubelet', 'pods.v1.core.json');
    const full = readFileSync(p);
    writeFileSync(p, full.subarray(0, Math.floor(full.length / 2)));
    const events: string[] = [];
    const torn = new ObjectCache();
    const r2 = await new DiskCache(dir, 10 * 1024 * 1024, (e) => events.push(e)).load(torn);
    assert.deepEqual(r2, { loaded: 0, rejected: 1 });
    assert.deepEqual(events, ['cache_file_rejected']);
    assert.equal(torn.find('kubelet', '', 'v1', 'pods'), undefined);

    // Bound: a collection bigger than the budget is not written.
    const small = new DiskCache(join(dir, 'small'), 100, (e) => events.push(e));
    const mem = new ObjectCache();
    mem.collection('kubelet', podMeta)!.upsert(makePod('a', 'big', 'n1'));
    await small.flush(mem);
    assert.ok(events.includes('cache_full'));
    assert.equal(small.totalBytes(), 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
