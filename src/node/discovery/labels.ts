/**
 * Discovered facts → the node labels Coffer owns. Names are the ones the manifests and built-in RuntimeProfiles
 * select on: `coffer.dev/tee.sgx` (agent-sgx DaemonSet nodeSelector), `coffer.dev/runtime.<profile>` (profiles
 * whose project publishes no node label). `coffer.dev/attested` is NOT owned here: attestation sets it.
 */
import { builtinRuntimeProfiles } from '../../k8s/crds/builtin-profiles.js';
import type { TeeFacts } from './discover.js';

export const LABEL = {
  sgx: 'coffer.dev/tee.sgx',
  sgxFlc: 'coffer.dev/sgx.flc',
  epcMiB: 'coffer.dev/epc-mib',
  tdx: 'coffer.dev/tee.tdx',
  snp: 'coffer.dev/tee.snp',
  tsm: 'coffer.dev/tsm-report',
  tpm: 'coffer.dev/tee.tpm',
  tpmVersion: 'coffer.dev/tpm.version',
  kvm: 'coffer.dev/kvm',
  mshv: 'coffer.dev/hv.mshv',
} as const;

const RUNTIME_PREFIX = 'coffer.dev/runtime.';

/** Labels discovery owns; with `runtimes` also every coffer.dev/runtime.* label (it then knows the runtimes). */
export function ownsLabel(key: string, runtimesKnown: boolean): boolean {
  if ((Object.values(LABEL) as string[]).includes(key)) return true;
  return runtimesKnown && key.startsWith(RUNTIME_PREFIX);
}

/**
 * Runtime handlers configured in a containerd config (1.x `io.containerd.grpc.v1.cri` and 2.x
 * `io.containerd.cri.v1.runtime` alike): the names of `[plugins.<cri>.containerd.runtimes.<name>]` tables.
 */
export function containerdRuntimeHandlers(configToml: string): string[] {
  const re = /^\s*\[\s*plugins\.[^\n\]]*?\.containerd\.runtimes\.(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_-]+))\s*\]\s*$/gm;
  const out = new Set<string>();
  for (const m of configToml.matchAll(re)) out.add(m[1] ?? m[2] ?? m[3]!);
  return [...out].sort();
}

/**
 * Coffer runtime labels for the built-in profiles that rely on them (gvisor, runv, kata-mshv-vm-isolation): set when
 * the profile's handler is configured; the AKS sandbox profile also needs the Microsoft Hypervisor (/dev/mshv),
 * since its handler name `kata` is shared with plain Kata.
 */
export function runtimeLabels(handlers: string[], facts: TeeFacts): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of builtinRuntimeProfiles()) {
    const label = p.spec.nodeLabel;
    if (!label || !label.key.startsWith(RUNTIME_PREFIX)) continue;
    if (!handlers.includes(p.spec.handler)) continue;
    if (p.metadata.name === 'kata-mshv-vm-isolation' && !facts.mshv) continue;
    out[label.key] = label.value;
  }
  return out;
}

export function teeLabels(facts: TeeFacts): Record<string, string> {
  const out: Record<string, string> = {};
  if (facts.sgx) {
    out[LABEL.sgx] = 'true';
    if (facts.sgx.flc) out[LABEL.sgxFlc] = 'true';
    if (facts.sgx.epcBytes !== undefined) out[LABEL.epcMiB] = String(Math.floor(facts.sgx.epcBytes / (1024 * 1024)));
  }
  if (facts.tdxGuest) out[LABEL.tdx] = 'true';
  if (facts.snpGuest) out[LABEL.snp] = 'true';
  if (facts.tsmReport) out[LABEL.tsm] = 'true';
  if (facts.tpm) {
    out[LABEL.tpm] = 'true';
    if (facts.tpm.versionMajor !== undefined) out[LABEL.tpmVersion] = String(facts.tpm.versionMajor);
  }
  if (facts.kvm) out[LABEL.kvm] = 'true';
  if (facts.mshv) out[LABEL.mshv] = 'true';
  return out;
}

/**
 * JSON merge patch body (RFC 7386) for `metadata.labels`: set what is wanted, null what discovery owns but no longer
 * applies; undefined when the node already matches (no write).
 */
export function labelPatch(current: Record<string, string> | undefined, wanted: Record<string, string>, runtimesKnown: boolean): { metadata: { labels: Record<string, string | null> } } | undefined {
  const labels: Record<string, string | null> = {};
  const cur = current ?? {};
  for (const [k, v] of Object.entries(wanted)) if (cur[k] !== v) labels[k] = v;
  for (const k of Object.keys(cur)) if (ownsLabel(k, runtimesKnown) && !(k in wanted)) labels[k] = null;
  return Object.keys(labels).length ? { metadata: { labels } } : undefined;
}
