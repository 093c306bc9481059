import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';

/**
 * RFC 7807 problem details. `type` URIs are stable identifiers (part of the API contract; never rename one); they
 * need not resolve (RFC 7807 §3.1).
 */
export const PROBLEM_BASE = 'https://coffer.dev/problems/';

export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly slug: string,
    readonly title: string,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(detail);
  }
}

export function sendProblem(reply: FastifyReply, p: HttpProblem): FastifyReply {
  return reply
    .code(p.status)
    .type('application/problem+json')
    .send({ type: PROBLEM_BASE + p.slug, title: p.title, status: p.status, detail: p.detail, ...p.extra });
}

/** Maps fastify's own errors (body limit, bad JSON, schema) to problems; anything unexpected is a logged 500. */
export function toProblem(err: FastifyError | Error): HttpProblem {
  if (err instanceof HttpProblem) return err;
  const e = err as FastifyError;
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new HttpProblem(413, 'body-too-large', 'Request body too large', e.message);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new HttpProblem(415, 'unsupported-media-type', 'Unsupported media type', e.message);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new HttpProblem(400, 'malformed-json', 'Malformed JSON', e.message);
  }
  if (e.validation) return new HttpProblem(400, 'invalid-request', 'Invalid request', e.message);
  if (err instanceof SyntaxError || (e.statusCode === 400 && /JSON/i.test(e.message))) {
    return new HttpProblem(400, 'malformed-json', 'Malformed JSON', e.message);
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new HttpProblem(e.statusCode, 'bad-request', 'Bad request', e.message);
  }
  return new HttpProblem(500, 'internal', 'Internal error', 'the server failed to process the request');
}

/** Installs problem+json error and not-found handlers on one (encapsulated) plugin context. */
export function installProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err, req, reply) => {
    const p = toProblem(err as Error);
    if (p.status >= 500) req.log.error({ err }, 'request failed');
    return sendProblem(reply, p);
  });
  app.setNotFoundHandler((req, reply) =>
    sendProblem(reply, new HttpProblem(404, 'not-found', 'Not found', `no route for ${req.method} ${req.url.split('?')[0]}`)),
  );
}
