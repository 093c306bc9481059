// cgroup v1 and v2 counters read from trees built on disk (the kernel's file formats, as a node shows them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cgroupsPathToRel, CgroupFileReader, detectCgroupVersion, parseFlatKeyed, parseV1Blkio, parseV2IoStat, readCgroup } from '../../../src/node/stats/cgroup.js';
import { parseNetDev } from '../../../src/node/stats/netdev.js';

function tree(files: Record<string, string>): { root: string; cleanup(): void } {
  const root = mkdtempSync(path.join(tmpdir(), 'coffer-cg-'));
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  }
  return { root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

const REL = '/kubepods/burstable/pod1234/abcd';
const V1_BLKIO_BYTES = `254:0 Read 16777216\n254:0 Write 33554432\n254:0 Sync 50331648\n254:0 Async 0\n254:0 Discard 0\n254:0 Total 50331648\n8:0 Read 4096\n8:0 Write 0\n8:0 Total 4096\nTotal 50335744\n`;
const V1_BLKIO_OPS = `254:0 Read 16\n254:0 Write 32\n254:0 Total 48\nTotal 48\n`;

test('cgroup v1 (hybrid): blkio bytes/ops summed over devices (Total lines ignored), pids, cpuacct, working set = usage − total_inactive_file', () => {
  const t = tree({
    [`blkio${REL}/blkio.throttle.io_service_bytes_recursive`]: V1_BLKIO_BYTES,
    [`blkio${REL}/blkio.throttle.io_serviced_recursive`]: V1_BLKIO_OPS,
    [`pids${REL}/pids.current`]: '7\n',
    [`cpuacct${REL}/cpuacct.usage`]: '2500000000\n',
    [`memory${REL}/memory.usage_in_bytes`]: '104857600\n',
    [`memory${REL}/memory.stat`]: 'cache 1000\nrss 2000\ninactive_file 5\ntotal_cache 1000\ntotal_inactive_file 4857600\ntotal_active_file 10\n',
    'unified/cgroup.controllers': 'hugetlb\n', // hybrid: cgroup2 mounted below the root, not at it
  });
  try {
    assert.equal(detectCgroupVersion(t.root), 1);
    const r = new CgroupFileReader();
    assert.deepEqual(readCgroup(r, t.root, 1, REL, { cpuMemory: true }), {
      blkioReadBytes: 16777216 + 4096,
      blkioWriteBytes: 33554432,
      blkioReadOps: 16,
      blkioWriteOps: 32,
      processes: 7,
      cpuSeconds: 2.5,
      memoryWorkingSetBytes: 100000000,
    });
    // CPU and memory files are not read when the runtime reported them
    const before = r.reads;
    const slim = readCgroup(r, t.root, 1, REL, { cpuMemory: false });
    assert.equal(slim.cpuSeconds, undefined);
    assert.equal(r.reads - before, 3);
  } finally {
    t.cleanup();
  }
});

test('cgroup v1: the flat throttle files when the _recursive ones are missing; absent controllers leave values undefined', () => {
  const t = tree({ [`blkio${REL}/blkio.throttle.io_service_bytes`]: '8:16 Read 10\n8:16 Write 20\n' });
  try {
    assert.deepEqual(readCgroup(new CgroupFileReader(), t.root, 1, REL, { cpuMemory: true }), {
      blkioReadBytes: 10,
      blkioWriteBytes: 20,
      processes: undefined,
      memoryWorkingSetBytes: undefined,
    });
  } finally {
    t.cleanup();
  }
});

test('cgroup v2: io.stat over devices, cpu.stat usage_usec, memory.current − inactive_file, pids.current', () => {
  const t = tree({
    'cgroup.controllers': 'cpuset cpu io memory hugetlb pids rdma misc\n',
    [`${REL.slice(1)}/io.stat`]: '254:0 rbytes=1048576 wbytes=2097152 rios=4 wios=8 dbytes=0 dios=0\n8:0 rbytes=512 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n',
    [`${REL.slice(1)}/cpu.stat`]: 'usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\nnr_periods 0\n',
    [`${REL.slice(1)}/memory.current`]: '50000000\n',
    [`${REL.slice(1)}/memory.stat`]: 'anon 1000\nfile 30000000\nactive_file 1000\ninactive_file 20000000\n',
    [`${REL.slice(1)}/pids.current`]: '3\n',
  });
  try {
    assert.equal(detectCgroupVersion(t.root), 2);
    assert.deepEqual(readCgroup(new CgroupFileReader(), t.root, 2, REL, { cpuMemory: true }), {
      blkioReadBytes: 1048576 + 512,
      blkioWriteBytes: 2097152,
      blkioReadOps: 5,
      blkioWriteOps: 8,
      processes: 3,
      cpuSeconds: 1.5,
      memoryWorkingSetBytes: 30000000,
    });
  } finally {
    t.cleanup();
  }
});

test('parsers reject what is not a counter (garbage lines, non-numbers) instead of producing NaN', () => {
  assert.deepEqual(parseV1Blkio('254:0 Read x\nnonsense\n254:0 Write 5\n'), { read: 0, write: 5 });
  assert.deepEqual(parseV2IoStat('254:0 rbytes=abc wbytes=7\nbogus rbytes=9\n'), { rbytes: 0, wbytes: 7, rios: 0, wios: 0 });
  assert.deepEqual([...parseFlatKeyed('a 1\nb -2\nc\nd 3.5\ne 4\n')], [['a', 1], ['e', 4]]);
  // working set never goes negative
  const t = tree({ [`memory${REL}/memory.usage_in_bytes`]: '10\n', [`memory${REL}/memory.stat`]: 'total_inactive_file 20\n' });
  try {
    assert.equal(readCgroup(new CgroupFileReader(), t.root, 1, REL, { cpuMemory: true }).memoryWorkingSetBytes, 0);
  } finally {
    t.cleanup();
  }
});

test('OCI cgroupsPath → path under the root: cgroupfs paths as they are, systemd slice:prefix:name expanded, escapes refused', () => {
  assert.equal(cgroupsPathToRel('/kubepods/besteffort/pod1/abc'), '/kubepods/besteffort/pod1/abc');
  assert.equal(cgroupsPathToRel('kubepods-burstable-pod12.slice:cri-containerd:abc'), '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod12.slice/cri-containerd-abc.scope');
  assert.equal(cgroupsPathToRel('system.slice:docker:xyz'), '/system.slice/docker-xyz.scope');
  assert.equal(cgroupsPathToRel('/a/../../etc'), undefined);
  assert.equal(cgroupsPathToRel('relative/path'), undefined);
  assert.equal(cgroupsPathToRel('bad--slice.slice:p:n'), undefined);
  assert.equal(cgroupsPathToRel('x.slice:p:../n'), undefined);
});

test('net/dev: every interface but lo, with bytes, packets and errors', () => {
  const text = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     840      10    0    0    0     0          0         0      840      10    0    0    0     0       0          0
  eth0: 1234567    900    2    0    0     0          0         0   765432     800    1    0    0     0       0          0
`;
  assert.deepEqual(parseNetDev(text), [{ name: 'eth0', rxBytes: 1234567, rxPackets: 900, rxErrors: 2, txBytes: 765432, txPackets: 800, txErrors: 1 }]);
  assert.deepEqual(parseNetDev('garbage\neth1: 1 2 3\n'), []);
});
