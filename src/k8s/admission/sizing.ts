import { ceilMiB, ceilMilli, parseQuantity } from '../quantity.js';
import type { Container, Pod } from './pod.js';

/**
 * AKS Pod Sandboxing VM sizing (learn.microsoft.com/azure/aks/use-pod-sandboxing, seed 003): without CPU/memory
 * limits the pod VM gets 1 vCPU and 2 GB; with limits x CPU and y memory it gets 1 + x vCPU and 2 GB + y.
 * Requests are ignored. Choices the seed leaves open, made here:
 * - "2 GB" is Kata's default_memory of 2048 MiB (Kata sizes memory in MiB).
 * - x, y are the pod's effective limits computed like Kubernetes' effective requests: the sum over app containers
 *   (plus restartable sidecar init containers, which run alongside them) or, if larger, the largest regular init
 *   container plus the sidecars started before it — init containers run one at a time before the app.
 * - A container with no limit for a resource contributes 0 for it.
 * - vCPUs: 1 + ceil(x) — a VM has whole vCPUs and must not get fewer than the limits ask for.
 * - Memory: 2048 + ceil(y in MiB).
 */
export interface SandboxVmSize {
  vcpus: number;
  memoryMiB: number;
  /** Effective limits it was computed from, in millicores and MiB (rounded up). */
  cpuLimitMilli: number;
  memoryLimitMiB: number;
}

export const AKS_BASE_VCPUS = 1;
export const AKS_BASE_MEMORY_MIB = 2048;

function limitOf(c: Container, resource: 'cpu' | 'memory', where: string): { milli: bigint; mib: bigint } {
  const v = c.resources?.limits?.[resource];
  if (v === undefined || v === null) return { milli: 0n, mib: 0n };
  const q = parseQuantity(v as string | number, `${where}.resources.limits.${resource}`);
  if (q.num < 0n) return { milli: 0n, mib: 0n };
  return resource === 'cpu' ? { milli: ceilMilli(q), mib: 0n } : { milli: 0n, mib: ceilMiB(q) };
}

function effective(pod: Pod, resource: 'cpu' | 'memory'): bigint {
  const pick = (c: Container, w: string) => (resource === 'cpu' ? limitOf(c, resource, w).milli : limitOf(c, resource, w).mib);
  let apps = 0n;
  (pod.spec?.containers ?? []).forEach((c, i) => (apps += pick(c, `spec.containers[${i}]`)));
  let sidecars = 0n;
  let initPeak = 0n;
  (pod.spec?.initContainers ?? []).forEach((c, i) => {
    const v = pick(c, `spec.initContainers[${i}]`);
    if (c.restartPolicy === 'Always') sidecars += v;
    else initPeak = initPeak > sidecars + v ? initPeak : sidecars + v;
  });
  const running = apps + sidecars;
  return running > initPeak ? running : initPeak;
}

/** Throws K8sInputError (K8S_QUANTITY_INVALID) when a limit is not a quantity. */
export function aksSandboxVmSize(pod: Pod): SandboxVmSize {
  const milli = effective(pod, 'cpu');
  const mib = effective(pod, 'memory');
  const wholeCpus = (milli + 999n) / 1000n;
  return {
    vcpus: AKS_BASE_VCPUS + Number(wholeCpus),
    memoryMiB: AKS_BASE_MEMORY_MIB + Number(mib),
    cpuLimitMilli: Number(milli),
    memoryLimitMiB: Number(mib),
  };
}
