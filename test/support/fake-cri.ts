/**
 * A CRI v1 RuntimeService over gRPC on a unix socket, for what a real containerd cannot give on this machine (1,000
 * pods for the benchmark, a runtime without ListContainerStats). It serves the product's cri-api.proto — the
 * subset checked field by field against containerd's own descriptor (cri-proto.test.ts) — with containerd's
 * answers' shape: verbose *Status info is JSON with `pid` and `runtimeSpec.linux.cgroupsPath`.
 */
import { fileURLToPath } from 'node:url';
import { rmSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export interface FakeContainer {
  id: string;
  name: string;
  cgroupsPath: string;
  cpuNs?: number;
  workingSet?: number;
}
export interface FakePod {
  id: string;
  name: string;
  namespace: string;
  uid: string;
  handler: string;
  pid: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  containers: FakeContainer[];
}

export interface FakeCri {
  socket: string;
  pods: FakePod[];
  /** Methods answered UNIMPLEMENTED (a runtime that lacks them). */
  unimplemented: Set<string>;
  calls: Map<string, number>;
  stop(): Promise<void>;
}

const PROTO = fileURLToPath(new URL('../../src/node/stats/cri-api.proto', import.meta.url));

export async function startFakeCri(socket: string, pods: FakePod[] = []): Promise<FakeCri> {
  const def = protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, enums: String, defaults: false });
  const svc = (grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor } } }).runtime.v1.RuntimeService.service;
  const fake: FakeCri = { socket, pods, unimplemented: new Set(), calls: new Map(), stop: async () => {} };
  const u64 = (v: number | undefined) => (v === undefined ? undefined : { value: v });
  type Cb = (e: grpc.ServiceError | null, r?: unknown) => void;
  const handle =
    (name: string, fn: (req: Record<string, unknown>) => unknown) =>
    (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, cb: Cb) => {
      fake.calls.set(name, (fake.calls.get(name) ?? 0) + 1);
      if (fake.unimplemented.has(name)) return cb({ code: grpc.status.UNIMPLEMENTED, details: `${name} not implemented`, name: 'Error', message: name, metadata: new grpc.Metadata() });
      try {
        cb(null, fn(call.request));
      } catch (e) {
        cb({ code: grpc.status.NOT_FOUND, details: (e as Error).message, name: 'Error', message: (e as Error).message, metadata: new grpc.Metadata() });
      }
    };
  const pod = (id: unknown) => {
    const p = fake.pods.find((x) => x.id === id);
    if (!p) throw new Error(`pod ${String(id)} not found`);
    return p;
  };
  const ctr = (id: unknown) => {
    for (const p of fake.pods) for (const c of p.containers) if (c.id === id) return { p, c };
    throw new Error(`container ${String(id)} not found`);
  };
  const server = new grpc.Server();
  server.addService(svc, {
    Version: handle('Version', () => ({ version: '0.1.0', runtime_name: 'fake-cri', runtime_version: '1', runtime_api_version: 'v1' })),
    Status: handle('Status', () => ({ status: { conditions: [{ type: 'RuntimeReady', status: true }, { type: 'NetworkReady', status: true }] }, runtime_handlers: [...new Set(fake.pods.map((p) => p.handler))].map((name) => ({ name })) })),
    ListPodSandbox: handle('ListPodSandbox', () => ({
      items: fake.pods.map((p) => ({ id: p.id, metadata: { name: p.name, uid: p.uid, namespace: p.namespace, attempt: 0 }, state: 'SANDBOX_READY', created_at: 1, labels: p.labels ?? {}, annotations: p.annotations ?? {}, runtime_handler: p.handler })),
    })),
    PodSandboxStatus: handle('PodSandboxStatus', (r) => {
      const p = pod(r.pod_sandbox_id);
      return { status: { id: p.id, metadata: { name: p.name, uid: p.uid, namespace: p.namespace, attempt: 0 }, state: 'SANDBOX_READY', labels: p.labels ?? {}, annotations: p.annotations ?? {}, runtime_handler: p.handler }, info: { info: JSON.stringify({ pid: p.pid, runtimeHandler: p.handler, runtimeSpec: { linux: { cgroupsPath: `${p.containers[0]?.cgroupsPath.split('/').slice(0, -1).join('/')}/${p.id}` } } }) } };
    }),
    ListContainers: handle('ListContainers', () => ({
      containers: fake.pods.flatMap((p) => p.containers.map((c) => ({ id: c.id, pod_sandbox_id: p.id, metadata: { name: c.name, attempt: 0 }, image: { image: 'img' }, image_ref: 'img', state: 'CONTAINER_RUNNING', created_at: 1 }))),
    })),
    ContainerStatus: handle('ContainerStatus', (r) => {
      const { c } = ctr(r.container_id);
      return { info: { info: JSON.stringify({ pid: 1, runtimeSpec: { linux: { cgroupsPath: c.cgroupsPath } } }) } };
    }),
    ListContainerStats: handle('ListContainerStats', () => ({
      stats: fake.pods.flatMap((p) => p.containers.map((c) => ({ attributes: { id: c.id, metadata: { name: c.name } }, cpu: { timestamp: 1, usage_core_nano_seconds: u64(c.cpuNs) }, memory: { timestamp: 1, working_set_bytes: u64(c.workingSet) } }))),
    })),
    ListPodSandboxStats: handle('ListPodSandboxStats', () => ({
      stats: fake.pods.map((p) => ({ attributes: { id: p.id }, linux: { network: { timestamp: 1, default_interface: { name: 'eth0', rx_bytes: { value: 1000 }, rx_errors: { value: 0 }, tx_bytes: { value: 2000 }, tx_errors: { value: 0 } } }, process: { timestamp: 1, process_count: { value: p.containers.length } } } })),
    })),
  });
  rmSync(socket, { force: true });
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
  fake.stop = () =>
    new Promise<void>((resolve) => {
      server.tryShutdown(() => resolve());
      setTimeout(() => (server.forceShutdown(), resolve()), 500).unref();
    });
  return fake;
}

/** A v1 cgroup tree for one container: blkio (bytes, ops), pids, cpuacct, memory; returns the files written. */
export function writeV1Container(root: string, rel: string, n: number, write: (file: string, text: string) => void): void {
  write(`${root}/blkio${rel}/blkio.throttle.io_service_bytes_recursive`, `254:0 Read ${n * 4096}\n254:0 Write ${n * 8192}\n254:0 Sync ${n * 12288}\n254:0 Async 0\n254:0 Discard 0\n254:0 Total ${n * 12288}\nTotal ${n * 12288}\n`);
  write(`${root}/blkio${rel}/blkio.throttle.io_serviced_recursive`, `254:0 Read ${n}\n254:0 Write ${2 * n}\n254:0 Sync ${3 * n}\n254:0 Async 0\n254:0 Discard 0\n254:0 Total ${3 * n}\nTotal ${3 * n}\n`);
  write(`${root}/pids${rel}/pids.current`, `${1 + (n % 5)}\n`);
  write(`${root}/cpuacct${rel}/cpuacct.usage`, `${n * 1_000_000}\n`);
  write(`${root}/memory${rel}/memory.usage_in_bytes`, `${n * 100_000}\n`);
  write(`${root}/memory${rel}/memory.stat`, `cache 0\nrss ${n * 100_000}\ntotal_cache 0\ntotal_rss ${n * 100_000}\ntotal_inactive_file ${n * 1000}\ntotal_active_file 0\n`);
}
