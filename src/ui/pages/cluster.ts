import type { Page } from '../app.js';
import { badge, fmtTime, h, replace, table } from '../dom.js';
import type { ClusterView as View, NodeStatus as NodeRow } from '../../k8s/cluster-types.js';

interface Feeds {
  available: false;
  note: string;
  error?: string;
  source?: string;
  panels: { panel: string; shows: string; feed: string }[];
}

const TRUST_LABEL: Record<NodeRow['trust'], string> = { trusted: 'trusted', untrusted: 'untrusted', expired: 'expired', unknown: 'not attested' };
const TRUST_KIND: Record<NodeRow['trust'], string> = { trusted: 'ok', untrusted: 'denied', expired: 'warning', unknown: 'neutral' };
const ISOLATION_ORDER = ['enclave', 'confidential-vm', 'sandbox', 'none', 'other', 'unmanaged'];
const ISOLATION_LABEL: Record<string, string> = { unmanaged: 'not placed by Coffer', other: 'unrecognised decision' };

function card(title: string, id: string, ...body: (Node | string | null)[]): HTMLElement {
  return h('section', { class: id === 'cl-nodes' ? 'card span-all' : 'card', 'aria-labelledby': id }, h('h2', { id }, title), ...body);
}

function stat(n: number, label: string): HTMLElement {
  return h('div', null, h('span', { class: 'big' }, String(n)), h('span', { class: 'muted' }, label));
}

function feeds(root: HTMLElement, c: Feeds): void {
  replace(root,
    h('div', { class: 'page-head' }, h('h1', null, 'Cluster')),
    c.error
      ? h('p', { class: 'notice', role: 'status' }, h('strong', { class: 'warn-text' }, 'The cluster could not be read. '), c.error)
      : h('p', { class: 'notice' }, 'This service has no cluster data: start it with --kubeconfig FILE. Each panel below says what feeds it.'),
    h('div', { class: 'grid' },
      c.panels.map((p, i) => h('section', { class: 'card', 'aria-labelledby': `cl-${i}` },
        h('h2', { id: `cl-${i}` }, p.panel),
        h('p', null, h('span', { class: 'muted' }, 'Shows: '), p.shows),
        h('p', { class: 'small' }, h('span', { class: 'muted' }, 'Fed by: '), p.feed),
        h('p', { class: 'empty' }, 'No data')))));
}

function view(root: HTMLElement, c: View): void {
  const t = c.truncated;
  const cut = [t.nodes && 'nodes', t.pods && 'pods', t.runtimeClasses && 'runtime classes'].filter(Boolean);
  const iso = Object.keys(c.pods.byIsolation).sort((a, b) => ISOLATION_ORDER.indexOf(a) - ISOLATION_ORDER.indexOf(b) || a.localeCompare(b));
  replace(root,
    h('div', { class: 'page-head' }, h('h1', null, 'Cluster')),
    h('p', { class: 'muted small' }, `Read from ${c.source} at ${fmtTime(c.at)} (read-only; refreshed at most every few seconds).`),
    cut.length ? h('p', { class: 'notice', role: 'status' }, `Partial view: the cluster has more ${cut.join(', ')} than this page reads; the counts cover the first page of each list.`) : null,
    h('div', { class: 'grid' },
      card('Trust', 'cl-trust',
        h('div', { class: 'stats' }, stat(c.counts.trusted, 'trusted'), stat(c.counts.untrusted + c.counts.expired, 'untrusted'), stat(c.counts.unknown, 'not attested')),
        c.counts.expired ? h('p', { class: 'small warn-text' }, `${c.counts.expired} of the untrusted nodes ${c.counts.expired === 1 ? 'is' : 'are'} labelled trusted but past the attestation's expiry.`) : null,
        h('p', { class: 'muted small' }, `${c.counts.total} node${c.counts.total === 1 ? '' : 's'} in all. Trust comes from the node-trust controller's coffer.dev/attested label and its expiry.`)),
      card('Pods per isolation level', 'cl-pods',
        table('Running pods by isolation level', ['Isolation', 'Pods'], iso.map((k) => [ISOLATION_LABEL[k] ?? k, String(c.pods.byIsolation[k])]), 'No running pods.'),
        h('p', { class: 'muted small' }, `${c.pods.total} running pod${c.pods.total === 1 ? '' : 's'}, by the admission webhook's decision.`)),
      card('Edge nodes', 'cl-edge',
        h('div', { class: 'stats' }, stat(c.edge.online, 'online'), stat(c.edge.autonomous, 'autonomous')),
        h('p', { class: 'muted small' }, c.edge.nodes ? `${c.edge.nodes} edge node${c.edge.nodes === 1 ? '' : 's'}; autonomous ones serve from their cache while the hub is unreachable.` : 'No node has edge autonomy enabled.')),
      card('Runtime classes', 'cl-rc',
        table('RuntimeClasses and the nodes they run on', ['Name', 'Handler', 'Nodes'], c.runtimeClasses.map((r) => [h('span', { class: 'mono' }, r.name), h('span', { class: 'mono' }, r.handler), String(r.nodes)]), 'No RuntimeClasses.')),
      card('Nodes', 'cl-nodes',
        table('Every node with its trust record', ['Node', 'TEE', 'Trust', 'TCB', 'Attested', 'Expires', 'Runtime classes', 'Edge', 'Confidential pods'],
          c.nodes.map((n) => [
            h('span', { class: 'mono' }, n.name),
            n.tee ?? '–',
            h('span', null, badge(TRUST_LABEL[n.trust], TRUST_KIND[n.trust]), n.reason && n.trust !== 'trusted' ? h('span', { class: 'small muted' }, ` ${n.reason}`) : null),
            h('span', null, n.tcbStatus ? badge(n.tcbStatus) : '–', n.advisories.length ? h('span', { class: 'small muted' }, ` ${n.advisories.join(', ')}`) : null),
            n.lastAttestation ? fmtTime(n.lastAttestation) : '–',
            n.expiresAt ? fmtTime(n.expiresAt) : '–',
            n.runtimeClasses.length ? h('span', { class: 'mono' }, n.runtimeClasses.join(', ')) : '–',
            n.autonomy === 'off' ? '–' : n.autonomy === 'connected' ? 'online' : 'autonomous',
            String(n.confidentialPods),
          ]),
          'No nodes.'),
        t.nodesShown ? h('p', { class: 'muted small' }, `Showing the first ${c.nodes.length} of ${c.counts.total} nodes, untrusted first.`) : null)));
}

export const clusterPage: Page = async (root, ctx) => {
  const c = await ctx.api.get<View | Feeds>('/v1/dashboard/cluster');
  if (c.available) view(root, c);
  else feeds(root, c);
};
