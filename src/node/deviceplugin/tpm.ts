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
import { EventEmitter } from 'node:events';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { DevicePluginError } from './errors.js';
import { HEALTHY, UNHEALTHY, type ContainerAllocateResponse, type ContainerPreferredAllocationRequest, type Device } from './proto.js';
import type { DeviceSource } from './server.js';

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

export class TpmDeviceSource implements DeviceSource {
  readonly options = { pre_start_required: false, get_preferred_allocation_available: true };
  private healthy = false;
  private eventLog = false;
  private readonly ids: string[];
  private readonly events = new EventEmitter();
  private timer?: NodeJS.Timeout;

  private constructor(private readonly o: TpmSourceOptions) {
    this.ids = Array.from({ length: o.shares ?? 4 }, (_, i) => `tpm-${i}`);
  }

  static async create(o: TpmSourceOptions): Promise<TpmDeviceSource> {
    const n = o.shares ?? 4;
    if (!Number.isInteger(n) || n < 1 || n > MAX_SHARES) throw new DevicePluginError('BAD_REQUEST', `shares ${n} must be an integer 1..${MAX_SHARES}`);
    const s = new TpmDeviceSource(o);
    await s.probe();
    s.timer = setInterval(() => void s.probe(), o.healthIntervalMs ?? 5000);
    return s;
  }

  /** Re-reads presence of the device and the event log; emits a change when either flips. */
  async probe(): Promise<void> {
    const healthy = await stat(path.join(this.o.hostDev, path.basename(TPM_RM_DEVICE))).then(() => true, () => false);
    const eventLog = await stat(path.join(this.o.hostSys, EVENT_LOG_HOST_DIR.slice('/sys/'.length))).then((s) => s.isDirectory(), () => false);
    const changed = healthy !== this.healthy || eventLog !== this.eventLog;
    this.healthy = healthy;
    this.eventLog = eventLog;
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
    if (deviceIds.length === 0) throw new DevicePluginError('BAD_REQUEST', 'allocation names no TPM units', grpc.status.INVALID_ARGUMENT);
    const known = new Set(this.ids);
    const unknown = deviceIds.filter((id) => !known.has(id));
    if (unknown.length) throw new DevicePluginError('UNKNOWN_DEVICE', `unknown TPM unit(s) ${unknown.slice(0, 5).join(', ')}`, grpc.status.INVALID_ARGUMENT);
    if (new Set(deviceIds).size !== deviceIds.length) throw new DevicePluginError('BAD_REQUEST', 'allocation names a TPM unit twice', grpc.status.INVALID_ARGUMENT);
    // Fail closed: a container admitted without the device would only fail at its first TPM command.
    if (!this.healthy) throw new DevicePluginError('DEVICE_UNHEALTHY', `${TPM_RM_DEVICE} is missing on this node`);
    // However many units a container takes, it gets the one device once.
    return {
      devices: [{ container_path: TPM_RM_DEVICE, host_path: TPM_RM_DEVICE, permissions: 'rw' }],
      ...(this.eventLog ? { mounts: [{ container_path: EVENT_LOG_MOUNT, host_path: EVENT_LOG_HOST_DIR, read_only: true }] } : {}),
      envs: { COFFER_TPM_DEVICE: TPM_RM_DEVICE, ...(this.eventLog ? { COFFER_TPM_EVENT_LOG: `${EVENT_LOG_MOUNT}/binary_bios_measurements` } : {}) },
    };
  }

  /** Units are interchangeable: must-include first, then the lowest-numbered available. */
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
