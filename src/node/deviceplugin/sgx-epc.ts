/**
 * SGX EPC as a countable kubelet resource (`kubernetes.azure.com/sgx_epc_mem_in_MiB` on AKS): the node's EPC is
 * advertised as N devices of `unitMiB` each, the way AKS's and Alibaba's SGX plugins expose EPC MiB, so a pod's
 * request of 10 takes 10 "devices". Any allocation hands the container the SGX device nodes (the kubelet adds
 * them to the container's device cgroup). No NUMA topology is reported: the kernel places enclave pages on any
 * node, so pinning EPC to one NUMA node would only make the Topology Manager refuse pods.
 */
import { EventEmitter } from 'node:events';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { DevicePluginError } from './errors.js';
import { HEALTHY, UNHEALTHY, type ContainerAllocateResponse, type ContainerPreferredAllocationRequest, type Device } from './proto.js';
import type { DeviceSource } from './server.js';

export interface SgxEpcOptions {
  epcMiB: number;
  unitMiB: number;
  /** Where the host's /dev is visible to the plugin (health probing only). */
  hostDev: string;
  /** Hand /dev/sgx_provision to containers too (in-process DCAP quoting needs it); default true. */
  provision?: boolean;
  healthIntervalMs?: number;
}

/** DeviceSpecs use host paths (the kubelet resolves them on the host, not in this container). */
const ENCLAVE = '/dev/sgx_enclave';
const PROVISION = '/dev/sgx_provision';
const MAX_DEVICES = 1 << 20;

export class SgxEpcSource implements DeviceSource {
  readonly options = { pre_start_required: false, get_preferred_allocation_available: true };
  private healthy = false;
  private provisionPresent = false;
  private readonly ids: string[];
  private readonly events = new EventEmitter();
  private timer?: NodeJS.Timeout;

  private constructor(private readonly opts: SgxEpcOptions) {
    const n = Math.floor(opts.epcMiB / opts.unitMiB);
    this.ids = Array.from({ length: n }, (_, i) => `epc-${i}`);
  }

  static async create(opts: SgxEpcOptions): Promise<SgxEpcSource> {
    if (!Number.isInteger(opts.unitMiB) || opts.unitMiB < 1) throw new DevicePluginError('BAD_REQUEST', `unit ${opts.unitMiB} MiB must be a positive integer`);
    if (!Number.isInteger(opts.epcMiB) || opts.epcMiB < opts.unitMiB) throw new DevicePluginError('NO_EPC', `EPC of ${opts.epcMiB} MiB holds no ${opts.unitMiB} MiB unit`);
    if (opts.epcMiB / opts.unitMiB > MAX_DEVICES) throw new DevicePluginError('BAD_REQUEST', `EPC of ${opts.epcMiB} MiB in ${opts.unitMiB} MiB units is more than ${MAX_DEVICES} devices; use a larger unit`);
    const s = new SgxEpcSource(opts);
    await s.probe();
    s.timer = setInterval(() => void s.probe(), opts.healthIntervalMs ?? 5000);
    return s;
  }

  /** Re-reads device presence; emits a change when health flips. */
  async probe(): Promise<void> {
    const present = (n: string) => stat(path.join(this.opts.hostDev, n)).then(() => true, () => false);
    const enclave = await present('sgx_enclave');
    const provision = await present('sgx_provision');
    const healthy = enclave && (this.opts.provision === false || provision);
    const changed = healthy !== this.healthy || provision !== this.provisionPresent;
    this.healthy = healthy;
    this.provisionPresent = provision;
    if (changed) this.events.emit('change');
  }

  devices(): Device[] {
    const health = this.healthy ? HEALTHY : UNHEALTHY;
    return this.ids.map((ID) => ({ ID, health }));
  }

  subscribe(onChange: () => void): () => void {
    this.events.on('change', onChange);
    return () => this.events.off('change', onChange);
  }

  allocate(deviceIds: string[]): ContainerAllocateResponse {
    if (deviceIds.length === 0) throw new DevicePluginError('BAD_REQUEST', 'allocation names no EPC devices', grpc.status.INVALID_ARGUMENT);
    const known = new Set(this.ids);
    const unknown = deviceIds.filter((id) => !known.has(id));
    if (unknown.length) throw new DevicePluginError('UNKNOWN_DEVICE', `unknown EPC device(s) ${unknown.slice(0, 5).join(', ')}`, grpc.status.INVALID_ARGUMENT);
    if (new Set(deviceIds).size !== deviceIds.length) throw new DevicePluginError('BAD_REQUEST', 'allocation names an EPC device twice', grpc.status.INVALID_ARGUMENT);
    // Fail closed: a container admitted without the device nodes would only crash at enclave creation.
    if (!this.healthy) throw new DevicePluginError('DEVICE_UNHEALTHY', `${ENCLAVE}${this.opts.provision === false ? '' : ` or ${PROVISION}`} is missing on this node`);
    // The in-tree names plus the /dev/sgx/* aliases older DCAP/PSW releases open.
    const devices = [
      { container_path: ENCLAVE, host_path: ENCLAVE, permissions: 'rw' },
      { container_path: '/dev/sgx/enclave', host_path: ENCLAVE, permissions: 'rw' },
    ];
    if (this.opts.provision !== false) {
      devices.push({ container_path: PROVISION, host_path: PROVISION, permissions: 'rw' }, { container_path: '/dev/sgx/provision', host_path: PROVISION, permissions: 'rw' });
    }
    return { devices, envs: { COFFER_SGX_EPC_MIB: String(deviceIds.length * this.opts.unitMiB) } };
  }

  /** Units are interchangeable: must-include first, then the lowest-numbered available, up to the size asked. */
  preferred(req: ContainerPreferredAllocationRequest): string[] {
    const size = req.allocation_size;
    if (!Number.isInteger(size) || size < 0 || size > req.available_deviceIDs.length) throw new DevicePluginError('BAD_REQUEST', `allocation size ${size} is outside 0..${req.available_deviceIDs.length}`, grpc.status.INVALID_ARGUMENT);
    const out = [...new Set(req.must_include_deviceIDs)];
    const num = (id: string) => Number(id.slice(4));
    for (const id of [...req.available_deviceIDs].sort((a, b) => num(a) - num(b))) {
      if (out.length >= size) break;
      if (!out.includes(id)) out.push(id);
    }
    return out.slice(0, Math.max(size, req.must_include_deviceIDs.length));
  }

  close(): void {
    clearInterval(this.timer);
    this.events.removeAllListeners();
  }
}
