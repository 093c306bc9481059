import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Store } from '../../store/types.js';
import type { AdminAuth, AdminIdentity } from '../admin-auth.js';
import { HttpProblem } from '../problem.js';

export const UI_SESSION_COOKIE = 'coffer_ui';
export const CSRF_HEADER = 'x-coffer-csrf';
/** A dashboard session never outlives the token it was opened with, and lasts at most this long. */
const MAX_SESSION_MS = 8 * 3_600_000;

interface UiSession extends Record<string, unknown> {
  kind: 'dashboard';
  subject: string;
  role: AdminIdentity['role'];
  csrf: string;
  expiresAt: number;
}

export interface SessionView {
  subject: string;
  role: AdminIdentity['role'];
  csrf: string;
  expiresAt: string;
}

const unauthenticated = () =>
  new HttpProblem(401, 'admin-unauthenticated', 'Authentication required', 'sign in with an admin or viewer token (dashboard session cookie) or send Authorization: Bearer <admin token>');

function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Dashboard sessions: a pasted admin or viewer token is checked once and exchanged for a random session id in an
 * HttpOnly, SameSite=Strict cookie; the store keeps only the id's SHA-256 (a store dump opens no session). Every
 * write through a session must carry the session's synchronizer CSRF token in `x-coffer-csrf`.
 */
export class DashboardSessions {
  constructor(private readonly o: { store: Store; admin: AdminAuth; clock: () => number; secureCookies: boolean }) {}

  private key(id: string): string {
    return `ui:${createHash('sha256').update(id).digest('hex')}`;
  }

  async login(token: string, reply: FastifyReply): Promise<SessionView> {
    const now = this.o.clock();
    const who = await this.o.admin.verify(`Bearer ${token}`, now);
    const exp = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8') || '{}').exp as number;
    const expiresAt = Math.min(now + MAX_SESSION_MS, exp * 1000);
    const id = randomBytes(32).toString('base64url');
    const s: UiSession = { kind: 'dashboard', subject: who.subject, role: who.role, csrf: randomBytes(32).toString('base64url'), expiresAt };
    await this.o.store.putSession(this.key(id), s, expiresAt);
    reply.header('set-cookie', this.cookie(id, Math.max(0, Math.floor((expiresAt - now) / 1000))));
    return view(s);
  }

  async logout(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const id = readCookie(req.headers.cookie, UI_SESSION_COOKIE);
    if (id) await this.o.store.deleteSession(this.key(id));
    reply.header('set-cookie', this.cookie('', 0));
  }

  private cookie(value: string, maxAge: number): string {
    return `${UI_SESSION_COOKIE}=${value}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${this.o.secureCookies ? '; Secure' : ''}`;
  }

  /** The session behind the request's cookie, or undefined. */
  async current(req: FastifyRequest): Promise<SessionView | undefined> {
    const id = readCookie(req.headers.cookie, UI_SESSION_COOKIE);
    if (!id || !/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    const s = (await this.o.store.getSession(this.key(id), this.o.clock())) as UiSession | undefined;
    return s?.kind === 'dashboard' ? view(s) : undefined;
  }

  /**
   * Who is calling: a Bearer header is authoritative when present (a bad one is a 401 even with a cookie); else the
   * session cookie. Writes need the admin role and, through a session, the CSRF header and a same-origin request.
   */
  async authenticate(req: FastifyRequest, o: { write: boolean }): Promise<AdminIdentity> {
    const now = this.o.clock();
    if (req.headers.authorization !== undefined) {
      return o.write ? this.o.admin.check(req.headers.authorization, now) : this.o.admin.verify(req.headers.authorization, now);
    }
    const s = await this.current(req);
    if (!s) throw unauthenticated();
    if (o.write || req.method !== 'GET') this.checkCsrf(req, s);
    if (o.write && s.role !== 'admin') throw new HttpProblem(403, 'admin-forbidden', 'Read-only session', 'this session was opened with a viewer token: it can read, never write');
    return { subject: s.subject, role: s.role };
  }

  private checkCsrf(req: FastifyRequest, s: SessionView): void {
    const h = req.headers[CSRF_HEADER];
    if (typeof h !== 'string' || !sameText(h, s.csrf)) {
      throw new HttpProblem(403, 'csrf-failed', 'CSRF check failed', `a write through a dashboard session needs the session's ${CSRF_HEADER} header`);
    }
    checkSameOrigin(req);
  }
}

/** Browsers send Origin on every cross-site POST: one naming another host is refused outright. */
export function checkSameOrigin(req: FastifyRequest): void {
  const origin = req.headers.origin;
  if (origin === undefined) return;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    host = '';
  }
  if (host !== req.headers.host) throw new HttpProblem(403, 'csrf-failed', 'CSRF check failed', `cross-origin request from ${origin} refused`);
}

function view(s: UiSession): SessionView {
  return { subject: s.subject, role: s.role, csrf: s.csrf, expiresAt: new Date(s.expiresAt).toISOString() };
}
