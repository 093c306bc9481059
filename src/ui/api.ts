/** The service's JSON API, same origin, session cookie; writes carry the session's CSRF token. */
export interface Session {
  subject: string;
  role: 'admin' | 'viewer';
  csrf: string;
  expiresAt: string;
}

export class ApiError extends Error {
  constructor(readonly status: number, readonly title: string, readonly detail: string) {
    super(detail || title);
  }
}

export class Api {
  csrf = '';
  onUnauthenticated: () => void = () => {};

  async call<T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (method !== 'GET') headers['x-coffer-csrf'] = this.csrf;
    if (body !== undefined) headers['content-type'] = contentType;
    const res = await fetch(path, {
      method, headers, credentials: 'same-origin',
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const p = (json ?? {}) as { title?: string; detail?: string; error?: string; message?: string };
      if (res.status === 401 && !path.startsWith('/ui/session')) this.onUnauthenticated();
      throw new ApiError(res.status, p.title ?? p.error ?? `HTTP ${res.status}`, p.detail ?? p.message ?? '');
    }
    return json as T;
  }
  get<T>(path: string): Promise<T> {
    return this.call<T>('GET', path);
  }
}

export type { UiAuditRecord as AuditRecord } from '../attestation/dashboard/wire.js';
