/**
 * The node-trust controller's audit records, kept in the service's audit log (the one `/v1/admin/audit` and the
 * dashboard show) instead of only the controller's log: `POST /v1/node-trust/audit`.
 *
 * - Authenticated by a key of its own, not an admin key: the controller signs a short-lived JWT (iss
 *   `coffer-node-trust`, aud `coffer-node-trust-audit`) with the private key whose public half the service is
 *   given (`--node-trust-audit-key`). That credential can append node-trust records and nothing else; an admin
 *   token is refused here, and this token is refused on the admin API (other issuer, audience and key).
 * - Idempotent: each record carries its transition's id (the same id the Node Event is named by); the store keeps
 *   one row per (node, id), so a controller that replays a transition after a crash adds nothing.
 * - Durable: the answer is sent after the store committed every record of the batch.
 * - Bounded: at most 100 records and 256 KiB per request, every field length- and shape-checked.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AdminAuth } from './admin-auth.js';
import { HttpProblem, sendProblem, toProblem } from './problem.js';
import type { Store } from '../store/types.js';

export const NODE_TRUST_AUDIT_PATH = '/v1/node-trust/audit';
export const NODE_TRUST_AUDIT_ISSUER = 'coffer-node-trust';
export const NODE_TRUST_AUDIT_AUDIENCE = 'coffer-node-trust-audit';
/** The audit `action` of a node-trust record is `node-trust.<to>`. */
export const NODE_TRUST_AUDIT_ACTION_PREFIX = 'node-trust.';
export const NODE_TRUST_AUDIT_MAX_RECORDS = 100;

/** One transition as the controller reports it (node-trust-reconcile's TransitionRecord plus its time). */
export interface NodeTrustAuditRecord {
  id: string;
  node: string;
  from: 'trusted' | 'untrusted' | 'unknown';
  to: 'trusted' | 'untrusted' | 'unmanaged';
  reason: string;
  message: string;
  tokenId?: string;
  effect?: 'NoSchedule' | 'NoExecute';
  /** When the controller decided it (ISO 8601). */
  at: string;
}

export function nodeTrustAuditAuth(publicKeysPem: string[]): Promise<AdminAuth> {
  return AdminAuth.fromPublicKeys(publicKeysPem, { issuer: NODE_TRUST_AUDIT_ISSUER, audience: NODE_TRUST_AUDIT_AUDIENCE });
}

const recordSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'node', 'from', 'to', 'reason', 'message', 'at'],
  properties: {
    id: { type: 'string', pattern: '^[0-9a-f]{16}$' },
    // A Node name is a DNS subdomain.
    node: { type: 'string', maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$' },
    from: { enum: ['trusted', 'untrusted', 'unknown'] },
    to: { enum: ['trusted', 'untrusted', 'unmanaged'] },
    reason: { type: 'string', maxLength: 64, pattern: '^[A-Za-z]+$' },
    message: { type: 'string', maxLength: 1024 },
    tokenId: { type: 'string', maxLength: 256 },
    effect: { enum: ['NoSchedule', 'NoExecute'] },
    at: { type: 'string', maxLength: 40, format: 'date-time' },
  },
} as const;

const bodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['records'],
  properties: { records: { type: 'array', minItems: 1, maxItems: NODE_TRUST_AUDIT_MAX_RECORDS, items: recordSchema } },
} as const;

export interface NodeTrustAuditRoutesOptions {
  store: Store;
  auth: AdminAuth;
  now: () => number;
}

export async function nodeTrustAuditRoutes(app: FastifyInstance, o: NodeTrustAuditRoutesOptions): Promise<void> {
  // Errors as problem+json (the 404 handler is the attestation plugin's: one per prefix).
  app.setErrorHandler((err, req, reply) => {
    const p = toProblem(err as Error);
    if (p.status >= 500) req.log.error({ err }, 'request failed');
    return sendProblem(reply, p);
  });
  const writers = new WeakMap<FastifyRequest, string>();
  app.post(NODE_TRUST_AUDIT_PATH, {
    bodyLimit: 256 * 1024,
    schema: { body: bodySchema },
    // Authenticate before the body is parsed or validated: without the controller's credential every request is a
    // 401, whatever it carries.
    onRequest: async (req) => {
      try {
        writers.set(req, (await o.auth.verify(req.headers.authorization, o.now())).subject);
      } catch (e) {
        if (e instanceof HttpProblem) throw new HttpProblem(401, 'node-trust-audit-unauthenticated', 'Node-trust audit authentication failed', 'POST /v1/node-trust/audit needs a token signed by the node-trust controller\'s audit key (--node-trust-audit-key)');
        throw e;
      }
    },
  }, async (req) => {
    const actor = `node-trust-controller:${(writers.get(req) ?? '').slice(0, 128)}`;
    const { records } = req.body as { records: NodeTrustAuditRecord[] };
    const results: { id: string; node: string; auditId: number; created: boolean }[] = [];
    // In order, each committed before the next: the answer lists only records that are durable.
    for (const r of records) {
      const at = o.now();
      const { id, created } = await o.store.appendAuditOnce({
        at, actor, action: `${NODE_TRUST_AUDIT_ACTION_PREFIX}${r.to}`, target: r.node, result: r.reason,
        details: { transition: r.id, from: r.from, to: r.to, message: r.message, decidedAt: r.at, ...(r.tokenId ? { tokenId: r.tokenId } : {}), ...(r.effect ? { effect: r.effect } : {}) },
      }, `node-trust:${r.node}:${r.id}`);
      results.push({ id: r.id, node: r.node, auditId: id, created });
    }
    return { results };
  });
}
