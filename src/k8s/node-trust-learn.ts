/**
 * `coffer node-trust learn`, the pure part: a NodeTrustPolicy from a golden node's verified report (the
 * controller's view of its newest token) and, optionally, its measured-boot event log — accepted only if it
 * replays to the PCR values that report attests, so a log copied from anywhere cannot smuggle in events.
 */
import { attestedEvents } from './controllers/node-trust-eventlog.js';
import type { NodeTrustPolicy } from './crds/types.js';

export interface GoldenReport {
  node: string;
  tokenId: string;
  tees: { tee: string; measurements: Record<string, string> }[];
}

export function learnPolicy(name: string, golden: GoldenReport, o: { pcrs?: number[]; eventLog?: Uint8Array; eventPcrs?: number[]; nodeSelector?: Record<string, string> } = {}): NodeTrustPolicy {
  const referenceValues: Record<string, Record<string, string[]>> = {};
  for (const t of golden.tees) {
    const picked = Object.entries(t.measurements).filter(([k]) => {
      if (t.tee !== 'tpm') return k !== 'pcrDigest';
      const m = /^pcrsha256_(\d+)$/.exec(k);
      return m !== null && (o.pcrs === undefined || o.pcrs.includes(Number(m[1])));
    });
    if (picked.length) referenceValues[t.tee] = Object.fromEntries(picked.map(([k, v]) => [k, [v]]));
  }
  const tpm = golden.tees.find((t) => t.tee === 'tpm');
  let eventLog: NodeTrustPolicy['spec']['eventLog'];
  if (o.eventLog) {
    if (!tpm) throw new Error('an event log can only be learned from a node that attests with a TPM');
    const pcrs = o.eventPcrs ?? [0, 1, 2, 3, 4, 5, 6, 7].filter((p) => tpm.measurements[`pcrsha256_${p}`] !== undefined);
    eventLog = { pcrs, bank: 'sha256', events: attestedEvents(o.eventLog, tpm.measurements, pcrs, 'sha256') };
    // Event-level reference replaces the PCR values it covers (a PCR value cannot say which event changed).
    if (referenceValues.tpm) for (const p of pcrs) delete referenceValues.tpm[`pcrsha256_${p}`];
  }
  return {
    apiVersion: 'coffer.dev/v1alpha1',
    kind: 'NodeTrustPolicy',
    metadata: { name, annotations: { 'coffer.dev/learned-from': `${golden.node} (token ${golden.tokenId})` } },
    spec: {
      ...(o.nodeSelector ? { nodeSelector: { matchLabels: o.nodeSelector } } : {}),
      allowedTees: golden.tees.map((t) => t.tee) as never,
      ...(Object.keys(referenceValues).length ? { referenceValues } : {}),
      ...(eventLog ? { eventLog } : {}),
      gracePeriodSeconds: 0,
      effect: 'NoSchedule',
    },
  };
}
