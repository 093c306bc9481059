// Node trust, the pure parts: appraisal of a verified report against NodeTrustPolicies, and reconcile → plan.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appraiseNode } from '../../../src/k8s/controllers/node-trust-appraise.js';
import { ANN, ATTESTED_LABEL, reconcileNodeTrust, UNTRUSTED_TAINT, type LatestReport } from '../../../src/k8s/controllers/node-trust-reconcile.js';
import type { NodeReport } from '../../../src/k8s/controllers/node-trust-token.js';
import type { NodeTrustPolicySpec } from '../../../src/k8s/crds/types.js';
import { diffEvents } from '../../../src/k8s/controllers/node-trust-eventlog.js';

const T0 = Date.parse('2026-12-01T10:00:00Z');
const PCR7 = 'aa'.repeat(32);
const policy: NodeTrustPolicySpec = { allowedTees: ['tpm'], referenceValues: { tpm: { pcrsha256_7: [PCR7] } } };

function report(o: Partial<NodeReport> = {}, pcr7 = PCR7, status = 'affirming'): NodeReport {
  return {
    node: 'n1', tokenId: 'tok-1', issuedAt: T0, expiresAt: T0 + 300_000,
    tees: [{ tee: 'tpm', status, advisories: [], measurements: { pcrsha256_7: pcr7 }, failures: status === 'affirming' ? [] : ['SOMETHING'], identity: { akTrust: 'enrolled', enrolledAs: 'n1', akId: 'ak-1' } }],
    ...o,
  };
}
function node(o: { labels?: Record<string, string>; annotations?: Record<string, string>; taints?: any[]; created?: string } = {}) {
  return { metadata: { name: 'n1', uid: 'uid-1', resourceVersion: '7', creationTimestamp: o.created ?? '2026-11-01T00:00:00Z', labels: o.labels ?? {}, annotations: o.annotations ?? {} }, spec: { taints: o.taints } };
}
const latest = (r: NodeReport, policies = [policy]): LatestReport => ({ report: r, verdict: appraiseNode(r, policies) });
/** The node after a merge patch (labels/annotations merged, taints replaced), as the API server would store it. */
function applied(n: any, patch: any) {
  const merge = (a: any = {}, b: any = {}) => {
    const out = { ...a };
    for (const [k, v] of Object.entries(b)) v === null ? delete out[k] : (out[k] = v);
    return out;
  };
  return { metadata: { ...n.metadata, labels: merge(n.metadata.labels, patch.metadata?.labels), annotations: merge(n.metadata.annotations, patch.metadata?.annotations), resourceVersion: String(Number(n.metadata.resourceVersion) + 1) }, spec: patch.spec ? { ...n.spec, ...patch.spec } : n.spec };
}

test('appraisal: requireEnrolledIdentity (default true) trusts only TEEs an enrolled AK binds to this node', () => {
  const tee = report().tees[0];
  const withId = (identity: object, node = 'n1'): NodeReport => ({ ...report(), node, tees: [{ ...tee, identity }] });
  assert.equal(appraiseNode(withId({ akTrust: 'enrolled', enrolledAs: 'n1' }), [policy]).trusted, true);
  // Azure vTPM (AK bound by the HCL report), a TEE report alone, an operator pin, nothing: unbound → refused by default.
  for (const identity of [{ akTrust: 'tee-report' }, { akTrust: 'pinned' }, {}]) {
    const v = appraiseNode(withId(identity), [policy]);
    assert.equal(v.trusted, false, JSON.stringify(identity));
    assert.match(v.reasons.join('\n'), /tpm: no TPM enrolment binds this evidence to node n1 \(AK trust: [a-z-]+\); the policy requires an enrolled identity/);
    assert.equal(appraiseNode(withId(identity), [{ ...policy, requireEnrolledIdentity: false }]).trusted, true, 'explicit opt-out');
  }
  // An enrolled name for another node never passes, even if a token carrying one got this far (the token check refuses it first).
  assert.equal(appraiseNode(withId({ akTrust: 'enrolled', enrolledAs: 'n2' }), [policy]).trusted, false);
  // Every selecting policy must pass: one that opts out does not lift another that requires the binding.
  assert.equal(appraiseNode(withId({ akTrust: 'tee-report' }), [{ ...policy, requireEnrolledIdentity: false }, policy]).trusted, false);
});

test('appraisal: TEE, ear.status, TCB status, advisories, reference values; every reason named', () => {
  assert.deepEqual(appraiseNode(report(), [policy]), { trusted: true, reasons: [], tee: 'tpm', tcbStatus: 'NotApplicable', advisories: [] });
  const bad = appraiseNode(report({}, 'bb'.repeat(32), 'warning'), [policy]);
  assert.equal(bad.trusted, false);
  assert.match(bad.reasons.join('\n'), /ear.status warning \(SOMETHING\) is not accepted/);
  assert.match(bad.reasons.join('\n'), /pcrsha256_7 = bbbb.* is not a reference value/);
  const snp: NodeReport = { ...report(), tees: [{ tee: 'snp', status: 'affirming', tcbStatus: 'OutOfDate', advisories: ['INTEL-SA-1', 'X'], measurements: {}, failures: [], identity: {} }] };
  const v = appraiseNode(snp, [{ allowedTees: ['tpm'], requiredTees: ['tpm'], forbiddenAdvisories: ['X'], requireEnrolledIdentity: false }]);
  assert.deepEqual(v.reasons.sort(), [
    'TEE snp is not allowed (allowed: tpm)',
    'required TEE tpm is missing from the token',
    'snp: TCB status OutOfDate is not accepted (accepted: UpToDate)',
    'snp: forbidden advisories X',
  ].sort());
  assert.equal(appraiseNode(snp, [{ allowedTees: ['snp'], allowedTcbStatuses: ['OutOfDate'], requireEnrolledIdentity: false }]).trusted, true);
  assert.equal(appraiseNode({ ...snp, tees: [{ ...snp.tees[0], tcbStatus: 'Revoked' }] }, [{ allowedTees: ['snp'], allowedTcbStatuses: ['Revoked'], requireEnrolledIdentity: false }]).trusted, false, 'Revoked never');
  assert.equal(appraiseNode(report({}, PCR7, 'contraindicated'), [{ allowedTees: ['tpm'], allowedStatuses: ['affirming', 'warning'] }]).trusted, false);
  // Every selecting policy must pass; none selecting is not trust.
  assert.equal(appraiseNode(report(), [policy, { allowedTees: ['snp'], requireEnrolledIdentity: false }]).trusted, false);
  assert.equal(appraiseNode(report(), []).trusted, false);
  // An event-log policy without a log (or with one that did not replay) fails closed.
  const el: NodeTrustPolicySpec = { allowedTees: ['tpm'], eventLog: { pcrs: [4], events: [] } };
  assert.match(appraiseNode(report(), [el]).reasons[0], /sent no event log/);
  assert.match(appraiseNode(report(), [el], () => ({ error: 'EVENTLOG_MISMATCH: x' })).reasons[0], /EVENTLOG_MISMATCH/);
});

test('event-log diff names the changed event', () => {
  const ref = [
    { pcr: 4, type: 'EV_EFI_ACTION', digest: '11'.repeat(32), description: 'Calling EFI Application from Boot Option' },
    { pcr: 4, type: 'EV_EFI_BOOT_SERVICES_APPLICATION', digest: '22'.repeat(32), description: 'shim' },
  ];
  assert.deepEqual(diffEvents(ref, ref.map((e) => ({ ...e })), [4]), []);
  const changed = [ref[0], { ...ref[1], digest: '33'.repeat(32), description: undefined }];
  assert.deepEqual(diffEvents(ref, changed, [4]), [`PCR 4 event #1 (EV_EFI_BOOT_SERVICES_APPLICATION) digest ${'33'.repeat(8)}… != reference ${'22'.repeat(8)}… (shim)`]);
  assert.match(diffEvents(ref, [ref[0]], [4])[0], /PCR 4 event #1 \(EV_EFI_BOOT_SERVICES_APPLICATION shim\) missing/);
  assert.match(diffEvents(ref, [...ref, { pcr: 4, type: 'EV_IPL', digest: '44'.repeat(32) }], [4])[0], /event #2 \(EV_IPL, digest 4444.*not in the reference/);
});

test('a trusted report: label, annotations, no taint, requeue at expiry, one NodeTrusted transition', () => {
  const n = node({ taints: [{ key: 'other', effect: 'NoSchedule' }, { key: UNTRUSTED_TAINT, value: 'true', effect: 'NoSchedule' }] });
  const plan = reconcileNodeTrust({ node: n, policies: [policy], latest: latest(report()), now: T0 + 1000 });
  assert.equal(plan.state, 'trusted');
  assert.equal(plan.patch!.metadata.resourceVersion, '7', 'optimistic concurrency on the observed version');
  assert.deepEqual(plan.patch!.metadata.labels, { [ATTESTED_LABEL]: 'true' });
  const a = plan.patch!.metadata.annotations;
  assert.equal(a[ANN.state], 'trusted');
  assert.equal(a[ANN.tee], 'tpm');
  assert.equal(a[ANN.tcbStatus], 'NotApplicable');
  assert.equal(a[ANN.attestedAt], '2026-12-01T10:00:00.000Z');
  assert.equal(a[ANN.expiresAt], '2026-12-01T10:05:00.000Z');
  assert.equal(a[ANN.tokenId], 'tok-1');
  assert.deepEqual(plan.patch!.spec.taints, [{ key: 'other', effect: 'NoSchedule' }], 'our taint removed, others kept');
  assert.equal(plan.requeueAfterMs, 299_000);
  assert.equal(plan.transition?.reason, 'NodeTrusted');
  // Applied: level-triggered, the same input is a no-op.
  const again = reconcileNodeTrust({ node: applied(n, plan.patch), policies: [policy], latest: latest(report()), now: T0 + 2000 });
  assert.equal(again.patch, undefined);
  assert.equal(again.transition, undefined);
  // The next interval's token: nothing to write while the recorded token has more than half its lifetime left...
  const next = reconcileNodeTrust({ node: applied(n, plan.patch), policies: [policy], latest: latest(report({ tokenId: 'tok-2', issuedAt: T0 + 60_000, expiresAt: T0 + 360_000 })), now: T0 + 61_000 });
  assert.equal(next.patch, undefined);
  assert.equal(next.requeueAfterMs, 299_000, 'requeued at the newest token\'s expiry');
  // ...then the record is refreshed (no Event); changed facts (TCB status) are written at once.
  const later = reconcileNodeTrust({ node: applied(n, plan.patch), policies: [policy], latest: latest(report({ tokenId: 'tok-4', issuedAt: T0 + 180_000, expiresAt: T0 + 480_000 })), now: T0 + 181_000 });
  assert.deepEqual(Object.keys(later.patch!.metadata.annotations).sort(), [ANN.attestedAt, ANN.expiresAt, ANN.tokenId].sort());
  assert.equal(later.transition, undefined);
  const tcb = report({ tokenId: 'tok-3', issuedAt: T0 + 60_000, expiresAt: T0 + 360_000 });
  tcb.tees[0].tcbStatus = 'UpToDate';
  assert.equal(reconcileNodeTrust({ node: applied(n, plan.patch), policies: [policy], latest: latest(tcb), now: T0 + 61_000 }).patch!.metadata.annotations[ANN.tcbStatus], 'UpToDate');
});

test('a failing report: label removed, taint with the policy effect, reason names the failure; regaining trust removes the taint', () => {
  const trusted = applied(node(), reconcileNodeTrust({ node: node(), policies: [policy], latest: latest(report()), now: T0 }).patch);
  const badReport = report({ tokenId: 'tok-2', issuedAt: T0 + 60_000 }, 'cc'.repeat(32));
  const plan = reconcileNodeTrust({ node: trusted, policies: [{ ...policy, effect: 'NoExecute' }], latest: latest(badReport), now: T0 + 61_000 });
  assert.equal(plan.state, 'untrusted');
  assert.deepEqual(plan.patch!.metadata.labels, { [ATTESTED_LABEL]: null });
  assert.match(plan.patch!.metadata.annotations[ANN.reason], /^AttestationRejected: tpm: pcrsha256_7 = cccc/);
  assert.deepEqual(plan.patch!.spec.taints.map((t: any) => [t.key, t.value, t.effect]), [[UNTRUSTED_TAINT, 'true', 'NoExecute']]);
  assert.equal(plan.transition?.reason, 'AttestationRejected');
  assert.equal(plan.transition?.from, 'trusted');
  assert.equal(plan.transition?.effect, 'NoExecute');
  // Replaying the same input derives the same transition id (the Event name): no duplicate after a crash.
  assert.equal(reconcileNodeTrust({ node: trusted, policies: [{ ...policy, effect: 'NoExecute' }], latest: latest(badReport), now: T0 + 62_000 }).transition?.id, plan.transition!.id);
  // After a crash the next token of the same failure (new jti, later iat) must name the same transition too.
  const nextToken = report({ tokenId: 'tok-2b', issuedAt: T0 + 120_000 }, 'cc'.repeat(32));
  assert.equal(reconcileNodeTrust({ node: trusted, policies: [{ ...policy, effect: 'NoExecute' }], latest: latest(nextToken), now: T0 + 121_000 }).transition?.id, plan.transition!.id);
  const untrusted = applied(trusted, plan.patch);
  // Once recorded, a different failure is a new transition (and moves `since`); the same one is none.
  const other = reconcileNodeTrust({ node: untrusted, policies: [{ ...policy, effect: 'NoExecute' }], latest: latest(report({ tokenId: 'tok-2c', issuedAt: T0 + 130_000 }, 'dd'.repeat(32))), now: T0 + 131_000 });
  assert.equal(other.transition?.reason, 'AttestationRejected');
  assert.notEqual(other.transition?.id, plan.transition!.id);
  assert.ok(other.patch!.metadata.annotations[ANN.since]);
  assert.equal(reconcileNodeTrust({ node: untrusted, policies: [{ ...policy, effect: 'NoExecute' }], latest: latest(nextToken), now: T0 + 131_000 }).transition, undefined);
  const back = reconcileNodeTrust({ node: untrusted, policies: [policy], latest: latest(report({ tokenId: 'tok-3', issuedAt: T0 + 120_000, expiresAt: T0 + 420_000 })), now: T0 + 121_000 });
  assert.equal(back.state, 'trusted');
  assert.deepEqual(back.patch!.spec.taints, []);
  assert.equal(back.patch!.metadata.annotations[ANN.reason], null);
  assert.equal(back.transition?.reason, 'NodeTrusted');
  assert.notEqual(back.transition?.id, plan.transition!.id);
});

test('expiry: after a restart (no report in memory) the recorded expiry rules; grace extends it', () => {
  const trusted = applied(node(), reconcileNodeTrust({ node: node(), policies: [policy], latest: latest(report()), now: T0 }).patch);
  const before = reconcileNodeTrust({ node: trusted, policies: [policy], now: T0 + 200_000 });
  assert.equal(before.state, 'trusted');
  assert.equal(before.patch, undefined);
  assert.equal(before.requeueAfterMs, 100_000);
  const after = reconcileNodeTrust({ node: trusted, policies: [policy], now: T0 + 300_000 });
  assert.equal(after.state, 'untrusted');
  assert.equal(after.transition?.reason, 'AttestationExpired');
  assert.match(after.patch!.metadata.annotations[ANN.reason], /tok-1\) expired at 2026-12-01T10:05:00.000Z/);
  const graced = reconcileNodeTrust({ node: trusted, policies: [{ ...policy, gracePeriodSeconds: 30 }], now: T0 + 300_000 });
  assert.equal(graced.state, 'trusted');
  assert.equal(graced.requeueAfterMs, 30_000);
  // A report in memory that is older than the recorded one (another leader wrote later) does not roll it back.
  const newer = applied(node(), reconcileNodeTrust({ node: node(), policies: [policy], latest: latest(report({ tokenId: 'tok-9', issuedAt: T0 + 100_000, expiresAt: T0 + 400_000 })), now: T0 + 100_000 }).patch);
  const stale = reconcileNodeTrust({ node: newer, policies: [policy], latest: latest(report({}, 'cc'.repeat(32))), now: T0 + 101_000 });
  assert.equal(stale.state, 'trusted');
  assert.equal(stale.patch, undefined);
});

test('never attested: untainted during the grace period, then NotAttested; unselected nodes are cleaned', () => {
  const fresh = node({ created: new Date(T0).toISOString() });
  const p = reconcileNodeTrust({ node: fresh, policies: [{ ...policy, gracePeriodSeconds: 60 }], now: T0 + 10_000 });
  assert.equal(p.state, 'pending');
  assert.equal(p.patch, undefined);
  assert.equal(p.requeueAfterMs, 50_000);
  const late = reconcileNodeTrust({ node: fresh, policies: [{ ...policy, gracePeriodSeconds: 60 }], now: T0 + 60_000 });
  assert.equal(late.state, 'untrusted');
  assert.equal(late.transition?.reason, 'NotAttested');
  assert.equal(late.patch!.spec.taints[0].key, UNTRUSTED_TAINT);
  // A label someone else set without any policy: removed with our annotations and taint.
  const stray = node({ labels: { [ATTESTED_LABEL]: 'true', keep: 'x' }, annotations: { [ANN.state]: 'trusted', other: 'y' }, taints: [{ key: UNTRUSTED_TAINT, effect: 'NoSchedule' }] });
  const clean = reconcileNodeTrust({ node: stray, policies: [], now: T0 });
  assert.equal(clean.state, 'unmanaged');
  assert.deepEqual(clean.patch!.metadata.labels, { [ATTESTED_LABEL]: null });
  assert.deepEqual(clean.patch!.metadata.annotations, { [ANN.state]: null });
  assert.deepEqual(clean.patch!.spec.taints, []);
  assert.equal(reconcileNodeTrust({ node: node(), policies: [], now: T0 }).patch, undefined);
});
