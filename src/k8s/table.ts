/**
 * Server-side Table rendering (meta.k8s.io/v1 Table), the form `kubectl get` asks for with
 * `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`. Columns follow kube's printers
 * (pkg/printers/internalversion/printers.go) for the kinds Coffer serves; other kinds get the default
 * Name + Created At table.
 */
type Obj = Record<string, any>;

export interface TableColumn {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}
export interface TableRow {
  cells: unknown[];
  object?: Obj;
}
export interface Table {
  kind: 'Table';
  apiVersion: 'meta.k8s.io/v1';
  metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  columnDefinitions: TableColumn[];
  rows: TableRow[];
}

export type IncludeObject = 'None' | 'Metadata' | 'Object';

const col = (name: string, description: string, priority = 0, type = 'string', format = ''): TableColumn => ({ name, type, format, description, priority });
const NAME = col('Name', 'Name must be unique within a namespace. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names', 0, 'string', 'name');
const AGE = col('Age', 'CreationTimestamp is a timestamp representing the server time when this object was created.');

/** apimachinery/pkg/util/duration.HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.floor(hours / 24) % 365;
    return dy === 0 ? `${Math.floor(hours / 24 / 365)}y` : `${Math.floor(hours / 24 / 365)}y${dy}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

function age(o: Obj, now: number): string {
  const ts = o?.metadata?.creationTimestamp;
  if (!ts) return '<unknown>';
  const t = Date.parse(ts);
  return Number.isNaN(t) ? '<unknown>' : humanDuration(now - t);
}

function podCells(p: Obj, now: number): unknown[] {
  const statuses: Obj[] = p.status?.containerStatuses ?? [];
  const total = (p.spec?.containers ?? []).length;
  let ready = 0;
  let restarts = 0;
  let reason: string = p.status?.reason || p.status?.phase || 'Unknown';
  for (const c of statuses) {
    if (c.ready) ready++;
    restarts += Number(c.restartCount ?? 0);
    if (c.state?.waiting?.reason) reason = c.state.waiting.reason;
    else if (c.state?.terminated?.reason) reason = c.state.terminated.reason;
  }
  if (p.metadata?.deletionTimestamp) reason = p.status?.reason === 'NodeLost' ? 'Unknown' : 'Terminating';
  const gates: Obj[] = p.spec?.readinessGates ?? [];
  return [
    p.metadata?.name ?? '',
    `${ready}/${total}`,
    reason,
    String(restarts),
    age(p, now),
    p.status?.podIP || '<none>',
    p.spec?.nodeName || '<none>',
    p.status?.nominatedNodeName || '<none>',
    gates.length === 0 ? '<none>' : `0/${gates.length}`,
  ];
}

function nodeCells(n: Obj, now: number): unknown[] {
  const conds: Obj[] = n.status?.conditions ?? [];
  const readyCond = conds.find((c) => c.type === 'Ready');
  const statuses = [readyCond?.status === 'True' ? 'Ready' : readyCond ? 'NotReady' : 'Unknown'];
  if (n.spec?.unschedulable) statuses.push('SchedulingDisabled');
  const roles = Object.keys(n.metadata?.labels ?? {})
    .filter((k) => k.startsWith('node-role.kubernetes.io/'))
    .map((k) => k.slice('node-role.kubernetes.io/'.length))
    .filter((r) => r !== '')
    .sort();
  const addr = (t: string) => (n.status?.addresses ?? []).find((a: Obj) => a.type === t)?.address || '<none>';
  const info = n.status?.nodeInfo ?? {};
  return [
    n.metadata?.name ?? '',
    statuses.join(','),
    roles.length ? roles.join(',') : '<none>',
    age(n, now),
    info.kubeletVersion ?? '',
    addr('InternalIP'),
    addr('ExternalIP'),
    info.osImage || '<unknown>',
    info.kernelVersion || '<unknown>',
    info.containerRuntimeVersion || '<unknown>',
  ];
}

export interface Printer {
  columns: TableColumn[];
  cells(o: Obj, now: number): unknown[];
}

const PRINTERS: Record<string, Printer> = {
  Pod: {
    columns: [
      NAME,
      col('Ready', 'The aggregate readiness state of this pod for accepting traffic.'),
      col('Status', 'The aggregate status of the containers in this pod.'),
      col('Restarts', 'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.'),
      AGE,
      col('IP', 'IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.', 1),
      col('Node', 'Name of the Node this pod is running on', 1),
      col('Nominated Node', 'nominatedNodeName is set when this pod preempts other pods on the node.', 1),
      col('Readiness Gates', 'If specified, all readiness gates will be evaluated for pod readiness.', 1),
    ],
    cells: podCells,
  },
  Node: {
    columns: [
      NAME,
      col('Status', 'The status of the node'),
      col('Roles', 'The roles of the node'),
      AGE,
      col('Version', 'Kubelet Version reported by the node.'),
      col('Internal-IP', 'List of addresses reachable to the node. Queried from cloud provider, if available.', 1),
      col('External-IP', 'List of addresses reachable to the node. Queried from cloud provider, if available.', 1),
      col('OS-Image', 'OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).', 1),
      col('Kernel-Version', "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", 1),
      col('Container-Runtime', 'Container runtime version reported by the node through runtime remote API (e.g. containerd://1.4.2).', 1),
    ],
    cells: nodeCells,
  },
  Namespace: {
    columns: [NAME, col('Status', 'The status of the namespace'), AGE],
    cells: (o, now) => [o.metadata?.name ?? '', o.status?.phase ?? 'Active', age(o, now)],
  },
  ConfigMap: {
    columns: [NAME, col('Data', 'Data contains the configuration data.', 0, 'integer'), AGE],
    cells: (o, now) => [o.metadata?.name ?? '', Object.keys(o.data ?? {}).length + Object.keys(o.binaryData ?? {}).length, age(o, now)],
  },
  Lease: {
    columns: [NAME, col('Holder', 'The holder of the lease'), AGE],
    cells: (o, now) => [o.metadata?.name ?? '', o.spec?.holderIdentity ?? '', age(o, now)],
  },
  Secret: {
    columns: [NAME, col('Type', 'The type of the secret'), col('Data', 'The number of entries in the secret', 0, 'integer'), AGE],
    cells: (o, now) => [o.metadata?.name ?? '', o.type ?? '', Object.keys(o.data ?? {}).length, age(o, now)],
  },
  RuntimeClass: {
    columns: [NAME, col('Handler', 'Handler specifies the underlying runtime and configuration that the CRI implementation will use to handle pods of this class.'), AGE],
    cells: (o, now) => [o.metadata?.name ?? '', o.handler ?? '', age(o, now)],
  },
  MutatingWebhookConfiguration: {
    columns: [NAME, col('Webhooks', 'Webhooks indicates the number of webhooks in the configuration', 0, 'integer'), AGE],
    cells: (o, now) => [o.metadata?.name ?? '', (o.webhooks ?? []).length, age(o, now)],
  },
  ValidatingWebhookConfiguration: {
    columns: [NAME, col('Webhooks', 'Webhooks indicates the number of webhooks in the configuration', 0, 'integer'), AGE],
    cells: (o, now) => [o.metadata?.name ?? '', (o.webhooks ?? []).length, age(o, now)],
  },
};

/** A CRD's additionalPrinterColumns (simple `.a.b` JSONPaths), as the apiextensions table convertor renders them. */
export interface CrdColumn {
  name: string;
  type: string;
  jsonPath: string;
  description?: string;
  priority?: number;
  format?: string;
}
export function crdPrinter(columns: CrdColumn[]): Printer {
  const read = (o: Obj, path: string): unknown => path.split('.').filter(Boolean).reduce<any>((cur, k) => (cur === null || typeof cur !== 'object' ? undefined : cur[k]), o);
  return {
    columns: [NAME, ...columns.map((c) => col(c.name, c.description ?? '', c.priority ?? 0, c.type, c.format ?? ''))],
    cells: (o, now) => [
      o.metadata?.name ?? '',
      ...columns.map((c) => {
        const v = read(o, c.jsonPath);
        if (v === undefined || v === null) return null;
        if (c.type === 'date' && typeof v === 'string') {
          const t = Date.parse(v);
          return Number.isNaN(t) ? v : humanDuration(now - t);
        }
        return typeof v === 'object' ? JSON.stringify(v) : v;
      }),
    ],
  };
}

const DEFAULT_PRINTER: Printer = {
  columns: [NAME, col('Created At', 'CreationTimestamp is a timestamp representing the server time when this object was created.', 0, 'date')],
  cells: (o) => [o.metadata?.name ?? '', o.metadata?.creationTimestamp ?? ''],
};

function rowObject(o: Obj, include: IncludeObject): Obj | undefined {
  if (include === 'None') return undefined;
  if (include === 'Object') return o;
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata ?? {} };
}

export function toTable(kind: string, items: Obj[], meta: Table['metadata'], include: IncludeObject = 'Metadata', now = Date.now(), printer?: Printer): Table {
  const p = printer ?? PRINTERS[kind] ?? DEFAULT_PRINTER;
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: meta,
    columnDefinitions: p.columns,
    rows: items.map((o) => {
      const row: TableRow = { cells: p.cells(o, now) };
      const ro = rowObject(o, include);
      if (ro) row.object = ro;
      return row;
    }),
  };
}

/** Media types a client accepts, in order, with their parameters (g, v, as ...). */
export interface MediaType {
  type: string;
  params: Record<string, string>;
}
export function parseAccept(accept: string | undefined): MediaType[] {
  if (!accept) return [{ type: '*/*', params: {} }];
  return accept.split(',').map((part) => {
    const [type, ...ps] = part.split(';').map((s) => s.trim());
    const params: Record<string, string> = {};
    for (const p of ps) {
      const i = p.indexOf('=');
      if (i > 0) params[p.slice(0, i).trim()] = p.slice(i + 1).trim();
    }
    return { type: type.toLowerCase(), params };
  });
}

/** Whether the client wants a meta.k8s.io Table (and accepts v1 of it) before anything else it can take. */
export function wantsTable(accept: string | undefined): boolean {
  for (const m of parseAccept(accept)) {
    if (m.type === 'application/json' && m.params.as === 'Table' && m.params.g === 'meta.k8s.io' && m.params.v === 'v1') return true;
    if (m.type === 'application/json' && !m.params.as) return false;
    if (m.type === '*/*' || m.type === 'application/*') return false;
  }
  return false;
}

/** Whether plain JSON is acceptable at all (so protobuf-only clients get 406). */
export function acceptsJson(accept: string | undefined): boolean {
  return parseAccept(accept).some((m) => m.type === 'application/json' || m.type === '*/*' || m.type === 'application/*');
}
