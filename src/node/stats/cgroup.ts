/**
 * cgroup v1 and v2 counters for one container, read from a cgroup root (/sys/fs/cgroup or a host mount of it).
 * Parsing is pure (text in, numbers out) so tests feed it v1 and v2 trees built on disk.
 *
 * Files (Documentation/admin-guide/cgroup-v1/*.rst and cgroup-v2.rst):
 *  v1: cpuacct/cpuacct.usage (ns), memory/memory.usage_in_bytes + memory.stat (total_inactive_file),
 *      blkio/blkio.throttle.io_service_bytes_recursive + io_serviced_recursive ("MAJ:MIN Read|Write N"),
 *      pids/pids.current
 *  v2: cpu.stat (usage_usec), memory.current + memory.stat (inactive_file), io.stat
 *      ("MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.."), pids.current
 * Working set = usage − inactive file pages, as the kubelet and cAdvisor compute it.
 * Reads are synchronous: cgroupfs files are small kernel-generated text, and one sync read costs a fraction of an
 * async one (no thread-pool round trip), which is what keeps a 1,000-pod scrape cheap.
 */
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import path from 'node:path';

export type CgroupVersion = 1 | 2;

export interface CgroupCounters {
  cpuSeconds?: number;
  memoryWorkingSetBytes?: number;
  blkioReadBytes?: number;
  blkioWriteBytes?: number;
  blkioReadOps?: number;
  blkioWriteOps?: number;
  processes?: number;
}

/** Files bigger than this are not cgroup counters (io.stat on a host with thousands of devices stays far below). */
const MAX_FILE = 256 * 1024;
const buf = () => Buffer.allocUnsafe(MAX_FILE);

/** v2 when the root itself is a cgroup2 mount (it has cgroup.controllers); a v1 or hybrid host otherwise. */
export function detectCgroupVersion(root: string): CgroupVersion {
  return existsSync(path.join(root, 'cgroup.controllers')) ? 2 : 1;
}

/** One reader per collector: reuses a scratch buffer (no per-file allocation), returns undefined when absent. */
export class CgroupFileReader {
  private readonly scratch = buf();
  /** Files read since construction (the bench compares against a raw read of the same files). */
  reads = 0;

  read(file: string): string | undefined {
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch {
      return undefined;
    }
    try {
      this.reads++;
      let n = 0;
      // cgroupfs and procfs (seq_file) and regular files fill the buffer up to EOF in one read: a short read is the
      // end, which saves the second read() that would return 0 (a quarter of the syscalls per file)
      for (;;) {
        const want = MAX_FILE - n;
        const r = readSync(fd, this.scratch, n, want, null);
        if (r <= 0) break;
        n += r;
        if (n >= MAX_FILE) return undefined;
        if (r < want) break;
      }
      return this.scratch.toString('latin1', 0, n);
    } catch {
      return undefined;
    } finally {
      closeSync(fd);
    }
  }
}

function int(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const t = s.trim();
  return /^\d+$/.test(t) ? Number(t) : undefined;
}

/** `key value` lines (memory.stat, cpu.stat) → map; lines that are not two fields with a number are skipped. */
export function parseFlatKeyed(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const sp = line.indexOf(' ');
    if (sp <= 0) continue;
    const v = int(line.slice(sp + 1));
    if (v !== undefined) out.set(line.slice(0, sp), v);
  }
  return out;
}

/** v1 blkio.*io_service_bytes / io_serviced: sums the per-device Read and Write lines (the "Total" lines are skipped). */
export function parseV1Blkio(text: string): { read: number; write: number } {
  let read = 0;
  let write = 0;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 3 || !/^\d+:\d+$/.test(f[0]!)) continue;
    const v = int(f[2]);
    if (v === undefined) continue;
    if (f[1] === 'Read') read += v;
    else if (f[1] === 'Write') write += v;
  }
  return { read, write };
}

/** v2 io.stat: one line per device with key=value pairs; sums rbytes, wbytes, rios, wios over devices. */
export function parseV2IoStat(text: string): { rbytes: number; wbytes: number; rios: number; wios: number } {
  const out = { rbytes: 0, wbytes: 0, rios: 0, wios: 0 };
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (!/^\d+:\d+$/.test(f[0] ?? '')) continue;
    for (const kv of f.slice(1)) {
      const eq = kv.indexOf('=');
      const k = kv.slice(0, eq);
      const v = int(kv.slice(eq + 1));
      if (v !== undefined && (k === 'rbytes' || k === 'wbytes' || k === 'rios' || k === 'wios')) out[k] += v;
    }
  }
  return out;
}

function workingSet(usage: number | undefined, stat: Map<string, number> | undefined, inactiveKey: string): number | undefined {
  if (usage === undefined) return undefined;
  const inactive = stat?.get(inactiveKey) ?? 0;
  return usage > inactive ? usage - inactive : 0;
}

export interface ReadOptions {
  /** Also read CPU and memory (when the CRI runtime did not report them). */
  cpuMemory: boolean;
}

/**
 * The files of one cgroup, joined once per container (not per scrape). Where a kernel has either of two files
 * (v1 blkio `_recursive` or not), the first that reads is remembered and the other dropped.
 */
export interface CgroupFiles {
  version: CgroupVersion;
  blkBytes: string[];
  blkOps: string[];
  pids: string;
  cpu: string;
  memUsage: string;
  memStat: string;
  /** v2: io.stat */
  io: string;
}

export function cgroupFiles(root: string, version: CgroupVersion, rel: string): CgroupFiles {
  if (version === 1) {
    const blk = path.join(root, 'blkio', rel);
    const mem = path.join(root, 'memory', rel);
    return {
      version,
      // _recursive includes child cgroups (a pod-level cgroup); some kernels have only the flat file
      blkBytes: [path.join(blk, 'blkio.throttle.io_service_bytes_recursive'), path.join(blk, 'blkio.throttle.io_service_bytes')],
      blkOps: [path.join(blk, 'blkio.throttle.io_serviced_recursive'), path.join(blk, 'blkio.throttle.io_serviced')],
      pids: path.join(root, 'pids', rel, 'pids.current'),
      cpu: path.join(root, 'cpuacct', rel, 'cpuacct.usage'),
      memUsage: path.join(mem, 'memory.usage_in_bytes'),
      memStat: path.join(mem, 'memory.stat'),
      io: '',
    };
  }
  const dir = path.join(root, rel);
  return { version, blkBytes: [], blkOps: [], pids: path.join(dir, 'pids.current'), cpu: path.join(dir, 'cpu.stat'), memUsage: path.join(dir, 'memory.current'), memStat: path.join(dir, 'memory.stat'), io: path.join(dir, 'io.stat') };
}

function readFirst(reader: CgroupFileReader, alternatives: string[]): string | undefined {
  for (let i = 0; i < alternatives.length; i++) {
    const text = reader.read(alternatives[i]!);
    if (text !== undefined) {
      if (i > 0) alternatives.splice(0, i); // this kernel has the later one: stop trying the earlier
      else if (alternatives.length > 1) alternatives.length = 1;
      return text;
    }
  }
  return undefined;
}

/** Counters of one cgroup (see cgroupFiles). */
export function readCgroupFiles(reader: CgroupFileReader, f: CgroupFiles, opts: ReadOptions): CgroupCounters {
  const out: CgroupCounters = {};
  if (f.version === 1) {
    const bytes = readFirst(reader, f.blkBytes);
    if (bytes !== undefined) ({ read: out.blkioReadBytes, write: out.blkioWriteBytes } = parseV1Blkio(bytes));
    const ops = readFirst(reader, f.blkOps);
    if (ops !== undefined) ({ read: out.blkioReadOps, write: out.blkioWriteOps } = parseV1Blkio(ops));
    out.processes = int(reader.read(f.pids));
    if (opts.cpuMemory) {
      const ns = int(reader.read(f.cpu));
      if (ns !== undefined) out.cpuSeconds = ns / 1e9;
      const stat = reader.read(f.memStat);
      out.memoryWorkingSetBytes = workingSet(int(reader.read(f.memUsage)), stat === undefined ? undefined : parseFlatKeyed(stat), 'total_inactive_file');
    }
    return out;
  }
  const io = reader.read(f.io);
  if (io !== undefined) {
    const s = parseV2IoStat(io);
    out.blkioReadBytes = s.rbytes;
    out.blkioWriteBytes = s.wbytes;
    out.blkioReadOps = s.rios;
    out.blkioWriteOps = s.wios;
  }
  out.processes = int(reader.read(f.pids));
  if (opts.cpuMemory) {
    const cpu = reader.read(f.cpu);
    const usec = cpu === undefined ? undefined : parseFlatKeyed(cpu).get('usage_usec');
    if (usec !== undefined) out.cpuSeconds = usec / 1e6;
    const stat = reader.read(f.memStat);
    out.memoryWorkingSetBytes = workingSet(int(reader.read(f.memUsage)), stat === undefined ? undefined : parseFlatKeyed(stat), 'inactive_file');
  }
  return out;
}

/** Counters of the cgroup at `rel` (a path relative to the hierarchy root, e.g. /kubepods/pod<uid>/<id>). */
export function readCgroup(reader: CgroupFileReader, root: string, version: CgroupVersion, rel: string, opts: ReadOptions): CgroupCounters {
  return readCgroupFiles(reader, cgroupFiles(root, version, rel), opts);
}

/**
 * An OCI `linux.cgroupsPath` → a path under the hierarchy root. cgroupfs driver: already a path ("/kubepods/...").
 * systemd driver: "slice:prefix:name" → the slice's nested parents, then "<prefix>-<name>.scope"
 * (runc libcontainer/cgroups/systemd ExpandSlice: a-b-c.slice lives in a.slice/a-b.slice/a-b-c.slice).
 * undefined for anything else (never a path outside the root).
 */
export function cgroupsPathToRel(cgroupsPath: string): string | undefined {
  if (cgroupsPath.startsWith('/')) {
    // a runtime never writes '..' here: refuse it rather than guess what was meant
    return cgroupsPath.split('/').includes('..') ? undefined : path.posix.normalize(cgroupsPath);
  }
  const parts = cgroupsPath.split(':');
  if (parts.length !== 3) return undefined;
  const [slice, prefix, name] = parts as [string, string, string];
  if (!/^[\w.@-]*$/.test(slice) || !/^[\w.@-]+$/.test(prefix) || !/^[\w.@-]+$/.test(name)) return undefined;
  const dirs: string[] = [];
  if (slice && slice !== '-.slice') {
    if (!slice.endsWith('.slice')) return undefined;
    const base = slice.slice(0, -'.slice'.length);
    const words = base.split('-');
    if (words.some((w) => w === '')) return undefined;
    for (let i = 1; i <= words.length; i++) dirs.push(words.slice(0, i).join('-') + '.slice');
  }
  const unit = name.endsWith('.slice') ? name : `${prefix}-${name}.scope`;
  return '/' + [...dirs, unit].join('/');
}
