/**
 * A kubelet device plugin (API v1beta1) on a unix socket in the kubelet's device-plugin directory: serves
 * DevicePlugin, registers with the kubelet's Registration service on kubelet.sock, and serves + registers again
 * when the kubelet restarts (it wipes the directory and recreates kubelet.sock: a new inode, or our socket gone).
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { DevicePluginError } from './errors.js';
import { API_VERSION, KUBELET_SOCKET, deviceApi, type ContainerAllocateResponse, type ContainerPreferredAllocationRequest, type Device, type DevicePluginOptions } from './proto.js';

/** What a concrete plugin (e.g. SGX EPC) supplies. */
export interface DeviceSource {
  options: DevicePluginOptions;
  /** The current full device list. */
  devices(): Device[];
  /** Calls back whenever devices() changed; returns the unsubscribe. */
  subscribe(onChange: () => void): () => void;
  /** One container's allocation; throws DevicePluginError to fail it. */
  allocate(deviceIds: string[]): ContainerAllocateResponse;
  preferred?(req: ContainerPreferredAllocationRequest): string[];
  close?(): void;
}

export interface DevicePluginServerOptions {
  dir: string;
  /** Socket file name inside dir (the kubelet dials dir/endpoint). */
  endpoint: string;
  resourceName: string;
  source: DeviceSource;
  /** How often kubelet.sock and our socket are checked (fs.watch also triggers a check at once). */
  checkIntervalMs?: number;
  log?: (event: string, detail?: Record<string, unknown>) => void;
  /** A later re-registration the kubelet refused: the API says the plugin should then exit. */
  onFatal?: (err: Error) => void;
}

const RESOURCE_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)\/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** The kubelet accepts only extended resource names: domain-prefixed, not in kubernetes.io (it rejects those). */
export function checkResourceName(name: string): void {
  if (name.length > 253 || !RESOURCE_NAME.test(name)) throw new DevicePluginError('BAD_REQUEST', `resource name '${name}' is not an extended resource name like vendor.example/device`);
  const domain = name.split('/')[0]!;
  if (domain === 'kubernetes.io' || domain === 'requests.kubernetes.io') throw new DevicePluginError('BAD_REQUEST', `resource name '${name}' uses the reserved kubernetes.io prefix`);
}

type Writable = grpc.ServerWritableStream<unknown, { devices: Device[] }>;

export class DevicePluginServer {
  private server?: grpc.Server;
  /** Identity of the kubelet.sock we registered with: inode AND change time, since a recreated file may reuse the inode number. */
  private kubeletId?: string;
  private streams = new Set<Writable>();
  private timer?: NodeJS.Timeout;
  private watcher?: FSWatcher;
  private unsubscribe?: () => void;
  private checking?: Promise<void>;
  private stopped = false;
  /** Registrations completed (1 after start, +1 per kubelet restart handled). */
  registrations = 0;

  constructor(private readonly opts: DevicePluginServerOptions) {
    checkResourceName(opts.resourceName);
    if (opts.endpoint.includes('/') || opts.endpoint === KUBELET_SOCKET) throw new DevicePluginError('BAD_REQUEST', `endpoint '${opts.endpoint}' must be a plain socket file name other than kubelet.sock`);
  }

  get socketPath(): string {
    return path.join(this.opts.dir, this.opts.endpoint);
  }

  private log(event: string, detail?: Record<string, unknown>) {
    this.opts.log?.(event, detail);
  }

  /** Serves, then registers once kubelet.sock exists; rejects if the kubelet refuses the registration. */
  async start(): Promise<void> {
    this.unsubscribe = this.opts.source.subscribe(() => this.broadcast());
    await this.serve();
    await this.registerWhenKubeletUp();
    this.timer = setInterval(() => void this.check(), this.opts.checkIntervalMs ?? 1000);
    try {
      this.watcher = watch(this.opts.dir, () => void this.check());
      this.watcher.on('error', () => undefined);
    } catch {
      // Polling alone still catches a kubelet restart.
    }
  }

  private async registerWhenKubeletUp(): Promise<void> {
    const kubelet = path.join(this.opts.dir, KUBELET_SOCKET);
    for (let attempt = 0; ; attempt++) {
      if (this.stopped) return;
      const s = await stat(kubelet).catch(() => undefined);
      if (s) {
        await this.register();
        this.kubeletId = socketId(s);
        return;
      }
      if (attempt === 0) this.log('waiting-for-kubelet', { socket: kubelet });
      await new Promise((r) => setTimeout(r, this.opts.checkIntervalMs ?? 1000));
    }
  }

  /** One pass of the kubelet-restart check; concurrent triggers share it. */
  check(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.checking ??= this.doCheck().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async doCheck(): Promise<void> {
    const kubelet = await stat(path.join(this.opts.dir, KUBELET_SOCKET)).catch(() => undefined);
    const own = await stat(this.socketPath).catch(() => undefined);
    if (!kubelet || (socketId(kubelet) === this.kubeletId && own)) return;
    this.log('kubelet-restarted', { socketMissing: !own });
    try {
      if (!own) await this.serve();
      if (this.stopped) return;
      await this.register();
      this.kubeletId = socketId(kubelet);
    } catch (e) {
      // A kubelet still starting up is retried on the next check; an answer refusing us is final (API contract).
      const transient = e instanceof DevicePluginError && (e.grpcStatus === grpc.status.UNAVAILABLE || e.grpcStatus === grpc.status.DEADLINE_EXCEEDED);
      this.log('reregister-failed', { error: (e as Error).message, retry: transient });
      if (transient) return;
      // Final for this kubelet: not asked again (nor reported again) until a kubelet restart recreates its socket.
      this.kubeletId = socketId(kubelet);
      this.opts.onFatal?.(e as Error);
    }
  }

  private async serve(): Promise<void> {
    if (this.server) await this.shutdownServer();
    // A stale socket from an earlier run would make bind fail with EADDRINUSE.
    await unlink(this.socketPath).catch(() => undefined);
    const server = new grpc.Server();
    const { DevicePlugin } = deviceApi();
    const src = this.opts.source;
    server.addService(DevicePlugin.service, {
      GetDevicePluginOptions: (_call: grpc.ServerUnaryCall<unknown, DevicePluginOptions>, cb: grpc.sendUnaryData<DevicePluginOptions>) => cb(null, src.options),
      ListAndWatch: (call: Writable) => {
        this.streams.add(call);
        const drop = () => this.streams.delete(call);
        call.on('cancelled', drop);
        call.on('close', drop);
        call.on('error', drop);
        call.write({ devices: src.devices() });
      },
      GetPreferredAllocation: (call: grpc.ServerUnaryCall<{ container_requests: ContainerPreferredAllocationRequest[] }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        if (!src.preferred) return cb({ code: grpc.status.UNIMPLEMENTED, details: 'GetPreferredAllocation is not available for this resource' });
        try {
          cb(null, { container_responses: call.request.container_requests.map((r) => ({ deviceIDs: src.preferred!(r) })) });
        } catch (e) {
          cb(toStatus(e));
        }
      },
      Allocate: (call: grpc.ServerUnaryCall<{ container_requests: { devices_ids: string[] }[] }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        try {
          const responses = call.request.container_requests.map((r) => src.allocate(r.devices_ids));
          this.log('allocated', { containers: responses.length, devices: call.request.container_requests.map((r) => r.devices_ids.length) });
          cb(null, { container_responses: responses });
        } catch (e) {
          this.log('allocate-refused', { error: (e as Error).message });
          cb(toStatus(e));
        }
      },
      PreStartContainer: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, {}),
    });
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix://${path.resolve(this.socketPath)}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(new DevicePluginError('SOCKET', `cannot listen on ${this.socketPath}: ${err.message}`)) : resolve())),
    );
    this.server = server;
    this.log('serving', { socket: this.socketPath });
  }

  private async register(): Promise<void> {
    const { Registration } = deviceApi();
    const client = new Registration(`unix://${path.resolve(this.opts.dir, KUBELET_SOCKET)}`, grpc.credentials.createInsecure());
    const req = { version: API_VERSION, endpoint: this.opts.endpoint, resource_name: this.opts.resourceName, options: this.opts.source.options };
    try {
      await new Promise<void>((resolve, reject) =>
        (client as any).Register(req, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null) =>
          err ? reject(new DevicePluginError('REGISTRATION_FAILED', `kubelet refused registration of ${this.opts.resourceName}: ${err.details || err.message}`, err.code)) : resolve(),
        ),
      );
    } finally {
      client.close();
    }
    this.registrations++;
    this.log('registered', { resource: this.opts.resourceName, endpoint: this.opts.endpoint });
  }

  private broadcast(): void {
    const devices = this.opts.source.devices();
    for (const s of this.streams) s.write({ devices });
  }

  private async shutdownServer(): Promise<void> {
    for (const s of this.streams) s.end();
    this.streams.clear();
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, 2000);
      server.tryShutdown(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.watcher?.close();
    this.unsubscribe?.();
    await this.checking;
    await this.shutdownServer();
    this.opts.source.close?.();
    await unlink(this.socketPath).catch(() => undefined);
  }
}

const socketId = (s: { ino: number; ctimeMs: number; birthtimeMs: number }) => `${s.ino}:${s.ctimeMs}:${s.birthtimeMs}`;

function toStatus(e: unknown): Partial<grpc.StatusObject> {
  if (e instanceof DevicePluginError) return { code: e.grpcStatus, details: `${e.code}: ${e.message}` };
  return { code: grpc.status.INTERNAL, details: (e as Error).message };
}
