import type { Page } from '../app.js';
import type { AuditRecord } from '../api.js';
import { badge, fmtAge, fmtTime, h, replace, s, table } from '../dom.js';

interface Overview {
  window: { from: string; to: string; bucketMs: number; buckets: number; truncated: boolean };
  series: { start: string; counts: Record<string, number> }[];
  byTee: Record<string, Record<string, number>>;
  tcb: { statuses: Record<string, number>; advisories: { id: string; url: string | null; count: number; lastSeen: string }[] };
  kbs: { released: number; refused: number; recent: AuditRecord[] };
  collateral: { key: string; source: string; fetchedAt: string; ageSeconds: number; stale: string | null }[];
  nodes: { available: false; note: string } | { available: true; at: string; total: number; trusted: number; untrusted: number; expired: number; unknown: number };
}

const RESULTS = ['affirming', 'warning', 'contraindicated', 'rejected'] as const;

/** Stacked bars per hour, drawn as SVG; the same numbers are in the table beside it for screen readers. */
function chart(o: Overview, width: number): SVGElement {
  // Drawn at the card's pixel width, so the text stays at its real size on a phone and on a wide screen.
  const W = Math.max(280, Math.round(width));
  const H = W < 500 ? 180 : 220;
  const pad = { l: 34, r: 8, t: 10, b: 26 };
  const max = Math.max(1, ...o.series.map((b) => RESULTS.reduce((n, r) => n + (b.counts[r] ?? 0), 0)));
  const step = max <= 5 ? 1 : Math.ceil(max / 4);
  const top = Math.ceil(max / step) * step;
  const bw = (W - pad.l - pad.r) / o.series.length;
  const y = (v: number) => H - pad.b - (v / top) * (H - pad.t - pad.b);
  const total = o.series.reduce((n, b) => n + RESULTS.reduce((m, r) => m + (b.counts[r] ?? 0), 0), 0);
  const grid = [];
  for (let v = 0; v <= top; v += step) {
    grid.push(s('line', { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), class: 'grid' }), s('text', { x: pad.l - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, String(v)));
  }
  const bars = o.series.map((b, i) => {
    let acc = 0;
    return RESULTS.filter((r) => b.counts[r]).map((r) => {
      const y0 = y(acc);
      acc += b.counts[r];
      return s('rect', { x: pad.l + i * bw + 2, y: y(acc), width: Math.max(1, bw - 4), height: Math.max(0, y0 - y(acc)), class: `bar r-${r}` },
        s('title', null, `${new Date(b.start).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}: ${b.counts[r]} ${r}`));
    });
  });
  const every = W < 500 ? 6 : 3;
  const labels = o.series.map((b, i) => (i % every === 0 ? s('text', { x: pad.l + i * bw + bw / 2, y: H - 8, class: 'axis', 'text-anchor': 'middle' }, new Date(b.start).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })) : null));
  return s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': `Attestations in the last ${o.series.length} hours: ${total} in all; ${RESULTS.map((r) => `${o.series.reduce((n, b) => n + (b.counts[r] ?? 0), 0)} ${r}`).join(', ')}` }, grid, bars, labels);
}

function legend(): HTMLElement {
  return h('ul', { class: 'legend' }, RESULTS.map((r) => h('li', null, h('span', { class: `swatch r-${r}`, 'aria-hidden': 'true' }), r)));
}

function card(title: string, id: string, ...body: (Node | string | null)[]): HTMLElement {
  return h('section', { class: id === 'h-att' ? 'card span-all' : 'card', 'aria-labelledby': id }, h('h2', { id }, title), ...body);
}

function render(root: HTMLElement, o: Overview, at: Date): void {
  const chartWidth = (root.clientWidth || 760) - 36;
  const tees = Object.entries(o.byTee);
  const statuses = Object.entries(o.tcb.statuses).sort((a, b) => b[1] - a[1]);
  const stale = o.collateral.filter((c) => c.stale);
  replace(root,
    h('div', { class: 'page-head' }, h('h1', null, 'Overview'), h('p', { class: 'muted small' }, `Last 24 hours · updated ${at.toLocaleTimeString()}`)),
    h('div', { class: 'grid' },
      card('Attestations over time', 'h-att', chart(o, chartWidth), legend(), o.window.truncated ? h('p', { class: 'muted small' }, 'Only the newest 10 000 audit records were counted.') : null),
      card('By TEE and result', 'h-tee',
        table('Attestations by TEE', ['TEE', 'Total', 'Results'], tees.map(([t, c]) => [
          h('strong', null, t),
          String(RESULTS.reduce((n, r) => n + (c[r] ?? 0), 0)),
          h('span', { class: 'tee-results' }, RESULTS.filter((r) => c[r]).map((r) => badge(`${c[r]} ${r}`, r))),
        ]), 'No attestations in the last 24 hours.')),
      card('Fleet TCB status', 'h-tcb',
        statuses.length ? h('ul', { class: 'chips' }, statuses.map(([st, n]) => h('li', null, badge(st), ` ${n}`))) : h('p', { class: 'muted' }, 'No TCB status reported (no SGX, TDX or SNP attestation in the window).'),
        h('h3', null, 'Advisories'),
        o.tcb.advisories.length
          ? h('ul', { class: 'plain' }, o.tcb.advisories.map((a) => h('li', null, a.url ? h('a', { href: a.url, rel: 'noopener noreferrer', target: '_blank' }, a.id) : a.id, h('span', { class: 'muted' }, ` · ${a.count} attestation${a.count === 1 ? '' : 's'}, last ${fmtTime(a.lastSeen)}`))))
          : h('p', { class: 'muted' }, 'No advisories apply to the attested platforms.')),
      card('Collateral', 'h-col',
        h('p', null, stale.length ? h('strong', { class: 'warn-text' }, `${stale.length} stale`) : 'Nothing stale', h('span', { class: 'muted' }, ` · ${o.collateral.length} cached item${o.collateral.length === 1 ? '' : 's'}`)),
        table('Cached collateral', ['Item', 'Age', 'State'], o.collateral.map((c) => [h('span', { class: 'mono' }, c.key), fmtAge(c.ageSeconds), c.stale ? h('span', { class: 'warn-text' }, `stale: ${c.stale}`) : 'current']), 'No collateral cached yet (fetched from Intel PCS / AMD KDS on first use).')),
      card('Key broker', 'h-kbs',
        h('div', { class: 'stats' },
          h('div', null, h('span', { class: 'big' }, String(o.kbs.released)), h('span', { class: 'muted' }, 'released')),
          h('div', null, h('span', { class: 'big' }, String(o.kbs.refused)), h('span', { class: 'muted' }, 'refused'))),
        table('Recent key-broker decisions', ['When', 'Resource', 'Result'], o.kbs.recent.map((r) => [fmtTime(r.at), h('span', { class: 'mono' }, r.target), badge(r.result)]), 'No resource requests in the last 24 hours.'),
        h('p', null, h('a', { href: '#/kbs' }, 'All key-broker decisions'))),
      card('Nodes', 'h-nodes',
        h('div', { class: 'stats' },
          h('div', null, h('span', { class: 'big' }, o.nodes.available ? String(o.nodes.trusted) : '–'), h('span', { class: 'muted' }, 'trusted')),
          // Past its expiry counts as untrusted: this panel never shows more trust than the tokens carry.
          h('div', null, h('span', { class: 'big' }, o.nodes.available ? String(o.nodes.untrusted + o.nodes.expired) : '–'), h('span', { class: 'muted' }, 'untrusted')),
          o.nodes.available ? h('div', null, h('span', { class: 'big' }, String(o.nodes.unknown)), h('span', { class: 'muted' }, 'not attested')) : null),
        o.nodes.available
          ? h('p', null, h('a', { href: '#/cluster' }, `All ${o.nodes.total} node${o.nodes.total === 1 ? '' : 's'}`))
          : h('p', { class: 'muted small' }, o.nodes.note))));
}

export const overviewPage: Page = async (root, ctx) => {
  let last: { o: Overview; at: Date } | undefined;
  const load = async () => {
    last = { o: await ctx.api.get<Overview>('/v1/dashboard/overview'), at: new Date() };
    render(root, last.o, last.at);
  };
  await load();
  // Redrawn (from the data already here) when the width changes: the chart is drawn in pixels.
  let width = root.clientWidth;
  const onResize = () => {
    if (last && Math.abs(root.clientWidth - width) > 20) (width = root.clientWidth, render(root, last.o, last.at));
  };
  window.addEventListener('resize', onResize);
  // Live: each attestation or key-broker decision (pushed over SSE) refreshes the counts, at most twice a second.
  let pending: ReturnType<typeof setTimeout> | undefined;
  const off = ctx.onAudit((r) => {
    if (!/^(attest|kbs\.attest|resource\.get)$/.test(r.action) || pending) return;
    pending = setTimeout(() => {
      pending = undefined;
      void load().catch(() => {});
    }, 300);
  });
  return () => {
    window.removeEventListener('resize', onResize);
    off();
    if (pending) clearTimeout(pending);
  };
};
