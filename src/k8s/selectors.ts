/**
 * Label and field selectors with the apiserver's grammar (apimachinery/pkg/labels/selector.go,
 * apimachinery/pkg/fields/selector.go). Pure: parse once, match many.
 */
export class SelectorError extends Error {
  readonly code = 'BAD_SELECTOR';
  constructor(message: string) {
    super(message);
    this.name = 'SelectorError';
  }
}

export type LabelRequirement =
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | '!' };

export type LabelSelector = LabelRequirement[];

const KEY_RE = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VALUE_RE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

function checkKey(k: string, whole: string): string {
  if (!KEY_RE.test(k) || k.length > 317) throw new SelectorError(`unable to parse requirement: invalid label key "${k}" in selector "${whole}"`);
  return k;
}
function checkValue(v: string, whole: string): string {
  if (!VALUE_RE.test(v) || v.length > 63) throw new SelectorError(`unable to parse requirement: invalid label value "${v}" in selector "${whole}"`);
  return v;
}

/** Splits on commas that are not inside a parenthesised set. */
function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

export function parseLabelSelector(input: string | undefined | null): LabelSelector {
  const whole = (input ?? '').trim();
  if (whole === '') return [];
  const reqs: LabelSelector = [];
  for (const rawPart of splitTopLevel(whole)) {
    const part = rawPart.trim();
    if (part === '') throw new SelectorError(`found '', expected: identifier in selector "${whole}"`);
    let m: RegExpMatchArray | null;
    if ((m = part.match(/^(\S+?)\s+(in|notin)\s*\((.*)\)$/))) {
      const values = m[3].split(',').map((v) => checkValue(v.trim(), whole));
      reqs.push({ key: checkKey(m[1], whole), op: m[2] as 'in' | 'notin', values });
    } else if ((m = part.match(/^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/))) {
      const key = checkKey(m[1], whole);
      const value = checkValue(m[3], whole);
      reqs.push({ key, op: m[2] === '!=' ? 'notin' : 'in', values: [value] });
    } else if ((m = part.match(/^!\s*(\S+)$/))) {
      reqs.push({ key: checkKey(m[1], whole), op: '!' });
    } else if (/^\S+$/.test(part)) {
      reqs.push({ key: checkKey(part, whole), op: 'exists' });
    } else {
      throw new SelectorError(`unable to parse requirement "${part}" in selector "${whole}"`);
    }
  }
  return reqs;
}

export function matchLabels(sel: LabelSelector, labels: Record<string, string> | undefined | null): boolean {
  const l = labels ?? {};
  for (const r of sel) {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    switch (r.op) {
      case 'exists':
        if (!has) return false;
        break;
      case '!':
        if (has) return false;
        break;
      case 'in':
        if (!has || !r.values.includes(l[r.key])) return false;
        break;
      case 'notin':
        if (has && r.values.includes(l[r.key])) return false;
        break;
    }
  }
  return true;
}

export interface FieldRequirement {
  field: string;
  op: '=' | '!=';
  value: string;
}
export type FieldSelector = FieldRequirement[];

/** Splits a field selector on unescaped commas and unescapes `\,` `\=` `\\` (fields.EscapeValue). */
export function parseFieldSelector(input: string | undefined | null): FieldSelector {
  const whole = (input ?? '').trim();
  if (whole === '') return [];
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < whole.length; i++) {
    const ch = whole[i];
    if (ch === '\\' && i + 1 < whole.length) {
      cur += ch + whole[++i];
    } else if (ch === ',') {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => {
    const m = p.match(/^([^=!]+)(==|=|!=)(.*)$/s);
    if (!m) throw new SelectorError(`invalid selector: '${whole}'; can't understand '${p}'`);
    const value = m[3].replace(/\\(.)/g, (_s, c: string) => {
      if (c !== ',' && c !== '=' && c !== '\\') throw new SelectorError(`invalid field selector: invalid escape sequence \\${c} in '${whole}'`);
      return c;
    });
    return { field: m[1].trim(), op: m[2] === '!=' ? '!=' : '=', value } as FieldRequirement;
  });
}

/** Field labels each kind supports (pkg/registry/core/*\/strategy.go ToSelectableFields + conversion funcs). */
const KIND_FIELDS: Record<string, string[]> = {
  Pod: ['spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'spec.hostNetwork', 'status.phase', 'status.podIP', 'status.nominatedNodeName'],
  Node: ['spec.unschedulable'],
  Namespace: ['status.phase'],
  Secret: ['type'],
  Event: ['involvedObject.kind', 'involvedObject.namespace', 'involvedObject.name', 'involvedObject.uid', 'involvedObject.apiVersion', 'involvedObject.resourceVersion', 'involvedObject.fieldPath', 'reason', 'reportingComponent', 'source', 'type'],
};

function get(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const k of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/** The selectable field set of an object: metadata.name, metadata.namespace (namespaced kinds) and the kind's own. */
export function selectableFields(kind: string, obj: Record<string, unknown>, namespaced: boolean): Record<string, string> {
  const out: Record<string, string> = { 'metadata.name': String(get(obj, 'metadata.name') ?? '') };
  if (namespaced) out['metadata.namespace'] = String(get(obj, 'metadata.namespace') ?? '');
  for (const f of KIND_FIELDS[kind] ?? []) {
    const v = get(obj, f === 'source' ? 'source.component' : f);
    out[f] = v === undefined || v === null ? (f === 'spec.hostNetwork' || f === 'spec.unschedulable' ? 'false' : '') : String(v);
  }
  return out;
}

/** Rejects field labels the kind does not support, like the apiserver's "field label not supported" error. */
export function validateFieldSelector(sel: FieldSelector, kind: string, namespaced: boolean): void {
  const allowed = new Set(['metadata.name', ...(namespaced ? ['metadata.namespace'] : []), ...(KIND_FIELDS[kind] ?? [])]);
  for (const r of sel) {
    if (!allowed.has(r.field)) throw new SelectorError(`field label not supported: ${r.field}`);
  }
}

export function matchFields(sel: FieldSelector, fields: Record<string, string>): boolean {
  for (const r of sel) {
    const v = fields[r.field] ?? '';
    if (r.op === '=' ? v !== r.value : v === r.value) return false;
  }
  return true;
}
