import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';

/**
 * Trustee's KBS error shape: `{"type": ".../kbs/errors/<Variant>", "detail": "..."}` (kbs-types ErrorInformation),
 * served as RFC 7807 problem JSON. Status as Trustee maps it: InvalidRequestPath and PluginNotFound → 404,
 * everything else → 401 (clients re-run the handshake on 401), plus 413 for oversize bodies. Two departures, both
 * from the KBS protocol document rather than Trustee's code: an authenticated caller the resource policy refuses
 * gets 403 PolicyDeny ("authenticated but not allowed", kbs_attestation_protocol.md; Trustee's error.rs still
 * answers 401), and a TEE key that must not be encrypted to gets 400 InvalidTeePubKey (re-running the handshake
 * with the same key cannot help).
 */
export const KBS_ERROR_PREFIX = 'https://github.com/confidential-containers/kbs/errors/';

export type KbsErrorVariant =
  | 'AdminAuthAccess' | 'AttestationError' | 'InvalidRequestPath' | 'JweError' | 'PluginNotFound' | 'PluginInternalError'
  | 'PolicyDeny' | 'ParsePolicyError' | 'SerdeError' | 'TokenNotFound' | 'TokenVerifierError' | 'ProtocolVersion'
  | 'SessionExpired' | 'PayloadTooLarge' | 'InvalidTeePubKey';

export class KbsError extends Error {
  constructor(readonly variant: KbsErrorVariant, readonly detail: string) {
    super(detail);
  }
  get status(): number {
    if (this.variant === 'InvalidRequestPath' || this.variant === 'PluginNotFound') return 404;
    if (this.variant === 'PayloadTooLarge') return 413;
    if (this.variant === 'PolicyDeny') return 403;
    if (this.variant === 'InvalidTeePubKey') return 400;
    return 401;
  }
}

export function sendKbsError(reply: FastifyReply, e: KbsError): FastifyReply {
  return reply.code(e.status).type('application/problem+json').send({ type: KBS_ERROR_PREFIX + e.variant, detail: e.detail, status: e.status });
}

export function toKbsError(err: unknown): KbsError | undefined {
  if (err instanceof KbsError) return err;
  const e = err as FastifyError;
  if (e?.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new KbsError('PayloadTooLarge', e.message);
  if (e?.code?.startsWith?.('FST_ERR_CTP_') || e?.validation || err instanceof SyntaxError) return new KbsError('SerdeError', e.message);
  return undefined;
}

export function installKbsErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err, req, reply) => {
    const k = toKbsError(err);
    if (k) return sendKbsError(reply, k);
    req.log.error({ err }, 'kbs request failed');
    return reply.code(500).type('application/problem+json').send({ type: `${KBS_ERROR_PREFIX}PluginInternalError`, detail: 'internal error', status: 500 });
  });
}
