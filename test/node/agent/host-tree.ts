// Fake host /sys and /dev trees (regular files stand in for device nodes: discovery only checks presence).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface HostTree {
  root: string;
  sys: string;
  dev: string;
  file(rel: string, content?: string): void;
  remove(rel: string): void;
  cleanup(): void;
}

export function hostTree(): HostTree {
  const root = mkdtempSync(path.join(tmpdir(), 'coffer-host-'));
  const t: HostTree = {
    root,
    sys: path.join(root, 'sys'),
    dev: path.join(root, 'dev'),
    file(rel, content = '') {
      const p = path.join(root, rel);
      mkdirSync(path.dirname(p), { recursive: true });
      writeFileSync(p, content);
    },
    remove(rel) {
      rmSync(path.join(root, rel), { recursive: true, force: true });
    },
    cleanup() {
      rmSync(root, { recursive: true, force: true });
    },
  };
  mkdirSync(t.sys);
  mkdirSync(t.dev);
  return t;
}

/** An SGX host as Linux 6.2+ shows it: in-tree devices, EPC split over two NUMA nodes. */
export function sgxHost(t: HostTree, mibPerNode = [64, 32]): void {
  t.file('dev/sgx_enclave');
  t.file('dev/sgx_provision');
  mibPerNode.forEach((mib, i) => t.file(`sys/devices/system/node/node${i}/x86/sgx_total_bytes`, `${mib * 1024 * 1024}\n`));
  t.file('sys/devices/system/node/possible', '0-1\n');
}
