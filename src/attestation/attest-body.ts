import { HttpProblem } from './problem.js';
import type { AttestRequest } from './service.js';

/** Largest evidence / attachment (base64 text). */
export const EVIDENCE_MAX = 512 * 1024;
const MEMBERS = new Set(['tee', 'evidence', 'attachments', 'nonce', 'runtimeData', 'publicKey', 'policyId', 'audience', 'nextChallenge']);
const POLICY_ID = /^[A-Za-z0-9._-]+$/;
const AUDIENCE = /^[A-Za-z0-9._:/-]+$/;

/**
 * The body of POST /v1/attest, checked by hand on the hottest route (it replaced a JSON-schema validation that
 * cost several times more per request); same rules and the same answers as that schema: 400 invalid-request naming
 * the first offending member, unknown members refused, string lengths counted in code points.
 *   tee: string ≤ 32 · evidence: string ≤ 512 KiB · nonce: string 8..128 (all three required)
 *   attachments: object of ≤ 16 strings ≤ 512 KiB · runtimeData: any JSON · publicKey: object
 *   policyId: string ≤ 128 of [A-Za-z0-9._-] · audience: string 1..253 of [A-Za-z0-9._:/-]
 *   nextChallenge: boolean (extension: also hand out the next challenge with the answer, see routes.ts)
 */
export function parseAttestBody(body: unknown): AttestRequest & { nextChallenge?: boolean } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('body must be object');
  const b = body as Record<string, unknown>;
  for (const k of ['tee', 'evidence', 'nonce']) if (!Object.hasOwn(b, k)) throw invalid(`body must have required property '${k}'`);
  for (const k of Object.keys(b)) if (!MEMBERS.has(k)) throw invalid('body must NOT have additional properties');
  str(b.tee, 'tee', 0, 32);
  str(b.evidence, 'evidence', 0, EVIDENCE_MAX);
  str(b.nonce, 'nonce', 8, 128);
  if (b.attachments !== undefined) {
    const a = b.attachments;
    if (typeof a !== 'object' || a === null || Array.isArray(a)) throw invalid('body/attachments must be object');
    const keys = Object.keys(a);
    if (keys.length > 16) throw invalid('body/attachments must NOT have more than 16 properties');
    for (const k of keys) str((a as Record<string, unknown>)[k], `attachments/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`, 0, EVIDENCE_MAX);
  }
  if (b.publicKey !== undefined && (typeof b.publicKey !== 'object' || b.publicKey === null || Array.isArray(b.publicKey))) {
    throw invalid('body/publicKey must be object');
  }
  if (b.policyId !== undefined) {
    str(b.policyId, 'policyId', 0, 128);
    if (!POLICY_ID.test(b.policyId as string)) throw invalid(`body/policyId must match pattern "${POLICY_ID.source}"`);
  }
  if (b.audience !== undefined) {
    str(b.audience, 'audience', 1, 253);
    if (!AUDIENCE.test(b.audience as string)) throw invalid(`body/audience must match pattern "${AUDIENCE.source}"`);
  }
  if (b.nextChallenge !== undefined && typeof b.nextChallenge !== 'boolean') throw invalid('body/nextChallenge must be boolean');
  return b as unknown as AttestRequest & { nextChallenge?: boolean };
}

function invalid(message: string): HttpProblem {
  return new HttpProblem(400, 'invalid-request', 'Invalid request', message);
}

function str(v: unknown, path: string, min: number, max: number): void {
  if (typeof v !== 'string') throw invalid(`body/${path} must be string`);
  // Code points, as JSON Schema counts: only computed when the UTF-16 length cannot decide.
  if (v.length > max && codePoints(v) > max) throw invalid(`body/${path} must NOT have more than ${max} characters`);
  if (v.length < 2 * min && codePoints(v) < min) throw invalid(`body/${path} must NOT have fewer than ${min} characters`);
}

function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++, n++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
  }
  return n;
}
