import type { Page } from '../app.js';
import type { AuditRecord } from '../api.js';
import { badge, fmtTime, h, replace, table } from '../dom.js';

interface Kbs {
  resources: string[];
  policy: { id: string; version: number; actor: string; createdAt: string; body: string } | null;
  decisions: AuditRecord[];
}

const row = (r: AuditRecord) => [
  fmtTime(r.at),
  h('span', { class: 'mono' }, r.target),
  badge(r.result),
  h('span', { class: 'mono' }, String(r.details.tokenId ?? '–')),
  r.details.rule === null || r.details.rule === undefined ? h('span', { class: 'muted' }, 'none') : `rule ${String(r.details.rule)}`,
  String(r.details.reason ?? ''),
  r.actor,
];

export const kbsPage: Page = async (root, ctx) => {
  const k = await ctx.api.get<Kbs>('/v1/dashboard/kbs?limit=100');
  const decisions = k.decisions;
  const slot = h('div');
  const draw = () =>
    replace(slot, table('Key-broker decisions', ['When', 'Resource', 'Result', 'Token id', 'Rule', 'Reason', 'Caller'], decisions.map(row), 'No resource requests yet.'));
  draw();
  replace(root,
    h('div', { class: 'page-head' }, h('h1', null, 'Key broker')),
    h('div', { class: 'grid' },
      h('section', { class: 'card', 'aria-labelledby': 'k-res' },
        h('h2', { id: 'k-res' }, 'Resources'),
        h('p', { class: 'muted small' }, 'Paths only: values are sealed in the store and never shown.'),
        k.resources.length ? h('ul', { class: 'plain mono' }, k.resources.map((p) => h('li', null, p))) : h('p', { class: 'muted' }, 'No resources stored.')),
      h('section', { class: 'card', 'aria-labelledby': 'k-pol' },
        h('h2', { id: 'k-pol' }, 'Resource policy'),
        k.policy
          ? [h('p', { class: 'muted small' }, `version ${k.policy.version} · ${k.policy.actor} · ${fmtTime(k.policy.createdAt)}`), h('pre', { class: 'code', tabindex: 0, 'aria-label': 'Resource policy text' }, k.policy.body)]
          : h('p', null, 'No resource policy is set: every request is refused (default deny).'))),
    h('section', { class: 'card wide', 'aria-labelledby': 'k-dec' },
      h('h2', { id: 'k-dec' }, 'Releases and refusals'),
      h('p', { class: 'muted small' }, 'Newest first; new decisions appear as they happen.'),
      slot));
  return ctx.onAudit((r) => {
    if (r.action !== 'resource.get') return;
    decisions.unshift(r);
    decisions.length = Math.min(decisions.length, 200);
    draw();
  });
};
