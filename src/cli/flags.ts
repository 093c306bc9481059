import { CliUsageError } from './context.js';
import { oneLine } from './files.js';

/** An http(s) URL flag, parsed (host present, no credentials); `noQuery` also refuses ?query and #fragment. */
export function parseHttpUrl(flag: string, v: string, o: { noQuery?: boolean } = {}): URL {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new CliUsageError(`${flag} '${oneLine(v, 100)}' is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new CliUsageError(`${flag} '${oneLine(v, 100)}' is not an http(s) URL`);
  if (!u.hostname) throw new CliUsageError(`${flag} '${oneLine(v, 100)}' has no host`);
  if (u.username || u.password) throw new CliUsageError(`${flag} must not carry credentials`);
  if (o.noQuery && (u.search || u.hash)) throw new CliUsageError(`${flag} '${oneLine(v, 100)}' must not have a query or fragment`);
  return u;
}

/** A URL for messages: any password replaced by `***`. Non-URLs (file paths) are returned as they are. */
export function redactUrl(v: string): string {
  try {
    const u = new URL(v);
    if (!u.password) return v;
    u.password = '***';
    return u.toString();
  } catch {
    return v.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
  }
}
