/**
 * A small fleet in the fake kube-apiserver with a node in each trust state, as the node-trust controller leaves them
 * (the coffer.dev/attested label, trust.coffer.dev/* annotations, the coffer.dev/untrusted taint), pods the
 * admission webhook placed at each isolation level, RuntimeClasses and edge nodes. For the dashboard's tests.
 */
import { writeFileSync } from 'node:fs';
import type { FakeApiServer } from './fake-apiserver.js';
import { makeNode, makePod } from './k8s-objects.js';
import { ANN, ATTESTED_LABEL, UNTRUSTED_TAINT } from '../../src/k8s/controllers/node-trust-reconcile.js';

const iso = (ms: number) => new Date(Date.now() + ms).toISOString();

function attested(name: string, tee: string, o: { tcb: string; advisories?: string[]; expiresInMs: number; autonomy?: 'connected' | 'autonomous' }) {
  return makeNode(name, {
    labels: { [ATTESTED_LABEL]: 'true', [`coffer.dev/tee.${tee}`]: 'true' },
    annotations: {
      [ANN.state]: 'trusted', [ANN.tee]: tee, [ANN.tcbStatus]: o.tcb, [ANN.attestedAt]: iso(-60_000), [ANN.expiresAt]: iso(o.expiresInMs), [ANN.tokenId]: `tok-${name}`,
      ...(o.advisories ? { [ANN.advisories]: o.advisories.join(',') } : {}),
      ...(o.autonomy ? { 'coffer.dev/autonomy': 'true' } : {}),
      ...(o.autonomy === 'autonomous' ? { 'coffer.dev/autonomous-since': iso(-300_000) } : {}),
    },
  });
}

function placed(name: string, node: string, isolation: string | undefined, phase = 'Running') {
  const p = makePod('apps', name, node);
  if (isolation) p.metadata.annotations = { 'coffer.dev/decision': JSON.stringify({ policy: 'p', isolation }) };
  p.status.phase = phase;
  return p;
}

/** Expected totals of the fleet below. */
export const FLEET = {
  counts: { total: 5, trusted: 2, untrusted: 1, expired: 1, unknown: 1 },
  pods: { total: 6, byIsolation: { 'confidential-vm': 2, enclave: 1, sandbox: 1, unmanaged: 2 } },
  edge: { nodes: 2, online: 1, autonomous: 1 },
};

export function putFleet(api: FakeApiServer): void {
  api.put('nodes', attested('tdx-node-1', 'tdx', { tcb: 'UpToDate', expiresInMs: 3_600_000, autonomy: 'connected' }));
  api.put('nodes', attested('snp-node-1', 'snp', { tcb: 'SWHardeningNeeded', advisories: ['AMD-SB-3019'], expiresInMs: 3_600_000, autonomy: 'autonomous' }));
  // Labelled trusted, but its token expired (the controller is down): shown as expired, counted untrusted.
  api.put('nodes', attested('sgx-node-old', 'sgx', { tcb: 'OutOfDate', advisories: ['INTEL-SA-00837'], expiresInMs: -60_000 }));
  const bad = makeNode('tpm-node-bad', {
    labels: { 'coffer.dev/tee.tpm': 'true' },
    annotations: { [ANN.state]: 'untrusted', [ANN.tee]: 'tpm', [ANN.reason]: 'pcr 7 does not match the reference value', [ANN.attestedAt]: iso(-120_000) },
  });
  bad.spec.taints = [{ key: UNTRUSTED_TAINT, value: 'true', effect: 'NoSchedule' }];
  api.put('nodes', bad);
  api.put('nodes', makeNode('plain-node'));
  api.put('pods', placed('ledger-0', 'tdx-node-1', 'confidential-vm'));
  api.put('pods', placed('ledger-1', 'tdx-node-1', 'confidential-vm'));
  api.put('pods', placed('keys-0', 'sgx-node-old', 'enclave'));
  api.put('pods', placed('build-0', 'snp-node-1', 'sandbox'));
  api.put('pods', placed('web-0', 'plain-node', undefined));
  api.put('pods', placed('web-1', 'plain-node', undefined));
  api.put('pods', placed('job-0', 'tdx-node-1', 'confidential-vm', 'Succeeded'));
  for (const tee of ['tdx', 'snp']) {
    api.put('runtimeclasses', { apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name: `kata-cc-${tee}` }, handler: `kata-qemu-${tee}`, scheduling: { nodeSelector: { [`coffer.dev/tee.${tee}`]: 'true' } } }, 'node.k8s.io');
  }
}

/** A kubeconfig file for the fake API server (plain http, no credentials). */
export function writeKubeconfig(path: string, server: string): void {
  writeFileSync(path, JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'fake', cluster: { server } }], users: [{ name: 'u', user: {} }], contexts: [{ name: 'c', context: { cluster: 'fake', user: 'u' } }], 'current-context': 'c' }));
}
