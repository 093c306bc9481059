/**
 * The three PATCH flavours the apiserver accepts for built-in types: JSON merge patch (RFC 7386),
 * strategic merge patch (the simple cases: merge keys of the common core/v1 lists, `$patch: delete|replace`,
 * primitive-list union for finalizers) and JSON patch (RFC 6902). Pure functions on plain JSON.
 */
type J = unknown;
type JObj = Record<string, J>;

export class PatchError extends Error {
  readonly code = 'BAD_PATCH';
  constructor(message: string) {
    super(message);
    this.name = 'PatchError';
  }
}

const isObj = (v: J): v is JObj => v !== null && typeof v === 'object' && !Array.isArray(v);
const clone = <T>(v: T): T => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T));

export function mergePatch(target: J, patch: J): J {
  if (!isObj(patch)) return clone(patch);
  const out: JObj = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** patchMergeKey per list field name (k8s.io/api/core/v1 struct tags), for the lists Coffer's peers patch. */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  volumes: 'name',
  env: 'name',
  ports: 'containerPort',
  volumeMounts: 'mountPath',
  conditions: 'type',
  addresses: 'type',
  ownerReferences: 'uid',
  imagePullSecrets: 'name',
  containerStatuses: 'name',
  initContainerStatuses: 'name',
  taints: 'key',
  readinessGates: 'conditionType',
};
/** Primitive lists with patchStrategy merge: union of values. */
const MERGE_PRIMITIVE_LISTS = new Set(['finalizers']);

export function strategicMergePatch(target: J, patch: J): J {
  if (!isObj(patch)) return clone(patch);
  if (patch.$patch === 'replace') {
    const { $patch: _p, ...rest } = patch;
    return clone(rest);
  }
  if (patch.$patch === 'delete') return undefined;
  const out: JObj = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$')) continue; // $setElementOrder/$retainKeys directives: ordering only, ignored here
    if (v === null) {
      delete out[k];
      continue;
    }
    const mergeKey = MERGE_KEYS[k];
    if (Array.isArray(v) && mergeKey && Array.isArray(out[k])) {
      const list = (out[k] as J[]).map((x) => x);
      for (const item of v) {
        if (!isObj(item)) throw new PatchError(`strategic merge patch: list ${k} items must be objects with merge key ${mergeKey}`);
        const idx = list.findIndex((x) => isObj(x) && x[mergeKey] === item[mergeKey]);
        if (item.$patch === 'delete') {
          if (idx >= 0) list.splice(idx, 1);
        } else if (idx >= 0) list[idx] = strategicMergePatch(list[idx], item);
        else list.push(strategicMergePatch(undefined, item));
      }
      out[k] = list;
    } else if (Array.isArray(v) && MERGE_PRIMITIVE_LISTS.has(k) && Array.isArray(out[k])) {
      const set = [...(out[k] as J[])];
      for (const x of v) if (!set.includes(x)) set.push(x);
      out[k] = set;
    } else if (isObj(v)) {
      const r = strategicMergePatch(out[k], v);
      if (r === undefined) delete out[k];
      else out[k] = r;
    } else {
      out[k] = clone(v);
    }
  }
  return out;
}

function unescapePointer(seg: string): string {
  return seg.replace(/~1/g, '/').replace(/~0/g, '~');
}

function pointerParts(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new PatchError(`JSON patch path "${path}" is not a JSON pointer`);
  return path.slice(1).split('/').map(unescapePointer);
}

export function jsonPatch(target: J, ops: J): J {
  if (!Array.isArray(ops)) throw new PatchError('JSON patch must be an array of operations');
  let doc = clone(target);
  for (const op of ops) {
    if (!isObj(op) || typeof op.op !== 'string' || typeof op.path !== 'string') throw new PatchError('JSON patch operation needs op and path');
    const parts = pointerParts(op.path);
    const getParent = (root: J, ps: string[]): [J, string] => {
      let cur = root;
      for (const p of ps.slice(0, -1)) {
        if (Array.isArray(cur)) cur = cur[Number(p)];
        else if (isObj(cur)) cur = cur[p];
        else cur = undefined;
        if (cur === undefined) throw new PatchError(`JSON patch ${op.op}: path "${op.path}" does not exist`);
      }
      return [cur, ps[ps.length - 1]];
    };
    const read = (root: J, ps: string[]): J => {
      let cur = root;
      for (const p of ps) {
        if (Array.isArray(cur)) cur = cur[Number(p)];
        else if (isObj(cur)) cur = Object.prototype.hasOwnProperty.call(cur, p) ? cur[p] : undefined;
        else cur = undefined;
        if (cur === undefined) throw new PatchError(`JSON patch ${op.op}: path "${op.path}" does not exist`);
      }
      return cur;
    };
    const add = (ps: string[], value: J) => {
      if (ps.length === 0) {
        doc = clone(value);
        return;
      }
      const [parent, last] = getParent(doc, ps);
      if (Array.isArray(parent)) {
        const i = last === '-' ? parent.length : Number(last);
        if (!Number.isInteger(i) || i < 0 || i > parent.length) throw new PatchError(`JSON patch add: index "${last}" out of range`);
        parent.splice(i, 0, clone(value));
      } else if (isObj(parent)) parent[last] = clone(value);
      else throw new PatchError(`JSON patch add: parent of "${op.path}" is not a container`);
    };
    const remove = (ps: string[]): J => {
      const [parent, last] = getParent(doc, ps);
      if (Array.isArray(parent)) {
        const i = Number(last);
        if (!Number.isInteger(i) || i < 0 || i >= parent.length) throw new PatchError(`JSON patch remove: index "${last}" out of range`);
        return parent.splice(i, 1)[0];
      }
      if (isObj(parent) && Object.prototype.hasOwnProperty.call(parent, last)) {
        const v = parent[last];
        delete parent[last];
        return v;
      }
      throw new PatchError(`JSON patch remove: path "${op.path}" does not exist`);
    };
    switch (op.op) {
      case 'add':
        add(parts, op.value);
        break;
      case 'remove':
        remove(parts);
        break;
      case 'replace':
        read(doc, parts);
        if (parts.length === 0) doc = clone(op.value);
        else {
          remove(parts);
          add(parts, op.value);
        }
        break;
      case 'test':
        if (JSON.stringify(read(doc, parts)) !== JSON.stringify(op.value)) throw new PatchError(`JSON patch test failed at "${op.path}"`);
        break;
      case 'move':
      case 'copy': {
        if (typeof op.from !== 'string') throw new PatchError(`JSON patch ${op.op} needs from`);
        const fromParts = pointerParts(op.from);
        const v = op.op === 'move' ? remove(fromParts) : clone(read(doc, fromParts));
        add(parts, v);
        break;
      }
      default:
        throw new PatchError(`JSON patch: unknown op "${String(op.op)}"`);
    }
  }
  return doc;
}

export type PatchType = 'merge' | 'strategic' | 'json';

/** Maps a PATCH Content-Type to its flavour (apply-patch is not supported: undefined). */
export function patchTypeOf(contentType: string | undefined): PatchType | undefined {
  const t = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (t === 'application/merge-patch+json') return 'merge';
  if (t === 'application/strategic-merge-patch+json') return 'strategic';
  if (t === 'application/json-patch+json') return 'json';
  return undefined;
}

export function applyPatch(type: PatchType, target: J, patch: J): J {
  if (type === 'merge') return mergePatch(target, patch);
  if (type === 'strategic') return strategicMergePatch(target, patch);
  return jsonPatch(target, patch);
}
