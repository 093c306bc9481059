/**
 * SGX EPC as a countable kubelet resource (`kubernetes.azure.com/sgx_epc_mem_in_MiB` on AKS): the node's EPC is
 * advertised as N devices of `unitMiB` each, the way AKS's and Alibaba's SGX plugins expose EPC MiB, so a pod's
 * request of 10 takes 10 "devices". Any allocation hands the container the SGX device nodes (the kubelet adds
 * them to the container's device cgroup). No NUMA topology is reported: the kernel places enclave pages on any
 * node, so pinning EPC to one NUMA node would only make the Topology Manager refuse pods.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { DevicePluginError } from './errors.js';
import type { ContainerAllocateResponse } from './proto.js';
import { UnitDeviceSource } from './units.js';

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

export class SgxEpcSource extends UnitDeviceSource {
  private provisionPresent = false;

  private constructor(private readonly opts: SgxEpcOptions) {
    super('epc', Math.floor(opts.epcMiB / opts.unitMiB), 'EPC device');
  }

  static async create(opts: SgxEpcOptions): Promise<SgxEpcSource> {
    if (!Number.isInteger(opts.unitMiB) || opts.unitMiB < 1) throw new DevicePluginError('BAD_REQUEST', `unit ${opts.unitMiB} MiB must be a positive integer`);
    if (!Number.isInteger(opts.epcMiB) || opts.epcMiB < opts.unitMiB) throw new DevicePluginError('NO_EPC', `EPC of ${opts.epcMiB} MiB holds no ${opts.unitMiB} MiB unit`);
    if (opts.epcMiB / opts.unitMiB > MAX_DEVICES) throw new DevicePluginError('BAD_REQUEST', `EPC of ${opts.epcMiB} MiB in ${opts.unitMiB} MiB units is more than ${MAX_DEVICES} devices; use a larger unit`);
    const s = new SgxEpcSource(opts);
    await s.startProbing(opts.healthIntervalMs ?? 5000);
    return s;
  }

  /** Device presence: healthy when the enclave device (and, unless turned off, the provisioning one) exists. */
  protected async refresh(): Promise<boolean> {
    const present = (n: string) => stat(path.join(this.opts.hostDev, n)).then(() => true, () => false);
    const enclave = await present('sgx_enclave');
    const provision = await present('sgx_provision');
    const healthy = enclave && (this.opts.provision === false || provision);
    const changed = healthy !== this.healthy || provision !== this.provisionPresent;
    this.healthy = healthy;
    this.provisionPresent = provision;
    return changed;
  }

  allocate(deviceIds: string[]): ContainerAllocateResponse {
    this.checkAllocation(deviceIds);
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
}
