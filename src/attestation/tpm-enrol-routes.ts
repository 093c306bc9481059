import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AdminIdentity } from './admin-auth.js';
import { HttpProblem } from './problem.js';
import type { ActivateRequest, EnrolRequest, TpmEnrolment } from './tpm-enrol.js';

const B64 = (max: number) => ({ type: 'string', minLength: 1, maxLength: max }) as const;

const enrolSchema = {
  body: {
    type: 'object',
    required: ['attester', 'ekCert', 'ekPublic', 'akPublic'],
    additionalProperties: false,
    properties: {
      attester: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,253}$' },
      ekCert: B64(8192),
      ekChain: { type: 'array', maxItems: 4, items: B64(8192) },
      ekPublic: B64(2048),
      akPublic: B64(2048),
    },
  },
} as const;

const activateSchema = {
  body: {
    type: 'object',
    required: ['challengeId', 'secret'],
    additionalProperties: false,
    properties: { challengeId: { type: 'string', pattern: '^[A-Za-z0-9_-]{8,64}$' }, secret: B64(128) },
  },
} as const;

/** Checked after authentication (a schema would answer 400 to an unauthenticated caller first). */
function akId(req: FastifyRequest): string {
  const { id } = req.params as { id: string };
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(id)) throw new HttpProblem(400, 'invalid-request', 'Invalid request', 'the AK id must match [A-Za-z0-9._-]{1,128}');
  return id;
}

/**
 * TPM AK enrolment on the attestation service: `POST /v1/tpm/enrol` → activation challenge, `POST /v1/tpm/activate`
 * → registered AK id (both unauthenticated: the EK certificate and the TPM itself are the credentials), and the
 * admin registry `GET /v1/admin/tpm/aks[/:id]`, `DELETE /v1/admin/tpm/aks/:id` (revoke; the record is kept).
 */
export function tpmEnrolRoutes(app: FastifyInstance, tpm: TpmEnrolment, admin: (req: FastifyRequest) => Promise<AdminIdentity>): void {
  app.post('/v1/tpm/enrol', { schema: enrolSchema }, async (req, reply) => reply.code(201).send(await tpm.enrol(req.body as EnrolRequest, `attester@${req.ip}`)));
  app.post('/v1/tpm/activate', { schema: activateSchema }, async (req, reply) => reply.code(201).send(await tpm.activate(req.body as ActivateRequest, `attester@${req.ip}`)));

  app.get('/v1/admin/tpm/aks', async (req) => {
    await admin(req);
    return tpm.list();
  });
  app.get('/v1/admin/tpm/aks/:id', async (req) => {
    await admin(req);
    const id = akId(req);
    const v = await tpm.get(id);
    if (!v) throw new HttpProblem(404, 'tpm-ak-not-found', 'Not found', `no enrolled AK '${id}'`);
    return v;
  });
  app.delete('/v1/admin/tpm/aks/:id', async (req, reply) => {
    const who = await admin(req);
    const id = akId(req);
    if (!(await tpm.revoke(id, who.subject))) throw new HttpProblem(404, 'tpm-ak-not-found', 'Not found', `no enrolled, unrevoked AK '${id}'`);
    return reply.code(204).send();
  });
}
