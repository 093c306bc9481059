/** Which requests are admin requests, judged from the method and raw URL alone (before fastify parses anything). */

function decoded(url: string): string {
  const p = url.split('?')[0];
  try {
    return decodeURIComponent(p);
  } catch {
    return p; // undecodable: judged as written
  }
}

const ADMIN = /^\/+v1\/+admin(\/|$)/i;
/** ADMIN on a raw URL: the path may also end at its query string. */
const ADMIN_RAW = /^\/+v1\/+admin(\/|\?|$)/i;

/** Any spelling of a path under /v1/admin (case, percent-encoding, doubled slashes) counts as an admin path. */
export function isAdminPath(url: string): boolean {
  // Without a '%' the URL decodes to itself: its path is tested in place (no split, no decode: every request).
  if (!url.includes('%')) return ADMIN_RAW.test(url);
  return ADMIN.test(decoded(url));
}

/** The KBS admin API (Trustee's): resource writes, resource and attestation policies, reference values. */
export function isKbsAdminRequest(method: string, url: string): boolean {
  const p = decoded(url);
  if (/^\/+kbs\/+v0\/+(resource-policy|attestation-policy|reference-value)(\/|$)/i.test(p)) return true;
  return /^\/+kbs\/+v0\/+resource(\/|$)/i.test(p) && method.toUpperCase() !== 'GET' && method.toUpperCase() !== 'HEAD';
}
