import { LABEL as DISCOVERY_LABEL } from '../../node/discovery/labels.js';
import { K8sInputError } from '../errors.js';
import { TRUST_KEY_PREFIXES, UNTRUSTED_TAINT } from '../node-trust-keys.js';
import { allowResponse, denyResponse, type AdmissionRequest, type AdmissionResponse } from './review.js';

/**
 * Node trust guard: only Coffer's controller may set, change or remove what says a node is trusted — the
 * `coffer.dev/attested*`, `coffer.dev/trust*` and `trust.coffer.dev/*` labels and annotations (node-trust-keys.ts:
 * what the node-trust controller writes) and the `coffer.dev/untrusted` taint —
 * on Node CREATE (a kubelet registering with `--node-labels coffer.dev/attested=true`) and UPDATE. The agent may
 * change only its own discovery labels on its own node. The same rule ships as a ValidatingAdmissionPolicy
 * (manifests/node-guard.ts); this webhook handler enforces it from the AdmissionReview's userInfo.
 */
export { TRUST_KEY_PREFIXES, UNTRUSTED_TAINT } from '../node-trust-keys.js';
/** Label prefix of discovered runtimes (node/discovery/labels.ts). */
export const AGENT_RUNTIME_PREFIX = 'coffer.dev/runtime.';
export const AGENT_LABELS: readonly string[] = Object.values(DISCOVERY_LABEL);
/** Set on pod-bound service-account tokens (Kubernetes ≥ 1.30): the node the caller's pod runs on. */
export const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';

export interface NodeGuardOptions {
  /** Usernames that own node trust (the controller's service account). */
  trustWriters: readonly string[];
  /** Usernames limited to discovery labels (the agent's service account). */
  agents?: readonly string[];
}

export const isTrustKey = (k: string): boolean => TRUST_KEY_PREFIXES.some((p) => k.startsWith(p));
export const isAgentLabel = (k: string): boolean => AGENT_LABELS.includes(k) || k.startsWith(AGENT_RUNTIME_PREFIX);

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function stringMap(v: unknown, where: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isObj(v) || Object.values(v).some((x) => typeof x !== 'string')) throw new K8sInputError(`${where} must map strings to strings`, 'ADMISSION_REVIEW_INVALID');
  return v as Record<string, string>;
}

interface NodeView {
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  taints: string[];
  spec: string;
}

function view(o: unknown, where: string): NodeView | undefined {
  if (o === undefined || o === null) return undefined;
  if (!isObj(o) || (o.kind !== undefined && o.kind !== 'Node')) throw new K8sInputError(`${where} is not a Node`, 'ADMISSION_REVIEW_INVALID');
  const m = isObj(o.metadata) ? o.metadata : {};
  const spec = isObj(o.spec) ? o.spec : {};
  if (spec.taints !== undefined && !Array.isArray(spec.taints)) throw new K8sInputError(`${where}.spec.taints must be a list`, 'ADMISSION_REVIEW_INVALID');
  const taints = ((spec.taints as unknown[] | undefined) ?? []).map((t) => {
    if (!isObj(t) || typeof t.key !== 'string') throw new K8sInputError(`${where}.spec.taints entries need a key`, 'ADMISSION_REVIEW_INVALID');
    return JSON.stringify([t.key, t.value ?? '', t.effect ?? '']);
  });
  return {
    name: typeof m.name === 'string' ? m.name : '',
    labels: stringMap(m.labels, `${where}.metadata.labels`),
    annotations: stringMap(m.annotations, `${where}.metadata.annotations`),
    taints,
    spec: JSON.stringify(spec),
  };
}

/** Keys of `a` and `b` whose values differ (added, removed or changed). */
function changedKeys(a: Record<string, string>, b: Record<string, string>): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => !Object.prototype.hasOwnProperty.call(a, k) || !Object.prototype.hasOwnProperty.call(b, k) || a[k] !== b[k]).sort();
}

const untrusted = (taints: string[]) => taints.filter((t) => (JSON.parse(t) as string[])[0].startsWith(UNTRUSTED_TAINT)).sort();

export function isNodeRequest(r: AdmissionRequest): boolean {
  return r.kind.group === '' && r.kind.version === 'v1' && r.kind.kind === 'Node' && !r.subResource;
}

export function decideNodeTrust(r: AdmissionRequest, o: NodeGuardOptions): AdmissionResponse {
  if (r.operation !== 'CREATE' && r.operation !== 'UPDATE') return allowResponse(r.uid);
  const username = typeof r.userInfo?.username === 'string' ? r.userInfo.username : '';
  if (username && o.trustWriters.includes(username)) return allowResponse(r.uid);
  const now = view(r.object, 'request.object');
  if (!now) throw new K8sInputError('AdmissionReview: Node request without object', 'ADMISSION_REVIEW_INVALID');
  const before = view(r.oldObject, 'request.oldObject') ?? { name: now.name, labels: {}, annotations: {}, taints: [], spec: now.spec };
  const who = username || '(unknown user)';
  const deny = (msg: string) => denyResponse(r.uid, 403, `${who} may not ${msg} on node ${now.name}: only Coffer's controller manages node trust`);

  const labels = changedKeys(before.labels, now.labels);
  const annotations = changedKeys(before.annotations, now.annotations);
  const trustLabels = labels.filter(isTrustKey);
  if (trustLabels.length) return deny(`set, change or remove the trust label(s) ${trustLabels.join(', ')}`);
  const trustAnnotations = annotations.filter(isTrustKey);
  if (trustAnnotations.length) return deny(`set, change or remove the trust annotation(s) ${trustAnnotations.join(', ')}`);
  if (JSON.stringify(untrusted(before.taints)) !== JSON.stringify(untrusted(now.taints))) return deny(`add, change or remove the ${UNTRUSTED_TAINT} taint`);

  if (username && o.agents?.includes(username)) {
    const extra = r.userInfo?.extra?.[NODE_NAME_EXTRA];
    if (Array.isArray(extra) && extra.length > 0 && extra[0] !== now.name) return deny(`change a node other than its own (${String(extra[0])})`);
    const foreign = labels.filter((k) => !isAgentLabel(k));
    if (foreign.length) return deny(`change the non-discovery label(s) ${foreign.join(', ')}`);
    if (annotations.length) return deny(`change annotations (${annotations.join(', ')})`);
    if (before.spec !== now.spec && r.operation === 'UPDATE') return deny('change the node spec');
  }
  return allowResponse(r.uid);
}
