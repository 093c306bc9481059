import { K8sInputError } from '../errors.js';
import type { AdmissionDecision } from './engine.js';
import type { Pod } from './pod.js';

/**
 * AdmissionReview admission.k8s.io/v1 (k8s.io/api/admission/v1/types.go; docs: "Dynamic Admission Control" §
 * Request / Response). Only the fields the webhook uses are typed; the rest is ignored, never trusted.
 */
export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

/** The webhook's endpoints (served by server.ts, referenced by the generated webhook configurations). */
export const PATHS = { mutate: '/mutate-v1-pod', validate: '/validate-v1-pod', nodes: '/validate-v1-node' } as const;

export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  resource?: { group: string; version: string; resource: string };
  subResource?: string;
  name?: string;
  namespace?: string;
  operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
  /** Who is asking (authentication.k8s.io/v1 UserInfo): the node trust guard keys on the username. */
  userInfo?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string; reason?: string };
  patch?: string;
  patchType?: 'JSONPatch';
  warnings?: string[];
  auditAnnotations?: Record<string, string>;
}

export interface AdmissionReview {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

const OPERATIONS = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'];
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Validates the envelope; anything malformed is a K8sInputError (the server turns it into HTTP 400). */
export function parseAdmissionReview(body: unknown): AdmissionRequest {
  if (!isObj(body)) throw new K8sInputError('AdmissionReview: body is not a JSON object', 'ADMISSION_REVIEW_INVALID');
  if (body.apiVersion !== ADMISSION_API_VERSION || body.kind !== 'AdmissionReview') {
    throw new K8sInputError(`AdmissionReview: expected apiVersion ${ADMISSION_API_VERSION} kind AdmissionReview, got ${JSON.stringify(body.apiVersion)} ${JSON.stringify(body.kind)}`, 'ADMISSION_REVIEW_INVALID');
  }
  const r = body.request;
  if (!isObj(r)) throw new K8sInputError('AdmissionReview: request is missing', 'ADMISSION_REVIEW_INVALID');
  if (typeof r.uid !== 'string' || r.uid.length === 0 || r.uid.length > 128) throw new K8sInputError('AdmissionReview: request.uid must be a non-empty string', 'ADMISSION_REVIEW_INVALID');
  const k = r.kind;
  if (!isObj(k) || typeof k.kind !== 'string' || typeof k.version !== 'string' || typeof k.group !== 'string') {
    throw new K8sInputError('AdmissionReview: request.kind must be {group, version, kind}', 'ADMISSION_REVIEW_INVALID');
  }
  if (typeof r.operation !== 'string' || !OPERATIONS.includes(r.operation)) {
    throw new K8sInputError(`AdmissionReview: request.operation ${JSON.stringify(r.operation)} is not one of ${OPERATIONS.join(', ')}`, 'ADMISSION_REVIEW_INVALID');
  }
  return r as unknown as AdmissionRequest;
}

/** true when the request is about a core/v1 Pod (not a subresource such as pods/exec). */
export function isPodRequest(r: AdmissionRequest): boolean {
  return r.kind.group === '' && r.kind.version === 'v1' && r.kind.kind === 'Pod' && !r.subResource;
}

/** `kubectl debug`'s write: UPDATE of the pods/ephemeralcontainers subresource (the object is the whole Pod). */
export function isEphemeralContainersUpdate(r: AdmissionRequest): boolean {
  return r.kind.group === '' && r.kind.version === 'v1' && r.kind.kind === 'Pod' && r.subResource === 'ephemeralcontainers' && r.operation === 'UPDATE';
}

export function podOf(r: AdmissionRequest): Pod {
  checkPodShape(r.object, 'AdmissionReview: request.object');
  return r.object as Pod;
}

const bad = (where: string, what: string): never => {
  throw new K8sInputError(`${where}: ${what}`, 'ADMISSION_REVIEW_INVALID');
};

function stringMap(v: unknown, where: string): void {
  if (v === undefined) return;
  if (!isObj(v) || Object.values(v).some((x) => typeof x !== 'string')) bad(where, 'must map strings to strings');
}

function listOfObjects(v: unknown, where: string, check?: (o: Record<string, unknown>, w: string) => void): void {
  if (v === undefined) return;
  if (!Array.isArray(v)) bad(where, 'must be a list');
  (v as unknown[]).forEach((o, i) => {
    if (!isObj(o)) bad(`${where}[${i}]`, 'must be an object');
    check?.(o as Record<string, unknown>, `${where}[${i}]`);
  });
}

function checkContainer(c: Record<string, unknown>, w: string): void {
  if (typeof c.name !== 'string') bad(`${w}.name`, 'must be a string');
  if (c.image !== undefined && typeof c.image !== 'string') bad(`${w}.image`, 'must be a string');
  if (c.resources !== undefined) {
    if (!isObj(c.resources)) bad(`${w}.resources`, 'must be an object');
    for (const k of ['limits', 'requests'] as const) {
      const m = (c.resources as Record<string, unknown>)[k];
      if (m !== undefined && (!isObj(m) || Object.values(m).some((x) => typeof x !== 'string' && typeof x !== 'number'))) bad(`${w}.resources.${k}`, 'must map names to quantities');
    }
  }
  if (c.securityContext !== undefined && !isObj(c.securityContext)) bad(`${w}.securityContext`, 'must be an object');
  listOfObjects(c.volumeMounts, `${w}.volumeMounts`, (m, mw) => typeof m.mountPath === 'string' || bad(`${mw}.mountPath`, 'must be a string'));
  listOfObjects(c.env, `${w}.env`, (e, ew) => typeof e.name === 'string' || bad(`${ew}.name`, 'must be a string'));
}

/**
 * The shape the engine relies on (the API server has decoded the pod, but the webhook must not trust that a
 * caller is the API server): wrong types are a typed 400, never a TypeError deep in the engine.
 */
export function checkPodShape(o: unknown, where: string): void {
  if (!isObj(o) || (o.kind !== undefined && o.kind !== 'Pod')) bad(where, 'is not a Pod');
  const pod = o as Record<string, unknown>;
  if (pod.metadata !== undefined) {
    if (!isObj(pod.metadata)) bad(`${where}.metadata`, 'must be an object');
    const m = pod.metadata as Record<string, unknown>;
    stringMap(m.labels, `${where}.metadata.labels`);
    stringMap(m.annotations, `${where}.metadata.annotations`);
    if (m.namespace !== undefined && typeof m.namespace !== 'string') bad(`${where}.metadata.namespace`, 'must be a string');
  }
  if (!isObj(pod.spec)) bad(`${where}.spec`, 'is required');
  const s = pod.spec as Record<string, unknown>;
  for (const k of ['containers', 'initContainers', 'ephemeralContainers']) listOfObjects(s[k], `${where}.spec.${k}`, checkContainer);
  listOfObjects(s.volumes, `${where}.spec.volumes`, (v, vw) => {
    if (typeof v.name !== 'string') bad(`${vw}.name`, 'must be a string');
    if (v.hostPath !== undefined && (!isObj(v.hostPath) || typeof (v.hostPath as Record<string, unknown>).path !== 'string')) bad(`${vw}.hostPath`, 'must have a path');
  });
  listOfObjects(s.tolerations, `${where}.spec.tolerations`);
  stringMap(s.nodeSelector, `${where}.spec.nodeSelector`);
  stringMap(s.overhead as never, `${where}.spec.overhead`);
  if (s.runtimeClassName !== undefined && typeof s.runtimeClassName !== 'string') bad(`${where}.spec.runtimeClassName`, 'must be a string');
  if (s.affinity !== undefined) {
    if (!isObj(s.affinity)) bad(`${where}.spec.affinity`, 'must be an object');
    const na = (s.affinity as Record<string, unknown>).nodeAffinity;
    if (na !== undefined) {
      if (!isObj(na)) bad(`${where}.spec.affinity.nodeAffinity`, 'must be an object');
      const req = (na as Record<string, unknown>).requiredDuringSchedulingIgnoredDuringExecution;
      if (req !== undefined) {
        if (!isObj(req)) bad(`${where}.spec.affinity.nodeAffinity.required…`, 'must be an object');
        listOfObjects((req as Record<string, unknown>).nodeSelectorTerms, `${where}.spec.affinity.nodeAffinity.required….nodeSelectorTerms`, (t, tw) =>
          listOfObjects(t.matchExpressions, `${tw}.matchExpressions`),
        );
      }
    }
  }
}

export function reviewOf(response: AdmissionResponse): AdmissionReview {
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}

/** Allowed with nothing to say: DELETE/CONNECT/UPDATE of pods, and pods no policy governs. */
export function allowResponse(uid: string, warnings: string[] = []): AdmissionResponse {
  return warnings.length > 0 ? { uid, allowed: true, warnings } : { uid, allowed: true };
}

export function denyResponse(uid: string, code: number, message: string, reason = 'Forbidden'): AdmissionResponse {
  return { uid, allowed: false, status: { code, message, reason } };
}

/** Kubernetes truncates long warnings; keep each under 120 characters as the API docs ask. */
function clip(w: string): string {
  return w.length <= 120 ? w : `${w.slice(0, 117)}...`;
}

/**
 * The response for an engine decision: uid echoed; denial as status 403 Forbidden with the policy and rule;
 * a non-empty patch as base64 JSON Patch; the decision as an audit annotation (the apiserver prefixes the key).
 */
export function responseFor(uid: string, d: AdmissionDecision, withPatch: boolean): AdmissionResponse {
  if (!d.allowed) {
    const res = denyResponse(uid, 403, d.reason ?? 'denied by Coffer isolation policy');
    if (d.warnings.length > 0) res.warnings = d.warnings.map(clip);
    return res;
  }
  const res: AdmissionResponse = { uid, allowed: true };
  if (withPatch && d.patch.length > 0) {
    res.patchType = 'JSONPatch';
    res.patch = Buffer.from(JSON.stringify(d.patch)).toString('base64');
  }
  if (d.warnings.length > 0) res.warnings = d.warnings.map(clip);
  if (d.explanation) res.auditAnnotations = { decision: JSON.stringify(d.explanation) };
  return res;
}
