import type { Page } from '../app.js';
import { ApiError } from '../api.js';
import { badge, h, replace, table } from '../dom.js';
import { fileBytes, pastedBytes, toBase64 } from '../evidence.js';

interface Check {
  name: string;
  ok: boolean | null;
  code?: string;
  message: string;
}
interface VerifyResult {
  verified: boolean;
  tee: string | null;
  tcbStatus: string | null;
  advisories: { id: string; url: string | null }[];
  checks: Check[];
  claims: Record<string, unknown> | null;
  appraisal: { status: string; policy: string } | null;
}

const MAX_FILE = 700 * 1024;
const ATTACHMENTS: [string, string][] = [
  ['signature', 'TPM quote signature (tpm2_quote -s)'],
  ['ak', 'TPM attestation key public (PEM or TPM2B_PUBLIC)'],
  ['pcrs', 'TPM PCR values (tpm2_quote -o)'],
  ['eventlog', 'TCG event log'],
  ['quote', 'Azure vTPM quote (TPMS_ATTEST)'],
  ['tdQuote', 'Azure TDX: the TD quote'],
];
const TEES = ['auto', 'sgx', 'tdx', 'snp', 'tpm', 'az-snp-vtpm', 'az-tdx-vtpm', 'sample'];

function kv(obj: unknown): HTMLElement {
  const entries = Object.entries((obj ?? {}) as Record<string, unknown>);
  if (entries.length === 0) return h('p', { class: 'muted' }, 'none');
  return h('dl', { class: 'kv' }, entries.map(([k, v]) => [h('dt', null, k), h('dd', { class: 'mono' }, typeof v === 'object' ? JSON.stringify(v) : String(v))]));
}

function result(r: VerifyResult): HTMLElement {
  const c = r.claims as { tee?: string; debug?: boolean; reportData?: string; measurements?: object; svns?: object; platform?: object; warnings?: string[]; raw?: unknown } | null;
  const verdict = r.verified ? (r.appraisal?.status ?? 'verified') : 'rejected';
  return h('section', { class: 'card wide', 'aria-labelledby': 'v-res', id: 'verify-result' },
    h('h2', { id: 'v-res', tabindex: -1 }, 'Verdict: ', badge(verdict), r.tee ? h('span', { class: 'muted' }, ` ${r.tee} evidence`) : null),
    h('p', { id: 'tcb-status' }, h('strong', null, 'TCB status: '), r.tcbStatus ? badge(r.tcbStatus) : h('span', { class: 'muted' }, r.verified ? 'not applicable to this TEE' : 'unknown (not verified)')),
    r.advisories.length
      ? h('p', { id: 'advisories' }, h('strong', null, 'Advisories: '), r.advisories.map((a, i) => [i ? ', ' : '', a.url ? h('a', { href: a.url, rel: 'noopener noreferrer', target: '_blank' }, a.id) : a.id]))
      : null,
    h('h3', null, 'Checks'),
    table('Verification checks', ['Check', 'Result', 'Code', 'Explanation'], r.checks.map((x) => [x.name, badge(x.ok === true ? 'passed' : x.ok === false ? 'failed' : 'warning'), x.code ? h('code', null, x.code) : '–', x.message])),
    c
      ? [
          h('h3', null, 'Normalized claims'),
          h('dl', { class: 'kv' }, h('dt', null, 'tee'), h('dd', null, String(c.tee)), h('dt', null, 'debug'), h('dd', null, String(c.debug)), h('dt', null, 'report data'), h('dd', { class: 'mono' }, String(c.reportData))),
          h('h4', null, 'Measurements'), kv(c.measurements),
          h('h4', null, 'Security version numbers'), kv(c.svns),
          h('h4', null, 'Platform'), kv(c.platform),
          h('details', null, h('summary', null, 'TEE-specific fields (raw)'), h('pre', { class: 'code', tabindex: 0, 'aria-label': 'Raw claims' }, JSON.stringify(c.raw, null, 2))),
        ]
      : null);
}

export const verifyPage: Page = async (root, ctx) => {
  const out = h('div', { 'aria-live': 'polite' });
  const err = h('p', { class: 'error', role: 'alert', id: 'verify-error' });
  const file = h('input', { type: 'file', id: 'ev-file', 'aria-describedby': 'ev-help' });
  const paste = h('textarea', { id: 'ev-paste', rows: 5, spellcheck: 'false', 'aria-describedby': 'ev-help', placeholder: 'base64, hex or JSON' });
  const tee = h('select', { id: 'ev-tee' }, TEES.map((t) => h('option', { value: t }, t === 'auto' ? 'detect' : t)));
  const at = h('input', { type: 'text', id: 'ev-at', inputmode: 'numeric', autocomplete: 'off', placeholder: '2025-07-01T00:00:00Z', 'aria-describedby': 'ev-at-help' });
  const coll = h('input', { type: 'file', id: 'ev-collateral', multiple: true, 'aria-describedby': 'coll-help' });
  // Evidence that travels beside the main file, as coffer verify's --signature/--ak/--pcrs/--eventlog/--quote/--td-quote.
  const attachments = ATTACHMENTS.map(([name, label]) => ({ name, input: h('input', { type: 'file', id: `att-${name}` }), label }));
  const dropLabel = h('label', { for: 'ev-file' }, 'Drop an evidence file here, or choose one');
  const drop = h('div', { class: 'drop', id: 'drop' }, dropLabel, file);
  let dropped: File | undefined;
  drop.addEventListener('dragover', (e) => (e.preventDefault(), drop.classList.add('over')));
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    dropped = e.dataTransfer?.files[0];
    if (dropped) dropLabel.textContent = `Dropped: ${dropped.name} (${dropped.size} bytes); or choose another`;
  });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Verify');
  const form = h('form', { class: 'card wide', 'aria-labelledby': 'v-in' },
    h('h2', { id: 'v-in' }, 'Evidence'),
    h('p', { id: 'ev-help', class: 'muted small' }, 'An SGX or TDX quote, an SEV-SNP report, a TPM quote or Azure evidence JSON. Checked by the same verifier as coffer verify, with this service\'s trust anchors; nothing is stored.'),
    drop,
    h('label', { for: 'ev-paste' }, 'Or paste it'),
    paste,
    h('div', { class: 'row' },
      h('div', null, h('label', { for: 'ev-tee' }, 'TEE'), tee),
      h('div', null, h('label', { for: 'ev-at' }, 'Verify as of (optional)'), at, h('span', { id: 'ev-at-help', class: 'muted small' }, 'ISO 8601; UTC unless a zone is given. Default: now.'))),
    h('label', { for: 'ev-collateral' }, 'Collateral (optional)'),
    coll,
    h('p', { id: 'coll-help', class: 'muted small' }, 'The same files coffer verify --collateral reads (Intel PCS items, a QuoteCollateralV3 JSON, AMD VCEK and chain). Without it the service\'s cached collateral is used.'),
    h('details', { class: 'attachments' }, h('summary', null, 'Attachments (TPM quotes, Azure vTPM)'),
      attachments.map((a) => [h('label', { for: `att-${a.name}` }, a.label), a.input])),
    err,
    submit);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    replace(out); // the previous verdict goes at once: never mistaken for this one
    void (async () => {
      err.textContent = '';
      const f = dropped ?? file.files?.[0];
      let bytes: Uint8Array | undefined;
      if (f) {
        if (f.size > MAX_FILE) return void (err.textContent = `The file is ${f.size} bytes; the limit is ${MAX_FILE}.`);
        bytes = await fileBytes(f);
      } else if (paste.value.trim()) bytes = pastedBytes(paste.value);
      if (!bytes || bytes.length === 0) return void (err.textContent = 'Choose, drop or paste the evidence first.');
      const collateral = [];
      for (const c of Array.from(coll.files ?? []).slice(0, 8)) {
        if (c.size > MAX_FILE) return void (err.textContent = `Collateral ${c.name} is too large.`);
        collateral.push({ name: c.name.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100) || 'collateral', data: toBase64(await fileBytes(c)) });
      }
      let asOf: string | undefined;
      if (at.value.trim()) {
        const v = at.value.trim();
        const d = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(v) || !v.includes('T') ? v : `${v}Z`);
        if (!/^\d{4}-\d{2}-\d{2}/.test(v) || Number.isNaN(d.getTime())) {
          at.setAttribute('aria-invalid', 'true');
          return void (err.textContent = `'${v}' is not an ISO 8601 date.`);
        }
        at.removeAttribute('aria-invalid');
        asOf = d.toISOString();
      }
      const att: Record<string, string> = {};
      for (const a of attachments) {
        const af = a.input.files?.[0];
        if (!af) continue;
        if (af.size > MAX_FILE) return void (err.textContent = `${a.label}: the file is too large.`);
        att[a.name] = toBase64(await fileBytes(af));
      }
      submit.disabled = true;
      submit.textContent = 'Verifying…';
      try {
        const r = await ctx.api.call<VerifyResult>('POST', '/v1/dashboard/verify', {
          evidence: toBase64(bytes), tee: tee.value,
          ...(asOf ? { at: asOf } : {}),
          ...(collateral.length ? { collateral } : {}),
          ...(Object.keys(att).length ? { attachments: att } : {}),
        });
        replace(out, result(r));
        (out.querySelector('#v-res') as HTMLElement | null)?.focus();
      } catch (ex) {
        err.textContent = ex instanceof ApiError ? `${ex.title}: ${ex.detail}` : (ex as Error).message;
      } finally {
        submit.disabled = false;
        submit.textContent = 'Verify';
      }
    })();
  });
  replace(root, h('div', { class: 'page-head' }, h('h1', null, 'Verify evidence')), form, out);
};
