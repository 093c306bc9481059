/**
 * The node's TPM as a shared kubelet resource (`coffer.dev/tpm`), the way the generic device plugins share one
 * device node: `shares` interchangeable units all backed by /dev/tpmrm0, so Coffer's attest agent and quote helper
 * each request `coffer.dev/tpm: 1` and run unprivileged (the kubelet adds the device to the container's device
 * cgroup; a hostPath device without this is refused by the cgroup, which is why the agent used to be privileged).
 * Sharing is safe on the resource-managed device: the kernel's tpmrm gives every opener its own virtual handle
 * space and runs one command at a time. The raw /dev/tpm0 is never handed out (one opener, no isolation).
 * When the host exposes the measured-boot event log, the allocation also bind-mounts its securityfs directory
 * read-only at EVENT_LOG_MOUNT, so the container needs no hostPath volume for it either.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { DevicePluginError } from './errors.js';
import type { ContainerAllocateResponse } from './proto.js';
import { UnitDeviceSource } from './units.js';

export const TPM_RESOURCE = 'coffer.dev/tpm';
/** Host paths (the kubelet resolves DeviceSpecs and Mounts on the host, not in the plugin's container). */
export const TPM_RM_DEVICE = '/dev/tpmrm0';
export const EVENT_LOG_HOST_DIR = '/sys/kernel/security/tpm0';
/** Where containers find the event log directory (outside /sys: a container's sysfs has no securityfs). */
export const EVENT_LOG_MOUNT = '/run/coffer/tpm0';
const MAX_SHARES = 64;

export interface TpmSourceOptions {
  /** How many containers on the node may hold the TPM at once (default 4: agent, quote helper, two spare). */
  shares?: number;
  /** Where the host's /dev and /sys are visible to the plugin (presence probing only). */
  hostDev: string;
  hostSys: string;
  healthIntervalMs?: number;
}

export class TpmDeviceSource extends UnitDeviceSource {
  private eventLog = false;

  private constructor(private readonly o: TpmSourceOptions) {
    super('tpm', o.shares ?? 4, 'TPM unit');
  }

  static async create(o: TpmSourceOptions): Promise<TpmDeviceSource> {
    const n = o.shares ?? 4;
    if (!Number.isInteger(n) || n < 1 || n > MAX_SHARES) throw new DevicePluginError('BAD_REQUEST', `shares ${n} must be an integer 1..${MAX_SHARES}`);
    const s = new TpmDeviceSource(o);
    await s.startProbing(o.healthIntervalMs ?? 5000);
    return s;
  }

  /** Presence of the device and of the event log (an allocation mounts the log only when it exists). */
  protected async refresh(): Promise<boolean> {
    const healthy = await stat(path.join(this.o.hostDev, path.basename(TPM_RM_DEVICE))).then(() => true, () => false);
    const eventLog = await stat(path.join(this.o.hostSys, EVENT_LOG_HOST_DIR.slice('/sys/'.length))).then((s) => s.isDirectory(), () => false);
    const changed = healthy !== this.healthy || eventLog !== this.eventLog;
    this.healthy = healthy;
    this.eventLog = eventLog;
    return changed;
  }

  allocate(deviceIds: string[]): ContainerAllocateResponse {
    this.checkAllocation(deviceIds);
    // Fail closed: a container admitted without the device would only fail at its first TPM command.
    if (!this.healthy) throw new DevicePluginError('DEVICE_UNHEALTHY', `${TPM_RM_DEVICE} is missing on this node`);
    // However many units a container takes, it gets the one device once.
    return {
      devices: [{ container_path: TPM_RM_DEVICE, host_path: TPM_RM_DEVICE, permissions: 'rw' }],
      ...(this.eventLog ? { mounts: [{ container_path: EVENT_LOG_MOUNT, host_path: EVENT_LOG_HOST_DIR, read_only: true }] } : {}),
      envs: { COFFER_TPM_DEVICE: TPM_RM_DEVICE, ...(this.eventLog ? { COFFER_TPM_EVENT_LOG: `${EVENT_LOG_MOUNT}/binary_bios_measurements` } : {}) },
    };
  }
}
