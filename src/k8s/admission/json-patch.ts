import { K8sInputError } from '../errors.js';

/** RFC 6902 operations the webhook emits (and `applyPatch` understands, for tests and `coffer admit`). */
export type PatchOp =
  | { op: 'add'; path: string; value: unknown }
  | { op: 'replace'; path: string; value: unknown }
  | { op: 'remove'; path: string };

/** RFC 6901: '~' → '~0' first, then '/' → '~1' (annotation keys like coffer.dev/decision contain '/'). */
export function escapePointerToken(token: string | number): string {
  const t = String(token);
  // Fast path: most tokens (field names, indices) need no escaping.
  if (t.indexOf('~') < 0 && t.indexOf('/') < 0) return t;
  return t.replace(/~/g, '~0').replace(/\//g, '~1');
}

export function pointer(path: (string | number)[]): string {
  return path.map((t) => `/${escapePointerToken(t)}`).join('');
}

function unescapeToken(t: string): string {
  return t.replace(/~1/g, '/').replace(/~0/g, '~');
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => deepEqual(x, bb[i]));
  }
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b as object, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

type Container = Record<string, unknown> | unknown[];

/** Deep copy of JSON data (what admission objects are): several times faster than structuredClone here. */
export function cloneJson<T>(v: T): T {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(cloneJson) as T;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) out[k] = cloneJson((v as Record<string, unknown>)[k]);
  return out as T;
}

/**
 * Records JSON Patch ops while applying them to a working copy, so later edits see earlier ones. `set` creates
 * missing parent objects by adding the smallest enclosing object (RFC 6902 §4.1: an add below a missing map
 * fails), and emits nothing when the value is already there: re-admitting a mutated pod yields [].
 */
export class PatchBuilder {
  readonly ops: PatchOp[] = [];
  /** The rule that caused each op (parallel to ops), so a validating call can say what is missing and why. */
  readonly rules: string[] = [];
  rule = 'mutation';
  constructor(readonly doc: Record<string, unknown>) {}

  get(path: (string | number)[]): unknown {
    let cur: unknown = this.doc;
    for (const t of path) {
      if (cur === null || typeof cur !== 'object') return undefined;
      cur = (cur as Record<string, unknown>)[t as string];
    }
    return cur;
  }

  set(path: (string | number)[], value: unknown): void {
    // Find the deepest existing object parent; wrap the value in objects for the missing part.
    let parent: unknown = this.doc;
    let i = 0;
    for (; i < path.length - 1; i++) {
      const next = (parent as Record<string, unknown>)[path[i] as string];
      if (next === null || next === undefined || typeof next !== 'object') break;
      parent = next;
    }
    let v = cloneJson(value);
    for (let j = path.length - 1; j > i; j--) v = { [path[j] as string]: v };
    const key = path[i];
    const target = parent as Container;
    const existing = (target as Record<string, unknown>)[key as string];
    if (i === path.length - 1 && deepEqual(existing, value)) return;
    const op = existing === undefined ? 'add' : 'replace';
    (target as Record<string, unknown>)[key as string] = v;
    this.push({ op, path: pointer(path.slice(0, i + 1)), value: cloneJson(v) });
  }

  /** Appends to an array, creating it (and parents) when missing. */
  append(path: (string | number)[], value: unknown): void {
    const arr = this.get(path);
    if (!Array.isArray(arr)) {
      this.set(path, [value]);
      return;
    }
    arr.push(cloneJson(value));
    this.push({ op: 'add', path: `${pointer(path)}/-`, value: cloneJson(value) });
  }

  remove(path: (string | number)[]): void {
    const parent = this.get(path.slice(0, -1));
    const key = path[path.length - 1];
    if (parent === null || typeof parent !== 'object') return;
    if (Array.isArray(parent)) parent.splice(Number(key), 1);
    else if (Object.hasOwn(parent, key as string)) delete (parent as Record<string, unknown>)[key as string];
    else return;
    this.push({ op: 'remove', path: pointer(path) });
  }

  private push(op: PatchOp): void {
    this.ops.push(op);
    this.rules.push(this.rule);
  }
}

/** Applies RFC 6902 add/replace/remove (what Coffer emits) to a deep copy; malformed ops are typed errors. */
export function applyPatch<T>(doc: T, ops: PatchOp[]): T {
  const root = { v: cloneJson(doc) as unknown };
  for (const op of ops) {
    if (typeof op.path !== 'string' || (op.path !== '' && !op.path.startsWith('/'))) throw new K8sInputError(`patch path '${op.path}' is not a JSON pointer`);
    const tokens = op.path === '' ? [] : op.path.slice(1).split('/').map(unescapeToken);
    let parent: unknown = root;
    let key: string = 'v';
    for (const t of tokens) {
      parent = (parent as Record<string, unknown>)[key];
      if (parent === null || typeof parent !== 'object') throw new K8sInputError(`patch path '${op.path}': parent of '${t}' does not exist`);
      key = t;
    }
    const p = parent as Record<string, unknown>;
    if (Array.isArray(p)) {
      const idx = key === '-' ? p.length : Number(key);
      if (!Number.isInteger(idx) || idx < 0 || idx > p.length) throw new K8sInputError(`patch path '${op.path}': bad array index`);
      if (op.op === 'add') p.splice(idx, 0, cloneJson(op.value));
      else if (op.op === 'replace') p[idx] = cloneJson(op.value);
      else p.splice(idx, 1);
    } else if (op.op === 'add') p[key] = cloneJson(op.value);
    else {
      if (!Object.hasOwn(p, key)) throw new K8sInputError(`patch path '${op.path}': nothing to ${op.op}`);
      if (op.op === 'replace') p[key] = cloneJson(op.value);
      else delete p[key];
    }
  }
  return root.v as T;
}
