/**
 * Discovered facts → the node labels Coffer owns. Names are the ones the manifests and built-in RuntimeProfiles
 * select on: `coffer.dev/tee.sgx` (agent-sgx DaemonSet nodeSelector), `coffer.dev/runtime.<handler>` (one per
 * configured CRI runtime handler; profiles whose project publishes no node label select on it). `coffer.dev/attested` is NOT owned here: attestation sets it.
 */
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

/** Label name part: `runtime.<h>` must stay a valid qualified name (≤ 63 chars, alphanumerics, '-', '_', '.'). */
const HANDLER_LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,53}[A-Za-z0-9])?$/;

/**
 * One `coffer.dev/runtime.<handler>=true` label per configured CRI runtime handler (the built-in RuntimeProfiles
 * select their nodes on exactly these); a handler whose name cannot be a label name is reported, not published.
 */
export function runtimeLabels(handlers: string[]): { labels: Record<string, string>; skipped: string[] } {
  const labels: Record<string, string> = {};
  const skipped: string[] = [];
  for (const h of handlers) {
    if (HANDLER_LABEL_NAME.test(h)) labels[RUNTIME_PREFIX + h] = 'true';
    else skipped.push(h);
  }
  return { labels, skipped };
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
