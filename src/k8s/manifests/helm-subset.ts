import { K8sInputError } from '../errors.js';

/**
 * Renders the Helm template subset the generated chart uses — `{{ .Values.a.b }}`, `{{ .Values.a.b | quote }}`,
 * whole-line `{{- if [not] .Values.x }}`, `{{- if gt|le (int .Values.x) N }}`, `{{- else }}` and `{{- end }}` — so tests can prove the chart's
 * defaults reproduce the kustomize output without a helm binary. Anything else is rejected, which keeps the
 * chart inside the subset.
 */
const CONTROL = /^\s*\{\{-?\s*(if|else|end)\b\s*(not\s+)?(?:\.Values\.([A-Za-z0-9_.]+))?\s*-?\}\}\s*$/;
/** A numeric condition (`int`: values.yaml numbers are float64 in Helm, and gt/le refuse mixed types). */
const COMPARE = /^\s*\{\{-?\s*if\s+(gt|le)\s+\(int\s+\.Values\.([A-Za-z0-9_.]+)\)\s+(\d+)\s*-?\}\}\s*$/;
const EXPR = /\{\{-?\s*\.Values\.([A-Za-z0-9_.]+)\s*(\|\s*quote\s*)?-?\}\}/g;

export function lookupValue(values: unknown, path: string): { found: boolean; value: unknown } {
  let cur: unknown = values;
  for (const k of path.split('.')) {
    if (typeof cur !== 'object' || cur === null || !Object.hasOwn(cur, k)) return { found: false, value: undefined };
    cur = (cur as Record<string, unknown>)[k];
  }
  return { found: true, value: cur };
}

/** Go template truthiness: false, 0, "", nil and empty collections are false. */
function truthy(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (v !== null && typeof v === 'object') return Object.keys(v).length > 0;
  return Boolean(v);
}

function resolve(values: unknown, path: string, where: string): unknown {
  const r = lookupValue(values, path);
  if (!r.found) throw new K8sInputError(`${where}: .Values.${path} is not defined in values.yaml`);
  return r.value;
}

export function renderHelmSubset(template: string, values: unknown, name = 'template'): string {
  const out: string[] = [];
  const stack: { on: boolean; parentOn: boolean; sawElse: boolean }[] = [];
  const lines = template.split('\n');
  lines.forEach((line, i) => {
    const where = `${name}:${i + 1}`;
    const on = stack.length === 0 || stack[stack.length - 1].on;
    const cmp = COMPARE.exec(line);
    if (cmp) {
      const [, op, path, n] = cmp;
      const v = resolve(values, path, where);
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new K8sInputError(`${where}: .Values.${path} is not a number`);
      const x = Math.trunc(v);
      stack.push({ on: on && (op === 'gt' ? x > Number(n) : x <= Number(n)), parentOn: on, sawElse: false });
      return;
    }
    const c = CONTROL.exec(line);
    if (c) {
      const [, kw, not, path] = c;
      if (kw === 'if') {
        if (!path) throw new K8sInputError(`${where}: if needs a .Values path`);
        const v = truthy(resolve(values, path, where));
        stack.push({ on: on && (not ? !v : v), parentOn: on, sawElse: false });
      } else if (kw === 'else') {
        const top = stack[stack.length - 1];
        if (!top || top.sawElse || path) throw new K8sInputError(`${where}: unexpected else`);
        top.sawElse = true;
        top.on = top.parentOn && !top.on;
      } else {
        if (!stack.pop() || path) throw new K8sInputError(`${where}: unexpected end`);
      }
      return;
    }
    const rendered = line.replace(EXPR, (_m, path: string, quote?: string) => {
      const v = resolve(values, path, where);
      return quote ? JSON.stringify(String(v)) : String(v);
    });
    if (rendered.includes('{{')) throw new K8sInputError(`${where}: template construct outside the supported subset: ${line.trim()}`);
    if (on) out.push(rendered);
  });
  if (stack.length > 0) throw new K8sInputError(`${name}: unterminated if`);
  return out.join('\n');
}

/** Every `.Values.x` path a template mentions. */
export function valueReferences(template: string): string[] {
  return [...template.matchAll(/\.Values\.([A-Za-z0-9_.]+)/g)].map((m) => m[1]);
}
