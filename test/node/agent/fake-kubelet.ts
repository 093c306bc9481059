// A fake kubelet device manager over real gRPC: serves Registration on <dir>/kubelet.sock, checks a Register the way
// the kubelet does (supported version, extended resource name, one plugin per resource), then dials the plugin's
// endpoint back and follows its ListAndWatch stream. `restart()` plays a kubelet restart: the socket goes, the
// directory is wiped (plugin sockets too), and kubelet.sock is recreated.
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { deviceApi, type Device, type RegisterRequest } from '../../../src/node/deviceplugin/proto.js';

export interface Registered {
  request: RegisterRequest;
  client: grpc.Client & Record<string, any>;
  updates: Device[][];
  stream: grpc.ClientReadableStream<{ devices: Device[] }>;
}

export class FakeKubelet {
  registrations: Registered[] = [];
  private server?: grpc.Server;

  /** `supportedVersions` plays a kubelet of another API generation (the real one answers ['v1beta1']). */
  constructor(
    readonly dir: string,
    private readonly supportedVersions = ['v1beta1'],
  ) {}

  async start(): Promise<void> {
    const { Registration, DevicePlugin } = deviceApi();
    const server = new grpc.Server();
    server.addService(Registration.service, {
      Register: (call: grpc.ServerUnaryCall<RegisterRequest, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const req = call.request;
        if (!this.supportedVersions.includes(req.version)) return cb({ code: grpc.status.UNKNOWN, details: `Requested device plugin version ${req.version} is not supported` });
        if (!/^[a-z0-9.-]+\/[A-Za-z0-9_.-]+$/.test(req.resource_name) || req.resource_name.startsWith('kubernetes.io/')) return cb({ code: grpc.status.UNKNOWN, details: `invalid resource name "${req.resource_name}"` });
        const client = new DevicePlugin(`unix://${path.join(this.dir, req.endpoint)}`, grpc.credentials.createInsecure()) as Registered['client'];
        const stream = client.ListAndWatch({}) as Registered['stream'];
        const reg: Registered = { request: req, client, updates: [], stream };
        stream.on('data', (r: { devices: Device[] }) => reg.updates.push(r.devices));
        stream.on('error', () => undefined);
        this.registrations.push(reg);
        cb(null, {});
      },
    });
    await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${path.join(this.dir, 'kubelet.sock')}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
    this.server = server;
  }

  call<T>(reg: Registered, method: string, req: unknown): Promise<T> {
    return new Promise((resolve, reject) => reg.client[method](req, (e: grpc.ServiceError | null, r: T) => (e ? reject(e) : resolve(r))));
  }

  async stop(): Promise<void> {
    for (const r of this.registrations) {
      r.stream.cancel();
      r.client.close();
    }
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((r) => s.tryShutdown(() => r()));
  }

  async restart(): Promise<void> {
    await this.stop();
    for (const f of readdirSync(this.dir)) rmSync(path.join(this.dir, f), { force: true });
    await this.start();
  }
}
