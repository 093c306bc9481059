/**
 * RuntimeClass installer, the pure part: RuntimeProfiles (the built-in ones unless disabled, overridden by name by
 * RuntimeProfile objects) → the `node.k8s.io/v1` RuntimeClass each one describes, and the actions that bring one
 * observed RuntimeClass to it.
 *
 * Ownership: Coffer writes only RuntimeClasses labelled `app.kubernetes.io/managed-by: coffer`. A same-named class
 * someone else installed (kata-deploy, AKS) is reported and left alone; an owned class whose profile is gone is
 * deleted. `handler` is immutable (ValidateRuntimeClassUpdate), so a changed handler means delete + create.
 * Quantities compare by value: the API server canonicalises them ("1.0" is stored as "1").
 */
import { builtinRuntimeProfiles } from '../crds/builtin-profiles.js';
import { checkRuntimeProfile } from '../crds/load.js';
import { COFFER_API_VERSION, type RuntimeProfile, type Toleration } from '../crds/types.js';
import { quantityMapsEqual } from '../quantity.js';

type Obj = Record<string, any>;

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'coffer';
/** On owned RuntimeClasses: the RuntimeProfile they were made from. */
export const PROFILE_LABEL = 'coffer.dev/runtime-profile';

export type RuntimeClassAction =
  | { kind: 'create'; name: string; object: Obj }
  | { kind: 'update'; name: string; object: Obj }
  | { kind: 'delete'; name: string; resourceVersion: string; uid: string; reason: 'profile-deleted' | 'handler-changed' }
  | { kind: 'notOwned'; name: string };

export function isOwned(rc: Obj | undefined): boolean {
  return rc?.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
}

/** The effective profiles by name; invalid RuntimeProfile objects are reported through `onInvalid` and skipped. */
export function effectiveProfiles(objects: readonly unknown[], builtins: boolean, onInvalid: (name: string, err: Error) => void = () => {}): Map<string, RuntimeProfile> {
  const map = new Map<string, RuntimeProfile>(builtins ? builtinRuntimeProfiles().map((p) => [p.metadata.name, p]) : []);
  for (const o of objects) {
    try {
      // Watch events and custom-resource lists carry TypeMeta; fill it in for objects from elsewhere.
      const p = checkRuntimeProfile({ apiVersion: COFFER_API_VERSION, kind: 'RuntimeProfile', ...(o as Obj) });
      map.set(p.metadata.name, p);
    } catch (e) {
      onInvalid(String((o as Obj)?.metadata?.name ?? '?'), e as Error);
    }
  }
  return map;
}

/** The RuntimeClass a profile describes (no status, no server fields). */
export function desiredRuntimeClass(p: RuntimeProfile): Obj {
  const rc: Obj = {
    apiVersion: 'node.k8s.io/v1',
    kind: 'RuntimeClass',
    metadata: { name: p.metadata.name, labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [PROFILE_LABEL]: p.metadata.name } },
    handler: p.spec.handler,
  };
  if (p.spec.overhead?.podFixed && Object.keys(p.spec.overhead.podFixed).length > 0) rc.overhead = { podFixed: { ...p.spec.overhead.podFixed } };
  const s = p.spec.scheduling;
  const scheduling: Obj = {};
  if (s?.nodeSelector && Object.keys(s.nodeSelector).length > 0) scheduling.nodeSelector = { ...s.nodeSelector };
  if (s?.tolerations && s.tolerations.length > 0) scheduling.tolerations = s.tolerations.map((t) => ({ ...t }));
  if (Object.keys(scheduling).length > 0) rc.scheduling = scheduling;
  return rc;
}

const normTol = (t: Toleration) => JSON.stringify([t.key ?? '', t.operator ?? 'Equal', t.value ?? '', t.effect ?? '', t.tolerationSeconds ?? null]);
function sameStrings(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  const x = a ?? {};
  const y = b ?? {};
  const kx = Object.keys(x);
  return kx.length === Object.keys(y).length && kx.every((k) => Object.hasOwn(y, k) && y[k] === x[k]);
}

/** Whether the observed class already carries everything the desired one says (extra user labels are fine). */
export function runtimeClassMatches(observed: Obj, desired: Obj): boolean {
  if (observed.handler !== desired.handler) return false;
  if (!quantityMapsEqual(observed.overhead?.podFixed, desired.overhead?.podFixed)) return false;
  if (!sameStrings(observed.scheduling?.nodeSelector, desired.scheduling?.nodeSelector)) return false;
  const ot: Toleration[] = observed.scheduling?.tolerations ?? [];
  const dt: Toleration[] = desired.scheduling?.tolerations ?? [];
  if (ot.length !== dt.length || ot.some((t, i) => normTol(t) !== normTol(dt[i]))) return false;
  const labels = observed.metadata?.labels ?? {};
  return Object.entries(desired.metadata.labels as Record<string, string>).every(([k, v]) => labels[k] === v);
}

/** Level-triggered reconcile of one RuntimeClass name: (desired profile, observed class) → actions. */
export function reconcileRuntimeClass(name: string, profile: RuntimeProfile | undefined, observed: Obj | undefined): RuntimeClassAction[] {
  if (observed && !isOwned(observed)) return profile ? [{ kind: 'notOwned', name }] : [];
  if (!profile) {
    return observed ? [{ kind: 'delete', name, resourceVersion: observed.metadata.resourceVersion, uid: observed.metadata.uid, reason: 'profile-deleted' }] : [];
  }
  const want = desiredRuntimeClass(profile);
  if (!observed) return [{ kind: 'create', name, object: want }];
  if (runtimeClassMatches(observed, want)) return [];
  if (observed.handler !== want.handler) {
    return [
      { kind: 'delete', name, resourceVersion: observed.metadata.resourceVersion, uid: observed.metadata.uid, reason: 'handler-changed' },
      { kind: 'create', name, object: want },
    ];
  }
  // Keep what others added to metadata; replace the fields the profile owns.
  const object: Obj = {
    ...observed,
    metadata: { ...observed.metadata, labels: { ...(observed.metadata.labels ?? {}), ...want.metadata.labels } },
    handler: want.handler,
  };
  delete object.overhead;
  delete object.scheduling;
  if (want.overhead) object.overhead = want.overhead;
  if (want.scheduling) object.scheduling = want.scheduling;
  return [{ kind: 'update', name, object }];
}
