/**
 * Node appraisal, pure: a verified NodeReport (what the attestation service vouched for) against the
 * NodeTrustPolicies that select the node → trusted or not, with one reason per failed rule. Every policy must pass.
 * Fail closed: a rule that cannot be evaluated (no TCB status where one is required, an event log that was not
 * sent) fails.
 */
import type { NodeTrustEvent, NodeTrustPolicySpec } from '../crds/types.js';
import { diffEvents } from './node-trust-eventlog.js';
import { enrolledAs } from './node-trust-identity.js';
import type { NodeReport } from './node-trust-token.js';

export interface NodeVerdict {
  trusted: boolean;
  reasons: string[];
  /** Comma-joined TEE names of the token ("tpm", "az-snp-vtpm"). */
  tee: string;
  /** Worst-first TCB statuses the TEEs report ("UpToDate", or "NotApplicable" for a TPM alone). */
  tcbStatus: string;
  advisories: string[];
}

/** The node's measured-boot events after replay against the token, or why they are not available. */
export type AttestedEvents = { events: readonly NodeTrustEvent[] } | { error: string } | undefined;

/** `eventsFor(policy)`: the node's events for that policy's eventLog PCRs and bank (undefined: no log sent). */
export function appraiseNode(report: NodeReport, policies: readonly NodeTrustPolicySpec[], eventsFor: (p: NodeTrustPolicySpec) => AttestedEvents = () => undefined): NodeVerdict {
  const reasons: string[] = [];
  const tees = report.tees.map((t) => t.tee);
  const tcb = report.tees.map((t) => t.tcbStatus).filter((s): s is string => s !== undefined);
  const advisories = [...new Set(report.tees.flatMap((t) => t.advisories))].sort();
  if (policies.length === 0) reasons.push('no NodeTrustPolicy selects this node');
  for (const p of policies) {
    const allowedStatuses = p.allowedStatuses ?? ['affirming'];
    const allowedTcb = p.allowedTcbStatuses ?? ['UpToDate'];
    for (const t of report.tees) {
      if (!p.allowedTees.includes(t.tee as never)) reasons.push(`TEE ${t.tee} is not allowed (allowed: ${p.allowedTees.join(', ')})`);
      if (t.status === 'contraindicated' || !allowedStatuses.includes(t.status as never)) {
        reasons.push(`${t.tee}: ear.status ${t.status}${t.failures.length ? ` (${t.failures.join(', ')})` : ''} is not accepted (accepted: ${allowedStatuses.join(', ')})`);
      }
      if (t.debug === true) reasons.push(`${t.tee}: debug mode`);
      if (t.tcbStatus !== undefined && (t.tcbStatus === 'Revoked' || !allowedTcb.includes(t.tcbStatus))) reasons.push(`${t.tee}: TCB status ${t.tcbStatus} is not accepted (accepted: ${allowedTcb.join(', ')})`);
      const bad = t.advisories.filter((a) => p.forbiddenAdvisories?.includes(a));
      if (bad.length) reasons.push(`${t.tee}: forbidden advisories ${bad.join(', ')}`);
      if (p.requireEnrolledIdentity !== false && !enrolledAs(t.identity, report.node)) {
        reasons.push(`${t.tee}: no TPM enrolment binds this evidence to node ${report.node} (AK trust: ${t.identity?.akTrust ?? 'none'}); the policy requires an enrolled identity (requireEnrolledIdentity)`);
      }
    }
    for (const r of p.requiredTees ?? []) if (!tees.includes(r)) reasons.push(`required TEE ${r} is missing from the token`);
    for (const [tee, refs] of Object.entries(p.referenceValues ?? {})) {
      const t = report.tees.find((x) => x.tee === tee);
      if (!t) continue; // reference values for a TEE this node does not use (requiredTees says which it must)
      for (const [name, accepted] of Object.entries(refs)) {
        const got = t.measurements[name];
        if (got === undefined) reasons.push(`${tee}: measurement ${name} is not in the token`);
        else if (!accepted.some((a) => a.toLowerCase() === got)) reasons.push(`${tee}: ${name} = ${got} is not a reference value`);
      }
    }
    if (p.eventLog) {
      const attested = eventsFor(p);
      if (attested === undefined) reasons.push('the policy names measured-boot events but the node sent no event log');
      else if ('error' in attested) reasons.push(`event log: ${attested.error}`);
      else for (const d of diffEvents(p.eventLog.events, attested.events, p.eventLog.pcrs)) reasons.push(`event log: ${d}`);
    }
  }
  return {
    trusted: reasons.length === 0,
    reasons: [...new Set(reasons)],
    tee: tees.join(','),
    tcbStatus: tcb.length ? [...new Set(tcb)].join(',') : 'NotApplicable',
    advisories,
  };
}
