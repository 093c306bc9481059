import * as grpc from '@grpc/grpc-js';

/** A device plugin failure with a stable code; `grpcStatus` is what the kubelet sees when an RPC fails. */
export class DevicePluginError extends Error {
  constructor(
    readonly code: 'REGISTRATION_FAILED' | 'UNKNOWN_DEVICE' | 'DEVICE_UNHEALTHY' | 'BAD_REQUEST' | 'NO_EPC' | 'SOCKET',
    message: string,
    readonly grpcStatus: grpc.status = grpc.status.FAILED_PRECONDITION,
  ) {
    super(message);
    this.name = 'DevicePluginError';
  }
}
