import type { Page } from '../app.js';
import { h, replace } from '../dom.js';

interface Cluster {
  available: boolean;
  note: string;
  panels: { panel: string; shows: string; feed: string }[];
}

export const clusterPage: Page = async (root, ctx) => {
  const c = await ctx.api.get<Cluster>('/v1/dashboard/cluster');
  replace(root,
    h('div', { class: 'page-head' }, h('h1', null, 'Cluster')),
    h('p', { class: 'notice' }, 'This service has no cluster data yet. Each panel below says what will feed it.'),
    h('div', { class: 'grid' },
      c.panels.map((p, i) => h('section', { class: 'card', 'aria-labelledby': `cl-${i}` },
        h('h2', { id: `cl-${i}` }, p.panel),
        h('p', null, h('span', { class: 'muted' }, 'Shows: '), p.shows),
        h('p', { class: 'small' }, h('span', { class: 'muted' }, 'Fed by: '), p.feed),
        h('p', { class: 'empty' }, 'No data')))));
};
