import { COFFER_API_VERSION, type IsolationLevel, type RuntimeProfile, type RuntimeProfileSpec } from './types.js';

// Sources (read 2026-11-23 through the search index):
// - KATA: kata-containers/kata-containers tools/packaging/kata-deploy/runtimeclasses/kata-runtimeClasses.yaml
//   @f66a5b62: handler = name; podFixed kata-qemu/kata-qemu-coco-dev 160Mi/250m, kata-clh 130Mi/250m,
//   kata-qemu-tdx/kata-qemu-snp 2048Mi/1.0; nodeSelector katacontainers.io/kata-runtime: "true" (set by kata-deploy).
// - AKS: learn.microsoft.com/azure/aks/use-pod-sandboxing (seed 003) — RuntimeClass kata-mshv-vm-isolation;
//   `kubectl describe runtimeclass` on an AKS cluster shows handler `kata` (VijayRod/demo notes); the
//   considerations-pod-sandboxing page gives 600Mi as the default runtime-class memory overhead (512Mi VM +
//   ~88Mi host components) for the newer kata-vm-isolation class; AKS publishes no CPU overhead.
// - runv: Alibaba ACK "Differences between runC and runV" — overhead memory = 64 MiB + 2% of the pod's memory
//   request, clamped to [64, 512] MiB; RuntimeClass runv/handler runv. A RuntimeClass can only carry a fixed
//   figure, so the floor (64Mi) is used; ACK computes the rest itself.
// - gVisor: gvisor.dev/docs/user_guide/containerd/quick_start — RuntimeClass gvisor with handler runsc; the
//   project publishes no overhead or node label.
// - Node labels not published by a project (gvisor, runv, AKS pod sandboxing) use Coffer's node-agent label
//   coffer.dev/runtime.<handler>=true (one per CRI runtime handler the node's containerd has) so the RuntimeClass
//   never schedules onto nodes without the handler.

const KATA_SRC = 'kata-containers/kata-containers tools/packaging/kata-deploy/runtimeclasses/kata-runtimeClasses.yaml';
const KATA_LABEL = { key: 'katacontainers.io/kata-runtime', value: 'true' };

function profile(name: string, spec: RuntimeProfileSpec): RuntimeProfile {
  return {
    apiVersion: COFFER_API_VERSION,
    kind: 'RuntimeProfile',
    metadata: { name, labels: { 'app.kubernetes.io/part-of': 'coffer', 'coffer.dev/builtin': 'true' } },
    spec,
  };
}

function kata(name: string, isolation: IsolationLevel, memory: string, cpu: string): RuntimeProfile {
  return profile(name, {
    handler: name,
    isolation,
    overhead: { podFixed: { memory, cpu } },
    scheduling: { nodeSelector: { [KATA_LABEL.key]: KATA_LABEL.value } },
    nodeLabel: KATA_LABEL,
    source: KATA_SRC,
  });
}

/** The label the node agent publishes for a configured CRI runtime handler. */
function coffersLabel(handler: string): { key: string; value: string } {
  return { key: `coffer.dev/runtime.${handler}`, value: 'true' };
}

/** The runtimes the seeds name, as their projects publish them. Fresh objects on every call (callers may mutate). */
export function builtinRuntimeProfiles(): RuntimeProfile[] {
  // handler `kata` is shared with plain Kata: the AKS sandbox also needs the Microsoft Hypervisor (agent label)
  const mshv = coffersLabel('kata');
  const runv = coffersLabel('runv');
  const gvisor = coffersLabel('runsc');
  return [
    profile('kata-mshv-vm-isolation', {
      handler: 'kata',
      isolation: 'sandbox',
      overhead: { podFixed: { memory: '600Mi' } },
      scheduling: { nodeSelector: { [mshv.key]: mshv.value, 'coffer.dev/hv.mshv': 'true' } },
      nodeLabel: mshv,
      source: 'learn.microsoft.com/azure/aks/use-pod-sandboxing; learn.microsoft.com/azure/aks/considerations-pod-sandboxing',
    }),
    kata('kata-qemu', 'sandbox', '160Mi', '250m'),
    kata('kata-clh', 'sandbox', '130Mi', '250m'),
    kata('kata-qemu-tdx', 'confidential-vm', '2048Mi', '1.0'),
    kata('kata-qemu-snp', 'confidential-vm', '2048Mi', '1.0'),
    // Confidential Containers' non-TEE development runtime: the CoCo guest stack in an ordinary VM, so sandbox only.
    kata('kata-qemu-coco-dev', 'sandbox', '160Mi', '250m'),
    profile('runv', {
      handler: 'runv',
      isolation: 'sandbox',
      overhead: { podFixed: { memory: '64Mi' } },
      scheduling: { nodeSelector: { [runv.key]: runv.value } },
      nodeLabel: runv,
      source: 'help.aliyun.com/en/ack/ack-managed-and-ack-dedicated/user-guide/differences-between-runc-and-runv',
    }),
    profile('gvisor', {
      handler: 'runsc',
      isolation: 'sandbox',
      scheduling: { nodeSelector: { [gvisor.key]: gvisor.value } },
      nodeLabel: gvisor,
      source: 'gvisor.dev/docs/user_guide/containerd/quick_start',
    }),
    profile('runc', { handler: 'runc', isolation: 'none', source: 'the default OCI runtime; no overhead, every node' }),
  ];
}
