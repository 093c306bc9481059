/**
 * CRI v1 RuntimeService client over gRPC on the runtime's unix socket (@grpc/grpc-js), every call with a deadline.
 * The proto is Coffer's own subset (cri-api.proto beside this file); fields are proto names (keepCase).
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { StatsError } from './errors.js';

export interface UInt64Value {
  value?: number;
}
export interface PodSandboxMetadata {
  name?: string;
  uid?: string;
  namespace?: string;
  attempt?: number;
}
/** ListPodSandbox's items: labels and annotations are left out of the decode (PodSandboxStatus has them). */
export interface PodSandbox {
  id: string;
  metadata?: PodSandboxMetadata;
  state?: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
  runtime_handler?: string;
}
export interface PodSandboxStatus {
  id?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  runtime_handler?: string;
}
export interface Container {
  id: string;
  pod_sandbox_id: string;
  metadata?: { name?: string; attempt?: number };
}
export interface CpuUsage {
  usage_core_nano_seconds?: UInt64Value;
}
export interface MemoryUsage {
  working_set_bytes?: UInt64Value;
}
export interface ContainerStats {
  attributes?: { id?: string; metadata?: { name?: string } };
  cpu?: CpuUsage;
  memory?: MemoryUsage;
}
export interface NetworkInterfaceUsage {
  name?: string;
  rx_bytes?: UInt64Value;
  rx_errors?: UInt64Value;
  tx_bytes?: UInt64Value;
  tx_errors?: UInt64Value;
}
export interface PodSandboxStats {
  attributes?: { id?: string };
  linux?: {
    network?: { default_interface?: NetworkInterfaceUsage; interfaces?: NetworkInterfaceUsage[] };
    process?: { process_count?: UInt64Value };
  };
}
export interface StatusResponse {
  status?: { conditions?: { type?: string; status?: boolean; reason?: string; message?: string }[] };
  info?: Record<string, string>;
  runtime_handlers?: { name?: string }[];
}

interface Methods {
  Version: [{ version: string }, { version?: string; runtime_name?: string; runtime_version?: string; runtime_api_version?: string }];
  Status: [{ verbose: boolean }, StatusResponse];
  ListPodSandbox: [{ filter?: { state?: { state: 'SANDBOX_READY' } } }, { items?: PodSandbox[] }];
  PodSandboxStatus: [{ pod_sandbox_id: string; verbose: boolean }, { status?: PodSandboxStatus; info?: Record<string, string> }];
  ListContainers: [{ filter?: { state?: { state: 'CONTAINER_RUNNING' } } }, { containers?: Container[] }];
  ContainerStatus: [{ container_id: string; verbose: boolean }, { info?: Record<string, string> }];
  ListContainerStats: [{ filter?: Record<string, never> }, { stats?: ContainerStats[] }];
  ListPodSandboxStats: [{ filter?: Record<string, never> }, { stats?: PodSandboxStats[] }];
}
export type CriMethod = keyof Methods;

/** gRPC status codes the callers tell apart (the rest is "runtime unavailable"). */
export const GRPC_UNIMPLEMENTED = grpc.status.UNIMPLEMENTED;

/** Loaded once per client (no module cache): only the exporter and discovery construct one. */
function runtimeServiceCtor(): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync(fileURLToPath(new URL('./cri-api.proto', import.meta.url)), { keepCase: true, longs: Number, enums: String, defaults: false, oneofs: false });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor } } };
  return pkg.runtime.v1.RuntimeService;
}

/** unix:///abs/path (the kubelet's --container-runtime-endpoint form) or a bare absolute path; nothing else. */
export function parseCriEndpoint(endpoint: string): string {
  const p = endpoint.startsWith('unix://') ? endpoint.slice('unix://'.length) : endpoint;
  if (!p.startsWith('/') || p.includes('\0') || p.length > 107) {
    throw new StatsError('CRI_BAD_ENDPOINT', `CRI endpoint '${endpoint}' must be unix:///absolute/path/to.sock (at most 107 bytes)`);
  }
  return `unix://${p}`;
}

export interface CriClientOptions {
  /** Deadline of each call (a hung runtime fails the call, it never hangs a scrape). */
  timeoutMs?: number;
}

export class CriClient {
  private readonly client: grpc.Client;
  readonly timeoutMs: number;

  constructor(
    readonly endpoint: string,
    opts: CriClientOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 2000;
    const Ctor = runtimeServiceCtor();
    this.client = new Ctor(parseCriEndpoint(endpoint), grpc.credentials.createInsecure(), {
      // the kubelet's own limit: a node with many pods answers List* with several MB
      'grpc.max_receive_message_length': 16 * 1024 * 1024,
      // a restarted runtime is found again within seconds, not grpc's default 2 minutes at worst
      'grpc.initial_reconnect_backoff_ms': 250,
      'grpc.max_reconnect_backoff_ms': 5000,
    });
  }

  call<M extends CriMethod>(method: M, request: Methods[M][0], timeoutMs = this.timeoutMs): Promise<Methods[M][1]> {
    return new Promise((resolve, reject) => {
      const fn = (this.client as unknown as Record<string, (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Methods[M][1]) => void) => void>)[method]!;
      fn.call(this.client, request, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }

  close(): void {
    this.client.close();
  }
}

/** The gRPC status code of a failed call, if it is one. */
export function grpcCode(e: unknown): number | undefined {
  const c = (e as { code?: unknown }).code;
  return typeof c === 'number' ? c : undefined;
}
