/**
 * What the unit-counted device plugins share (SGX EPC, the shared TPM): N interchangeable units named
 * `<prefix>-<i>`, all healthy or all unhealthy as one probe of the host decides, re-probed on an interval, with the
 * kubelet's allocation and preferred-allocation requests checked the same way. Subclasses say what a probe reads
 * and what an allocation hands the container.
 */
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { DevicePluginError } from './errors.js';
import { HEALTHY, UNHEALTHY, type ContainerAllocateResponse, type ContainerPreferredAllocationRequest, type Device } from './proto.js';
import type { DeviceSource } from './server.js';

export abstract class UnitDeviceSource implements DeviceSource {
  readonly options = { pre_start_required: false, get_preferred_allocation_available: true };
  protected healthy = false;
  protected readonly ids: string[];
  private readonly events = new EventEmitter();
  private timer?: NodeJS.Timeout;

  /** `noun` names the units in refusals ("EPC device", "TPM unit"). */
  protected constructor(
    private readonly prefix: string,
    count: number,
    private readonly noun: string,
  ) {
    this.ids = Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
  }

  /** Re-reads the host; returns whether anything devices() or allocate() depend on changed. */
  protected abstract refresh(): Promise<boolean>;

  abstract allocate(deviceIds: string[]): ContainerAllocateResponse;

  /** Re-reads the host; emits a change when the health or what an allocation hands out flipped. */
  async probe(): Promise<void> {
    if (await this.refresh()) this.events.emit('change');
  }

  /** First probe, then one every `intervalMs`. */
  protected async startProbing(intervalMs: number): Promise<void> {
    await this.probe();
    this.timer = setInterval(() => void this.probe(), intervalMs);
  }

  devices(): Device[] {
    const health = this.healthy ? HEALTHY : UNHEALTHY;
    return this.ids.map((ID) => ({ ID, health }));
  }

  subscribe(onChange: () => void): () => void {
    this.events.on('change', onChange);
    return () => this.events.off('change', onChange);
  }

  /** The kubelet's request names known units, each once, and at least one. */
  protected checkAllocation(deviceIds: string[]): void {
    if (deviceIds.length === 0) throw new DevicePluginError('BAD_REQUEST', `allocation names no ${this.noun}s`, grpc.status.INVALID_ARGUMENT);
    const known = new Set(this.ids);
    const unknown = deviceIds.filter((id) => !known.has(id));
    if (unknown.length) throw new DevicePluginError('UNKNOWN_DEVICE', `unknown ${this.noun}(s) ${unknown.slice(0, 5).join(', ')}`, grpc.status.INVALID_ARGUMENT);
    if (new Set(deviceIds).size !== deviceIds.length) throw new DevicePluginError('BAD_REQUEST', `allocation names ${/^[AEIOU]/.test(this.noun) ? 'an' : 'a'} ${this.noun} twice`, grpc.status.INVALID_ARGUMENT);
  }

  /** Units are interchangeable: must-include first, then the lowest-numbered available, up to the size asked. */
  preferred(req: ContainerPreferredAllocationRequest): string[] {
    const size = req.allocation_size;
    if (!Number.isInteger(size) || size < 0 || size > req.available_deviceIDs.length) throw new DevicePluginError('BAD_REQUEST', `allocation size ${size} is outside 0..${req.available_deviceIDs.length}`, grpc.status.INVALID_ARGUMENT);
    const out = [...new Set(req.must_include_deviceIDs)];
    const num = (id: string) => Number(id.slice(this.prefix.length + 1));
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
