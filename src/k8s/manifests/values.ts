import { parse } from 'yaml';
import { MAX_NESTING_DEPTH, yamlDepth } from '../../tee/common/nesting.js';
import { K8sInputError } from '../errors.js';

/**
 * Install-time settings: the `--values` file of `coffer manifests` and the Helm chart's values.yaml are the
 * same shape with the same defaults (the chart's values.yaml is generated from DEFAULT_VALUES).
 */
export interface Values {
  namespace: string;
  image: { repository: string; tag: string; pullPolicy: 'Always' | 'IfNotPresent' | 'Never' };
  webhook: {
    replicas: number;
    port: number;
    timeoutSeconds: number;
    cpu: string;
    memory: string;
    images: {
      /**
       * ConfigMap (in the install namespace) whose key `trusted_root.json` is the Sigstore trusted root for keyless
       * signers (`cosign trusted-root create` / TUF's trusted_root.json); mounted and passed as --trusted-root.
       * Empty: no trusted root, so keyless signers deny (keyed signers work either way).
       */
      trustedRootConfigMap: string;
    };
  };
  admission: { epcResource: string; epcDefaultMiB: number; quoteSocketDir: string };
  controller: { replicas: number };
  attestation: {
    enabled: boolean;
    replicas: number;
    port: number;
    /** Secret holding the key-encryption key (key `kek`: 32 bytes as 64 hex characters). */
    kekSecret: string;
    /** Optional Secret with a PostgreSQL URL (key `url`); without it the store is SQLite on the data volume. */
    storeSecret: string;
    /** Size of the data volume (PersistentVolumeClaim; only with one replica: more replicas run on PostgreSQL). */
    storageSize: string;
    /** ConfigMap of TPM manufacturer CA certificates (PEM/DER, one per key) that EK certificates must chain to. */
    tpmCaConfigMap: string;
    /**
     * ConfigMap whose key `admin.pub` holds the admin public keys (PEM, Ed25519 or P-256, several for rotation):
     * every attestation replica and the key broker trust this one set (`--admin-keys`), so an admin token works
     * against whichever pod answers. The private key stays with the operator (`coffer admin-token --key`).
     */
    adminKeysConfigMap: string;
    /** Lifetime of the EAR tokens (`--token-ttl`): longer than nodeTrust.attestInterval, or nodes flap. */
    tokenTtl: string;
  };
  /** The key broker (`coffer kbs`, attestation built in): one replica on SQLite on its own volume. */
  kbs: { enabled: boolean; port: number; storageSize: string };
  /** The node-trust controller's report endpoint (agents POST /v1/node-trust/reports to it). */
  nodeTrust: {
    port: number;
    attestInterval: string;
    /**
     * Secret with the node-trust controller's audit key: `key.pem` (private, mounted into the controller only) and
     * `public.pem` (mounted into the attestation service): trust transitions are appended to the service's audit log.
     */
    auditKeySecret: string;
  };
  /** quoteHelper: `coffer agent quote-helper` with the node TPM on TPM nodes (socket in admission.quoteSocketDir). */
  agent: { enabled: boolean; sgx: { enabled: boolean }; attest: { enabled: boolean }; quoteHelper: { enabled: boolean } };
  certManager: { enabled: boolean };
}

export const DEFAULT_VALUES: Values = {
  namespace: 'coffer-system',
  image: { repository: 'ghcr.io/coffer-dev/coffer', tag: '0.1.0', pullPolicy: 'IfNotPresent' },
  webhook: { replicas: 2, port: 8443, timeoutSeconds: 5, cpu: '100m', memory: '128Mi', images: { trustedRootConfigMap: '' } },
  admission: { epcResource: 'kubernetes.azure.com/sgx_epc_mem_in_MiB', epcDefaultMiB: 10, quoteSocketDir: '/var/run/aesmd' },
  controller: { replicas: 1 },
  attestation: { enabled: true, replicas: 1, port: 8080, kekSecret: 'coffer-attestation-kek', storeSecret: 'coffer-attestation-store', storageSize: '1Gi', tpmCaConfigMap: 'coffer-tpm-ca', adminKeysConfigMap: 'coffer-admin-keys', tokenTtl: '5m' },
  kbs: { enabled: true, port: 8081, storageSize: '1Gi' },
  nodeTrust: { port: 9444, attestInterval: '60s', auditKeySecret: 'coffer-node-trust-audit' },
  agent: { enabled: true, sgx: { enabled: true }, attest: { enabled: true }, quoteHelper: { enabled: true } },
  certManager: { enabled: false },
};

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Overlays user values on the defaults; unknown keys and wrong types are rejected (a typo must not be ignored). */
export function mergeValues(user: unknown, base: Values = DEFAULT_VALUES): Values {
  const out = structuredClone(base) as unknown as Obj;
  const walk = (src: unknown, dst: Obj, path: string) => {
    if (!isObj(src)) throw new K8sInputError(`values${path}: must be a map`);
    for (const [k, v] of Object.entries(src)) {
      const p = `${path}.${k}`;
      if (!Object.hasOwn(dst, k)) throw new K8sInputError(`values${p}: unknown setting`);
      const cur = dst[k];
      if (isObj(cur)) walk(v, cur, p);
      else if (typeof v !== typeof cur) throw new K8sInputError(`values${p}: must be a ${typeof cur}, got ${JSON.stringify(v)}`);
      else dst[k] = v;
    }
  };
  if (user !== null && user !== undefined) walk(user, out, '');
  const v = out as unknown as Values;
  checkValues(v);
  return v;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function checkValues(v: Values): void {
  const bad = (p: string, m: string): never => {
    throw new K8sInputError(`values.${p}: ${m}`);
  };
  if (!DNS_LABEL.test(v.namespace)) bad('namespace', `'${v.namespace}' is not a DNS label`);
  if (['kube-system', 'kube-public', 'kube-node-lease', 'default'].includes(v.namespace)) bad('namespace', `Coffer needs its own namespace, not ${v.namespace}`);
  if (!/^[a-z0-9]+([._/:-][a-z0-9]+)*$/.test(v.image.repository)) bad('image.repository', 'is not an image reference');
  if (!/^[\w][\w.-]{0,127}$/.test(v.image.tag)) bad('image.tag', 'is not an image tag');
  if (!['Always', 'IfNotPresent', 'Never'].includes(v.image.pullPolicy)) bad('image.pullPolicy', 'must be Always, IfNotPresent or Never');
  const int = (p: string, n: number, lo: number, hi: number) => (Number.isInteger(n) && n >= lo && n <= hi) || bad(p, `must be an integer in ${lo}..${hi}`);
  int('webhook.replicas', v.webhook.replicas, 1, 20);
  int('webhook.port', v.webhook.port, 1024, 65535);
  int('webhook.timeoutSeconds', v.webhook.timeoutSeconds, 1, 30);
  const cm = v.webhook.images.trustedRootConfigMap;
  if (cm !== '' && !(cm.length <= 253 && cm.split('.').every((l) => DNS_LABEL.test(l)))) bad('webhook.images.trustedRootConfigMap', `'${cm}' is not a ConfigMap name`);
  int('controller.replicas', v.controller.replicas, 1, 5);
  int('attestation.replicas', v.attestation.replicas, 1, 20);
  int('attestation.port', v.attestation.port, 1024, 65535);
  if (!DNS_LABEL.test(v.attestation.kekSecret)) bad('attestation.kekSecret', `'${v.attestation.kekSecret}' is not a Secret name`);
  if (!DNS_LABEL.test(v.attestation.storeSecret)) bad('attestation.storeSecret', `'${v.attestation.storeSecret}' is not a Secret name`);
  const quantity = /^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/;
  if (!quantity.test(v.attestation.storageSize)) bad('attestation.storageSize', `'${v.attestation.storageSize}' is not a quantity`);
  if (!DNS_LABEL.test(v.attestation.tpmCaConfigMap)) bad('attestation.tpmCaConfigMap', `'${v.attestation.tpmCaConfigMap}' is not a ConfigMap name`);
  if (!DNS_LABEL.test(v.attestation.adminKeysConfigMap)) bad('attestation.adminKeysConfigMap', `'${v.attestation.adminKeysConfigMap}' is not a ConfigMap name`);
  if (!DNS_LABEL.test(v.nodeTrust.auditKeySecret)) bad('nodeTrust.auditKeySecret', `'${v.nodeTrust.auditKeySecret}' is not a Secret name`);
  const seconds = (d: string) => Number(d.slice(0, -1)) * { s: 1, m: 60, h: 3600 }[d.slice(-1) as 's'];
  const ttlOk = /^[1-9][0-9]{0,5}(s|m|h)$/.test(v.attestation.tokenTtl) && seconds(v.attestation.tokenTtl) <= 86_400;
  if (!ttlOk) bad('attestation.tokenTtl', `'${v.attestation.tokenTtl}' is not a duration like 300s, 5m or 1h (at most 24h)`);
  int('kbs.port', v.kbs.port, 1024, 65535);
  if (!quantity.test(v.kbs.storageSize)) bad('kbs.storageSize', `'${v.kbs.storageSize}' is not a quantity`);
  int('nodeTrust.port', v.nodeTrust.port, 1024, 65535);
  if (!/^[1-9][0-9]{0,5}(s|m|h)$/.test(v.nodeTrust.attestInterval)) bad('nodeTrust.attestInterval', `'${v.nodeTrust.attestInterval}' is not a duration like 60s, 5m or 1h`);
  // A token must outlive the interval between attestations (plus a retry), or every node loses trust between two.
  if (ttlOk && seconds(v.attestation.tokenTtl) < 2 * seconds(v.nodeTrust.attestInterval)) bad('attestation.tokenTtl', `'${v.attestation.tokenTtl}' must be at least twice nodeTrust.attestInterval (${v.nodeTrust.attestInterval})`);
  int('admission.epcDefaultMiB', v.admission.epcDefaultMiB, 1, 512 * 1024);
  if (!v.admission.quoteSocketDir.startsWith('/')) bad('admission.quoteSocketDir', 'must be an absolute path');
}

export function parseValues(text: string, what = 'values'): Values {
  let doc: unknown;
  try {
    if (yamlDepth(text, MAX_NESTING_DEPTH) > MAX_NESTING_DEPTH) throw new Error(`nested more than ${MAX_NESTING_DEPTH} levels deep`);
    doc = parse(text, { maxAliasCount: 100 });
  } catch (e) {
    throw new K8sInputError(`${what}: not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  return mergeValues(doc);
}

/**
 * How builders read values. Concrete mode returns the value; template mode returns a marker that the Helm
 * generator turns into `{{ .Values.path }}`, so the chart and the rendered manifests come from one builder.
 */
export interface ValuesView {
  str(path: string): string;
  num(path: string): number;
  /** A number or boolean used inside a string (container args): substituted as text. */
  text(path: string): string;
}

/** Template markers: S = string scalar (quoted), N = number scalar (bare), E = embedded in a larger string. */
export const MARKER = /@@([SNE]):([A-Za-z0-9_.]+)@@/g;

export function concreteView(v: Values): ValuesView {
  const get = (path: string): unknown => {
    let cur: unknown = v;
    for (const k of path.split('.')) {
      if (!isObj(cur) || !Object.hasOwn(cur, k)) throw new Error(`builder asked for unknown value ${path}`);
      cur = cur[k];
    }
    return cur;
  };
  return {
    str: (p) => {
      const x = get(p);
      if (typeof x !== 'string') throw new Error(`value ${p} is not a string`);
      return x;
    },
    num: (p) => {
      const x = get(p);
      if (typeof x !== 'number') throw new Error(`value ${p} is not a number`);
      return x;
    },
    text: (p) => {
      const x = get(p);
      if (typeof x !== 'number' && typeof x !== 'boolean') throw new Error(`value ${p} is not a number or boolean`);
      return String(x);
    },
  };
}

/** Markers instead of values; the Helm generator turns them into `{{ .Values.path }}` expressions. */
export function templateView(v: Values): ValuesView {
  const concrete = concreteView(v);
  return {
    str: (p) => (concrete.str(p), `@@S:${p}@@`),
    num: (p) => (concrete.num(p), `@@N:${p}@@` as unknown as number),
    text: (p) => (concrete.text(p), `@@E:${p}@@`),
  };
}
