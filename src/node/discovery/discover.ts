/**
 * TEE discovery over a host's /sys and /dev mounted somewhere (the agent's DaemonSet mounts them at /host/sys and
 * /host/dev): a pure function of the directory tree, so tests build fake trees in a temp dir.
 *
 * What the kernel exposes (Linux 6.x):
 * - SGX (in-tree driver, 5.11+): /dev/sgx_enclave, /dev/sgx_provision; per-NUMA-node EPC size in
 *   /sys/devices/system/node/node<N>/x86/sgx_total_bytes (Documentation/ABI/stable/sysfs-devices-node, 6.2+).
 *   The in-tree driver refuses to load without Flexible Launch Control (arch/x86/kernel/cpu/sgx/main.c:
 *   "SGX disabled: SGX launch control CPU feature is not available"), so /dev/sgx_enclave implies FLC.
 *   The out-of-tree DCAP driver's /dev/sgx/enclave and the legacy /dev/isgx count as SGX without that guarantee.
 * - TDX guest: /dev/tdx_guest; SEV-SNP guest: /dev/sev-guest; both can also serve quotes through configfs-tsm
 *   at /sys/kernel/config/tsm/report.
 * - TPM: /dev/tpmrm0 and /sys/class/tpm/tpm0/tpm_version_major.
 * - KVM host: /dev/kvm; Microsoft Hypervisor root partition (AKS pod sandboxing hosts): /dev/mshv.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

export interface HostPaths {
  sys: string;
  dev: string;
}

export interface SgxFacts {
  /** The in-tree driver's devices (FLC implied) or an out-of-tree driver's. */
  driver: 'in-tree' | 'out-of-tree';
  enclaveDevice: string;
  provisionDevice?: string;
  flc: boolean;
  /** Sum of sgx_total_bytes over NUMA nodes; undefined when the kernel does not expose it. */
  epcBytes?: number;
  epcByNode: Record<number, number>;
}

export interface TeeFacts {
  sgx?: SgxFacts;
  tdxGuest: boolean;
  snpGuest: boolean;
  /** configfs-tsm report interface present (TDX/SNP/CCA guest quotes by file I/O). */
  tsmReport: boolean;
  tpm?: { device: string; versionMajor?: number };
  kvm: boolean;
  mshv: boolean;
}

async function exists(p: string, kind?: 'dir' | 'file'): Promise<boolean> {
  try {
    const s = await stat(p);
    if (kind === 'dir') return s.isDirectory();
    return true;
  } catch {
    return false;
  }
}

async function readInt(p: string): Promise<number | undefined> {
  try {
    const text = (await readFile(p, 'utf8')).trim();
    return /^\d+$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

/** EPC bytes per NUMA node from sysfs; empty when the kernel predates sgx_total_bytes. */
export async function readEpcByNode(sys: string): Promise<Record<number, number>> {
  const base = path.join(sys, 'devices/system/node');
  const out: Record<number, number> = {};
  let entries: string[];
  try {
    entries = await readdir(base);
  } catch {
    return out;
  }
  for (const e of entries) {
    const m = /^node(\d+)$/.exec(e);
    if (!m) continue;
    const bytes = await readInt(path.join(base, e, 'x86/sgx_total_bytes'));
    if (bytes !== undefined) out[Number(m[1])] = bytes;
  }
  return out;
}

async function discoverSgx(host: HostPaths): Promise<SgxFacts | undefined> {
  const dev = (n: string) => path.join(host.dev, n);
  let driver: SgxFacts['driver'];
  let enclaveDevice: string;
  let provisionDevice: string | undefined;
  if (await exists(dev('sgx_enclave'))) {
    driver = 'in-tree';
    enclaveDevice = '/dev/sgx_enclave';
    if (await exists(dev('sgx_provision'))) provisionDevice = '/dev/sgx_provision';
  } else if (await exists(dev('sgx/enclave'))) {
    driver = 'out-of-tree';
    enclaveDevice = '/dev/sgx/enclave';
    if (await exists(dev('sgx/provision'))) provisionDevice = '/dev/sgx/provision';
  } else if (await exists(dev('isgx'))) {
    driver = 'out-of-tree';
    enclaveDevice = '/dev/isgx';
  } else {
    return undefined;
  }
  const epcByNode = await readEpcByNode(host.sys);
  const values = Object.values(epcByNode);
  return {
    driver,
    enclaveDevice,
    provisionDevice,
    flc: driver === 'in-tree',
    epcBytes: values.length ? values.reduce((a, b) => a + b, 0) : undefined,
    epcByNode,
  };
}

export async function discoverTee(host: HostPaths): Promise<TeeFacts> {
  const dev = (n: string) => path.join(host.dev, n);
  let tpm: TeeFacts['tpm'];
  if (await exists(dev('tpmrm0'))) tpm = { device: '/dev/tpmrm0', versionMajor: await readInt(path.join(host.sys, 'class/tpm/tpm0/tpm_version_major')) };
  else if (await exists(dev('tpm0'))) tpm = { device: '/dev/tpm0', versionMajor: await readInt(path.join(host.sys, 'class/tpm/tpm0/tpm_version_major')) };
  return {
    sgx: await discoverSgx(host),
    tdxGuest: await exists(dev('tdx_guest')),
    snpGuest: await exists(dev('sev-guest')),
    tsmReport: await exists(path.join(host.sys, 'kernel/config/tsm/report'), 'dir'),
    tpm,
    kvm: await exists(dev('kvm')),
    mshv: await exists(dev('mshv')),
  };
}
