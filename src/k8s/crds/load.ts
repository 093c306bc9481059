import { parseAllDocuments } from 'yaml';
import { MAX_NESTING_DEPTH, yamlDepth } from '../../tee/common/nesting.js';
import { K8sInputError } from '../errors.js';
import { SCHEMA_PATTERNS } from './schemas.js';
import {
  COFFER_API_VERSION,
  ENFORCE_MODES,
  ISOLATION_LEVELS,
  SIZING_MODES,
  type IsolationPolicy,
  type LabelSelector,
  type RuntimeProfile,
} from './types.js';
import { parseQuantity } from '../quantity.js';
import { checkImagePolicy } from '../../images/policy.js';
import { ImageError } from '../../images/errors.js';

/**
 * Checks and defaults Coffer objects the way the CRD schema does on the API server (enums, required fields,
 * patterns, CEL rules, defaults), so offline tools (`coffer admit`) see exactly what a cluster would accept.
 */

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function fail(where: string, msg: string): never {
  throw new K8sInputError(`${where}: ${msg}`);
}

function str(v: unknown, where: string, pattern?: string): string {
  if (typeof v !== 'string') fail(where, 'must be a string');
  if (pattern && !new RegExp(pattern).test(v)) fail(where, `'${v}' does not match ${pattern}`);
  return v;
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], where: string): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    fail(where, `must be one of ${allowed.join(', ')} (got ${JSON.stringify(v)})`);
  }
  return v as T;
}

function stringMap(v: unknown, where: string, keyPattern: string, valuePattern: string): Record<string, string> {
  if (!isObj(v)) fail(where, 'must be a map of strings');
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    str(k, `${where} key`, keyPattern);
    out[k] = str(val, `${where}[${k}]`, valuePattern);
  }
  return out;
}

export function checkLabelSelector(v: unknown, where: string): LabelSelector {
  if (!isObj(v)) fail(where, 'must be a label selector object');
  const sel: LabelSelector = {};
  if (v.matchLabels !== undefined) sel.matchLabels = stringMap(v.matchLabels, `${where}.matchLabels`, SCHEMA_PATTERNS.LABEL_KEY, SCHEMA_PATTERNS.LABEL_VALUE);
  if (v.matchExpressions !== undefined) {
    if (!Array.isArray(v.matchExpressions)) fail(`${where}.matchExpressions`, 'must be a list');
    sel.matchExpressions = v.matchExpressions.map((e, i) => {
      const w = `${where}.matchExpressions[${i}]`;
      if (!isObj(e)) fail(w, 'must be an object');
      const key = str(e.key, `${w}.key`, SCHEMA_PATTERNS.LABEL_KEY);
      const operator = oneOf(e.operator, ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const, `${w}.operator`);
      const values = e.values === undefined ? undefined : Array.isArray(e.values) ? e.values.map((x, j) => str(x, `${w}.values[${j}]`, SCHEMA_PATTERNS.LABEL_VALUE)) : fail(`${w}.values`, 'must be a list');
      const needsValues = operator === 'In' || operator === 'NotIn';
      if (needsValues && (!values || values.length === 0)) fail(w, `operator ${operator} needs a non-empty values list`);
      if (!needsValues && values && values.length > 0) fail(w, `operator ${operator} takes no values`);
      return values ? { key, operator, values } : { key, operator };
    });
  }
  return sel;
}

function meta(v: unknown, where: string): { name: string; labels?: Record<string, string>; annotations?: Record<string, string> } {
  if (!isObj(v)) fail(`${where}.metadata`, 'is required');
  const name = str(v.name, `${where}.metadata.name`, SCHEMA_PATTERNS.DNS_SUBDOMAIN);
  return { ...v, name } as { name: string };
}

function checkApi(doc: Obj, kind: string, where: string): void {
  if (doc.apiVersion !== COFFER_API_VERSION) fail(where, `apiVersion must be ${COFFER_API_VERSION} (got ${JSON.stringify(doc.apiVersion)})`);
  if (doc.kind !== kind) fail(where, `kind must be ${kind} (got ${JSON.stringify(doc.kind)})`);
}

export function checkIsolationPolicy(doc: unknown, where = 'IsolationPolicy'): IsolationPolicy {
  if (!isObj(doc)) fail(where, 'must be an object');
  checkApi(doc, 'IsolationPolicy', where);
  const metadata = meta(doc.metadata, where);
  const w = `IsolationPolicy ${metadata.name}`;
  const s = doc.spec;
  if (!isObj(s)) fail(`${w}.spec`, 'is required');
  if (s.namespaceSelector === undefined) fail(`${w}.spec.namespaceSelector`, 'is required ({} selects every namespace)');
  const spec: IsolationPolicy['spec'] = {
    namespaceSelector: checkLabelSelector(s.namespaceSelector, `${w}.spec.namespaceSelector`),
    isolation: oneOf(s.isolation, ISOLATION_LEVELS, `${w}.spec.isolation`),
    enforce: s.enforce === undefined ? 'mutate' : oneOf(s.enforce, ENFORCE_MODES, `${w}.spec.enforce`),
    sizing: s.sizing === undefined ? 'none' : oneOf(s.sizing, SIZING_MODES, `${w}.spec.sizing`),
    autonomy: s.autonomy === undefined ? false : typeof s.autonomy === 'boolean' ? s.autonomy : fail(`${w}.spec.autonomy`, 'must be a boolean'),
  };
  if (s.podSelector !== undefined) spec.podSelector = checkLabelSelector(s.podSelector, `${w}.spec.podSelector`);
  if (s.runtimeClassName !== undefined) spec.runtimeClassName = str(s.runtimeClassName, `${w}.spec.runtimeClassName`, SCHEMA_PATTERNS.DNS_SUBDOMAIN);
  if (spec.isolation === 'confidential-vm' && !spec.runtimeClassName) {
    fail(`${w}.spec.runtimeClassName`, 'confidential-vm needs an explicit runtimeClassName (the TEE kind, e.g. kata-qemu-tdx or kata-qemu-snp)');
  }
  if (spec.isolation === 'none' && spec.sizing !== 'none') fail(`${w}.spec.sizing`, 'sizing applies to sandboxed pods only');
  if (s.images !== undefined) {
    if (spec.isolation === 'none') fail(`${w}.spec.images`, 'image signature policy applies to sandbox, confidential-vm and enclave policies');
    try {
      spec.images = checkImagePolicy(s.images, `${w}.spec.images`);
    } catch (e) {
      if (e instanceof ImageError) throw new K8sInputError(e.message);
      throw e;
    }
  }
  return { apiVersion: COFFER_API_VERSION, kind: 'IsolationPolicy', metadata, spec };
}

function quantityMapOf(v: unknown, where: string): Record<string, string> {
  if (!isObj(v)) fail(where, 'must be a map of quantities');
  const out: Record<string, string> = {};
  for (const [k, q] of Object.entries(v)) {
    const text = typeof q === 'number' ? String(q) : str(q, `${where}[${k}]`);
    parseQuantity(text, `${where}[${k}]`);
    out[k] = text;
  }
  return out;
}

export function checkRuntimeProfile(doc: unknown, where = 'RuntimeProfile'): RuntimeProfile {
  if (!isObj(doc)) fail(where, 'must be an object');
  checkApi(doc, 'RuntimeProfile', where);
  const metadata = meta(doc.metadata, where);
  const w = `RuntimeProfile ${metadata.name}`;
  const s = doc.spec;
  if (!isObj(s)) fail(`${w}.spec`, 'is required');
  const spec: RuntimeProfile['spec'] = {
    handler: str(s.handler, `${w}.spec.handler`, SCHEMA_PATTERNS.DNS_LABEL),
    isolation: oneOf(s.isolation, ISOLATION_LEVELS, `${w}.spec.isolation`),
  };
  if (s.overhead !== undefined) {
    if (!isObj(s.overhead)) fail(`${w}.spec.overhead`, 'must be an object');
    spec.overhead = { podFixed: quantityMapOf(s.overhead.podFixed, `${w}.spec.overhead.podFixed`) };
  }
  if (s.scheduling !== undefined) {
    if (!isObj(s.scheduling)) fail(`${w}.spec.scheduling`, 'must be an object');
    spec.scheduling = {};
    if (s.scheduling.nodeSelector !== undefined) {
      spec.scheduling.nodeSelector = stringMap(s.scheduling.nodeSelector, `${w}.spec.scheduling.nodeSelector`, SCHEMA_PATTERNS.LABEL_KEY, SCHEMA_PATTERNS.LABEL_VALUE);
    }
    if (s.scheduling.tolerations !== undefined) {
      if (!Array.isArray(s.scheduling.tolerations)) fail(`${w}.spec.scheduling.tolerations`, 'must be a list');
      spec.scheduling.tolerations = s.scheduling.tolerations.map((t, i) => {
        if (!isObj(t)) fail(`${w}.spec.scheduling.tolerations[${i}]`, 'must be an object');
        return t as never;
      });
    }
  }
  if (s.nodeLabel !== undefined) {
    if (!isObj(s.nodeLabel)) fail(`${w}.spec.nodeLabel`, 'must be an object');
    spec.nodeLabel = {
      key: str(s.nodeLabel.key, `${w}.spec.nodeLabel.key`, SCHEMA_PATTERNS.LABEL_KEY),
      value: str(s.nodeLabel.value, `${w}.spec.nodeLabel.value`, SCHEMA_PATTERNS.LABEL_VALUE),
    };
  }
  if (s.capacity !== undefined) {
    if (!isObj(s.capacity)) fail(`${w}.spec.capacity`, 'must be an object');
    spec.capacity = {};
    for (const k of ['cpu', 'memory'] as const) {
      if (s.capacity[k] !== undefined) {
        const text = String(s.capacity[k]);
        parseQuantity(text, `${w}.spec.capacity.${k}`);
        spec.capacity[k] = text;
      }
    }
  }
  if (s.source !== undefined) spec.source = str(s.source, `${w}.spec.source`);
  return { apiVersion: COFFER_API_VERSION, kind: 'RuntimeProfile', metadata, spec };
}

/** Every non-empty document of a (multi-document) YAML or JSON text; a syntax error names the document. */
export function parseYamlDocuments(text: string, what: string): unknown[] {
  // Bounded before the composer recurses (a pod nested thousands deep overflowed the stack later).
  if (yamlDepth(text, MAX_NESTING_DEPTH) > MAX_NESTING_DEPTH) throw new K8sInputError(`${what}: nested more than ${MAX_NESTING_DEPTH} levels deep`);
  const docs = parseAllDocuments(text);
  const out: unknown[] = [];
  (Array.isArray(docs) ? docs : [docs]).forEach((d, i) => {
    if (d.errors.length > 0) throw new K8sInputError(`${what}: document ${i + 1} is not valid YAML: ${d.errors[0].message.split('\n')[0]}`);
    let v: unknown;
    try {
      // maxAliasCount: an alias bomb (a billion laughs) is refused instead of expanded.
      v = d.toJS({ json: true, mapAsMap: false, maxAliasCount: 100 });
    } catch (e) {
      throw new K8sInputError(`${what}: document ${i + 1}: ${(e as Error).message.split('\n')[0]}`);
    }
    if (v === null || v === undefined) return;
    // A List (kubectl get -o yaml) contributes its items.
    if (isObj(v) && typeof v.kind === 'string' && v.kind.endsWith('List') && Array.isArray(v.items)) out.push(...v.items);
    else out.push(v);
  });
  return out;
}

function inDocument<T>(what: string, i: number, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof K8sInputError && !e.message.startsWith(`${what} document`)) throw new K8sInputError(`${what} document ${i + 1}: ${e.message}`, e.code);
    throw e;
  }
}

export function parseIsolationPolicies(text: string, what = 'policy'): IsolationPolicy[] {
  return parseYamlDocuments(text, what).map((d, i) => inDocument(what, i, () => checkIsolationPolicy(d, `${what} document ${i + 1}`)));
}

export function parseRuntimeProfiles(text: string, what = 'profiles'): RuntimeProfile[] {
  return parseYamlDocuments(text, what).map((d, i) => inDocument(what, i, () => checkRuntimeProfile(d, `${what} document ${i + 1}`)));
}
