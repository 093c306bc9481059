import { Api, ApiError, type AuditRecord, type Session } from './api.js';
import { h, replace } from './dom.js';
import { overviewPage } from './pages/overview.js';
import { verifyPage } from './pages/verify.js';
import { policiesPage } from './pages/policies.js';
import { kbsPage } from './pages/kbs.js';
import { clusterPage } from './pages/cluster.js';

export interface PageContext {
  api: Api;
  session: Session;
  /** Live audit records (server-sent events); returns an unsubscribe function. */
  onAudit(fn: (r: AuditRecord) => void): () => void;
  live(): boolean;
}

export type Page = (root: HTMLElement, ctx: PageContext) => Promise<(() => void) | void>;

const PAGES: { path: string; title: string; page: Page }[] = [
  { path: 'overview', title: 'Overview', page: overviewPage },
  { path: 'verify', title: 'Verify', page: verifyPage },
  { path: 'policies', title: 'Policies', page: policiesPage },
  { path: 'kbs', title: 'Key broker', page: kbsPage },
  { path: 'cluster', title: 'Cluster', page: clusterPage },
];

// ---- theme: follows prefers-color-scheme until the toggle picks one (kept in localStorage) ----
function currentTheme(): 'light' | 'dark' {
  const t = document.documentElement.dataset.theme;
  if (t === 'light' || t === 'dark') return t;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}
function initTheme(): void {
  const saved = localStorage.getItem('coffer-theme');
  if (saved === 'light' || saved === 'dark') document.documentElement.dataset.theme = saved;
}
function themeButton(): HTMLButtonElement {
  const b = h('button', { type: 'button', class: 'ghost', id: 'theme' });
  const label = () => {
    const dark = currentTheme() === 'dark';
    b.textContent = dark ? 'Light mode' : 'Dark mode';
    b.setAttribute('aria-pressed', String(dark));
  };
  // The system scheme can change while the page is open: the label follows it.
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', label);
  b.addEventListener('click', () => {
    const next = currentTheme() === 'dark' ? 'light' : 'dark';
    document.documentElement.dataset.theme = next;
    localStorage.setItem('coffer-theme', next);
    label();
  });
  label();
  return b;
}

class App {
  private readonly api = new Api();
  private session: Session | undefined;
  private events: EventSource | undefined;
  private readonly listeners = new Set<(r: AuditRecord) => void>();
  private connected = false;
  private cleanup: (() => void) | void = undefined;
  private readonly root = document.getElementById('app')!;

  async start(): Promise<void> {
    initTheme();
    this.api.onUnauthenticated = () => this.signedOut('Your session ended: sign in again.');
    try {
      this.session = (await this.api.get<Session | undefined>('/ui/session')) ?? undefined;
    } catch {
      this.session = undefined;
    }
    window.addEventListener('hashchange', () => void this.route());
    await this.route();
  }

  private signedOut(message?: string): void {
    this.session = undefined;
    this.events?.close();
    this.events = undefined;
    this.connected = false;
    void this.route(message);
  }

  private connect(): void {
    if (this.events) return;
    const es = new EventSource('/v1/dashboard/events');
    es.addEventListener('open', () => this.setLive(true));
    es.addEventListener('error', () => this.setLive(false));
    es.addEventListener('audit', (e) => {
      const r = JSON.parse((e as MessageEvent<string>).data) as AuditRecord;
      for (const fn of this.listeners) fn(r);
    });
    this.events = es;
  }

  private setLive(on: boolean): void {
    this.connected = on;
    const el = document.getElementById('live');
    if (el) {
      el.textContent = on ? 'Live' : 'Reconnecting…';
      el.className = on ? 'live on' : 'live';
    }
  }

  private async route(message?: string): Promise<void> {
    if (typeof this.cleanup === 'function') this.cleanup();
    this.cleanup = undefined;
    if (!this.session) return this.login(message);
    this.api.csrf = this.session.csrf;
    this.connect();
    const name = location.hash.replace(/^#\/?/, '').split('/')[0] || 'overview';
    const p = PAGES.find((x) => x.path === name) ?? PAGES[0];
    const main = h('main', { id: 'main', tabindex: -1 });
    replace(this.root, this.header(p.path), main);
    document.title = `${p.title} · Coffer`;
    const ctx: PageContext = {
      api: this.api,
      session: this.session,
      onAudit: (fn) => (this.listeners.add(fn), () => this.listeners.delete(fn)),
      live: () => this.connected,
    };
    try {
      this.cleanup = await p.page(main, ctx);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return;
      main.append(h('p', { class: 'error', role: 'alert' }, `Could not load this page: ${(e as Error).message}`));
    }
    if (message === 'focus') main.focus();
  }

  private header(active: string): HTMLElement {
    const s = this.session!;
    return h('header', { class: 'top' },
      h('div', { class: 'brand' }, h('span', { class: 'logo', 'aria-hidden': 'true' }, '◆'), 'Coffer'),
      h('nav', { 'aria-label': 'Dashboard' },
        h('ul', null, PAGES.map((p) => h('li', null, h('a', { href: `#/${p.path}`, 'aria-current': p.path === active ? 'page' : null }, p.title))))),
      h('div', { class: 'who' },
        h('span', { id: 'live', class: this.connected ? 'live on' : 'live', role: 'status' }, this.connected ? 'Live' : 'Connecting…'),
        h('span', { class: 'muted' }, s.subject === s.role ? '' : `${s.subject} · `, s.role === 'admin' ? 'admin' : 'viewer (read-only)'),
        themeButton(),
        h('button', { type: 'button', class: 'ghost', onclick: () => void this.logout() }, 'Sign out')));
  }

  private async logout(): Promise<void> {
    try {
      await this.api.call('DELETE', '/ui/session');
    } finally {
      this.signedOut('Signed out.');
    }
  }

  private login(message?: string): void {
    const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, 'aria-describedby': 'token-help' });
    const err = h('p', { id: 'login-error', class: 'error', role: 'alert' });
    const form = h('form', { class: 'card login', novalidate: true },
      h('h1', null, 'Sign in to Coffer'),
      message && message !== 'focus' ? h('p', { class: 'muted', role: 'status' }, message) : null,
      h('label', { for: 'token' }, 'Admin or viewer token'),
      input,
      h('p', { id: 'token-help', class: 'muted small' }, 'Paste the output of ', h('code', null, 'coffer admin-token'), ' (read and write) or ', h('code', null, 'coffer admin-token --viewer'), ' (read-only). The token is exchanged for a session cookie and not kept by the page.'),
      err,
      h('button', { type: 'submit', class: 'primary' }, 'Sign in'));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      err.textContent = '';
      const token = input.value.trim();
      if (!token) {
        err.textContent = 'Paste a token first.';
        input.setAttribute('aria-invalid', 'true');
        return input.focus();
      }
      void this.api.call<Session>('POST', '/ui/session', { token }).then(
        (s) => {
          input.value = '';
          this.session = s;
          void this.route('focus');
        },
        (ex: Error) => {
          input.setAttribute('aria-invalid', 'true');
          err.textContent = ex instanceof ApiError ? `${ex.title}: ${ex.detail}` : ex.message;
          input.focus();
        },
      );
    });
    document.title = 'Sign in · Coffer';
    replace(this.root, h('header', { class: 'top' }, h('div', { class: 'brand' }, h('span', { class: 'logo', 'aria-hidden': 'true' }, '◆'), 'Coffer'), h('div', { class: 'who' }, themeButton())), h('main', { id: 'main', tabindex: -1 }, form));
    input.focus();
  }
}

void new App().start();
