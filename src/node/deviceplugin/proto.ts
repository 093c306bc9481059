/** Loads the kubelet device plugin API (v1beta1) for @grpc/grpc-js; field names kept as the .proto spells them. */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const API_VERSION = 'v1beta1';
export const KUBELET_SOCKET = 'kubelet.sock';
export const DEFAULT_PLUGIN_DIR = '/var/lib/kubelet/device-plugins';
export const HEALTHY = 'Healthy';
export const UNHEALTHY = 'Unhealthy';

export interface Device {
  ID: string;
  health: string;
  topology?: { nodes: { ID: number }[] } | null;
}
export interface DevicePluginOptions {
  pre_start_required: boolean;
  get_preferred_allocation_available: boolean;
}
export interface RegisterRequest {
  version: string;
  endpoint: string;
  resource_name: string;
  options?: DevicePluginOptions | null;
}
export interface ContainerAllocateResponse {
  envs?: Record<string, string>;
  mounts?: { container_path: string; host_path: string; read_only: boolean }[];
  devices?: { container_path: string; host_path: string; permissions: string }[];
  annotations?: Record<string, string>;
  cdi_devices?: { name: string }[];
}
export interface ContainerPreferredAllocationRequest {
  available_deviceIDs: string[];
  must_include_deviceIDs: string[];
  allocation_size: number;
}

/** The loaded package `v1beta1` (parsed per call: only at serve/register time, so no process-wide cache). */
export function deviceApi(): { Registration: grpc.ServiceClientConstructor; DevicePlugin: grpc.ServiceClientConstructor } {
  const def = protoLoader.loadSync(fileURLToPath(new URL('./api.proto', import.meta.url)), { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def).v1beta1 as grpc.GrpcObject;
  return { Registration: pkg.Registration as grpc.ServiceClientConstructor, DevicePlugin: pkg.DevicePlugin as grpc.ServiceClientConstructor };
}
