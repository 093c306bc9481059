import type { Page, PageContext } from '../app.js';
import { ApiError, type AuditRecord } from '../api.js';
import { badge, fmtTime, h, replace, table } from '../dom.js';
import { lineDiff } from '../diff.js';

type Kind = 'policies' | 'reference-values';
interface DocMeta {
  id: string;
  version: number;
  createdAt: string;
  actor: string;
}
interface Doc extends DocMeta {
  body: string;
}

const KINDS: { kind: Kind; title: string; audit: string; template: string }[] = [
  { kind: 'policies', title: 'Policies', audit: 'policy', template: 'referenceValues: default\nrules:\n  - id: min-svn\n    claim: svns.isvSvn\n    gte: 1\n    status: warning\n    vector: hardware\n    reason: enclave SVN below the fleet minimum\n' },
  { kind: 'reference-values', title: 'Reference values', audit: 'reference-values', template: 'tees: [sgx, tdx, snp]\n' },
];
const ID = /^[A-Za-z0-9._-]{1,128}$/;

export const policiesPage: Page = async (root, ctx) => {
  let kind: Kind = 'policies';
  const listSlot = h('div');
  const detail = h('div');
  const status = h('p', { role: 'status', class: 'small', id: 'pol-status' });
  const tabs = h('div', { class: 'tabs', role: 'group', 'aria-label': 'Document kind' });
  const drawTabs = () =>
    replace(tabs, KINDS.map((k) => h('button', { type: 'button', class: 'tab', 'aria-pressed': String(k.kind === kind), onclick: () => void show(k.kind) }, k.title)));

  const loadList = async () => {
    const docs = await ctx.api.get<DocMeta[]>(`/v1/admin/${kind}`);
    const k = KINDS.find((x) => x.kind === kind)!;
    replace(listSlot,
      table(k.title, ['Id', 'Version', 'Updated', 'By'], docs.map((d) => [
        h('button', { type: 'button', class: 'link', onclick: () => void open(d.id) }, d.id), String(d.version), fmtTime(d.createdAt), d.actor,
      ]), `No ${k.title.toLowerCase()} stored yet.`),
      ctx.session.role === 'admin' ? h('button', { type: 'button', class: 'primary', id: 'new-doc', onclick: () => edit(undefined) }, `New ${k.kind === 'policies' ? 'policy' : 'reference values'}`) : h('p', { class: 'muted small' }, 'Signed in with a viewer token: read-only.'));
  };

  const show = async (k: Kind) => {
    kind = k;
    drawTabs();
    replace(detail);
    status.textContent = '';
    await loadList();
  };

  const open = async (id: string) => {
    const doc = await ctx.api.get<Doc>(`/v1/admin/${kind}/${encodeURIComponent(id)}`);
    edit(doc);
    await history(doc);
  };

  const historySlot = h('div');
  const auditSlot = h('div');

  const history = async (doc: Doc) => {
    const versions = [];
    for (let v = doc.version; v >= Math.max(1, doc.version - 19); v--) versions.push(v);
    const docs = await Promise.all(versions.map((v) => ctx.api.get<Doc>(`/v1/admin/${kind}/${encodeURIComponent(doc.id)}?version=${v}`).catch(() => undefined)));
    replace(historySlot,
      h('h3', null, 'Version history'),
      h('ul', { class: 'history', id: 'history' }, docs.filter((d): d is Doc => !!d).map((d) =>
        h('li', null, h('details', null, h('summary', null, `v${d.version} · ${fmtTime(d.createdAt)} · ${d.actor}`), h('pre', { class: 'code', tabindex: 0, 'aria-label': `Version ${d.version}` }, d.body))))));
    const k = KINDS.find((x) => x.kind === kind)!;
    const recs = (await Promise.all([`${k.audit}.put`, `${k.audit}.delete`].map((a) => ctx.api.get<AuditRecord[]>(`/v1/dashboard/audit?action=${a}&limit=200`))))
      .flat().filter((r) => r.target === doc.id).sort((a, b) => b.id - a.id).slice(0, 50);
    replace(auditSlot, h('h3', null, 'Audit trail'),
      table('Audit trail', ['When', 'Who', 'Action', 'Result', 'Version'], recs.map((r) => [fmtTime(r.at), r.actor, r.action, badge(r.result), String(r.details.version ?? '–')]), 'No audit records.'));
  };

  const edit = (doc: Doc | undefined) => {
    const admin = ctx.session.role === 'admin';
    const k = KINDS.find((x) => x.kind === kind)!;
    const idInput = h('input', { id: 'doc-id', value: doc?.id ?? '', readonly: doc ? true : null, 'aria-describedby': 'doc-id-help', autocomplete: 'off' });
    const body = h('textarea', { id: 'doc-body', rows: 14, spellcheck: 'false', readonly: admin ? null : true, 'aria-describedby': 'doc-error' });
    body.value = doc?.body ?? k.template;
    const errEl = h('p', { id: 'doc-error', class: 'error', role: 'alert' });
    const review = h('div', { id: 'review' });
    const invalid = (msg: string, el: HTMLElement) => {
      errEl.textContent = msg;
      el.setAttribute('aria-invalid', 'true');
      el.focus();
    };
    const doReview = async () => {
      errEl.textContent = '';
      body.removeAttribute('aria-invalid');
      idInput.removeAttribute('aria-invalid');
      replace(review);
      const id = idInput.value.trim();
      if (!ID.test(id)) return invalid('The id must be 1 to 128 letters, digits, dots, dashes or underscores.', idInput);
      const v = await ctx.api.call<{ ok: boolean; error?: string }>('POST', `/v1/dashboard/validate/${kind}`, { body: body.value });
      if (!v.ok) return invalid(v.error ?? 'invalid document', body);
      let current = '';
      let version = 0;
      // Compare with the stored version when there is one (asked from the list: a new id is no 404 in the console).
      const exists = (await ctx.api.get<DocMeta[]>(`/v1/admin/${kind}`)).some((d) => d.id === id);
      if (exists) {
        const cur = await ctx.api.get<Doc>(`/v1/admin/${kind}/${encodeURIComponent(id)}`);
        current = cur.body;
        version = cur.version;
      }
      const d = lineDiff(current, body.value);
      const changed = d.some((l) => l.op !== ' ');
      replace(review,
        h('h3', { id: 'diff-title', tabindex: -1 }, version ? `Changes to ${id} v${version}` : `New: ${id}`),
        h('pre', { class: 'diff code', tabindex: 0, 'aria-label': 'Diff', id: 'diff' }, d.map((l) => h('span', { class: l.op === '+' ? 'add' : l.op === '-' ? 'del' : 'same' }, `${l.op} ${l.text}\n`))),
        changed
          ? h('div', { class: 'row' },
              h('button', { type: 'button', class: 'primary', id: 'save', onclick: () => void save(id) }, `Save as v${version + 1}`),
              h('button', { type: 'button', class: 'ghost', onclick: () => (replace(review), body.focus()) }, 'Keep editing'))
          : h('p', { class: 'muted' }, 'No changes.'));
      (review.querySelector('#diff-title') as HTMLElement).focus();
    };
    const save = async (id: string) => {
      try {
        const r = await ctx.api.call<{ id: string; version: number }>('PUT', `/v1/admin/${kind}/${encodeURIComponent(id)}`, body.value, 'text/plain');
        status.textContent = `Saved ${id} as version ${r.version}.`;
        await loadList();
        await open(id);
      } catch (e) {
        invalid(e instanceof ApiError ? `${e.title}: ${e.detail}` : (e as Error).message, body);
      }
    };
    replace(historySlot);
    replace(auditSlot);
    replace(detail,
      h('section', { class: 'card wide', 'aria-labelledby': 'doc-title' },
        h('h2', { id: 'doc-title' }, doc ? `${doc.id} (v${doc.version})` : `New ${kind === 'policies' ? 'policy' : 'reference values'}`),
        h('label', { for: 'doc-id' }, 'Id'), idInput,
        h('p', { id: 'doc-id-help', class: 'muted small' }, kind === 'policies' ? 'Policy "default" applies when an attester names none.' : 'A policy uses the reference values with its own id unless it names others.'),
        h('label', { for: 'doc-body' }, 'Document (YAML or JSON)'), body, errEl,
        admin ? h('button', { type: 'button', class: 'primary', id: 'review-btn', onclick: () => void doReview().catch((e: Error) => invalid(e.message, body)) }, 'Review changes') : null,
        review, historySlot, auditSlot));
    (doc ? body : idInput).focus();
  };

  replace(root, h('div', { class: 'page-head' }, h('h1', null, 'Policies and reference values')), tabs, status,
    h('section', { class: 'card wide', 'aria-label': 'Documents' }, listSlot), detail);
  await show('policies');
};

export type { PageContext };
