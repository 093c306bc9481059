// The agent's attestation round against a real attestation service (dev mode, sample evidence) on loopback: one
// request to the service per interval in the steady state (the nonce handed out with the previous answer), a
// fresh challenge when none is held, when the held one is about to expire, or when the service refuses it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { buildAttestationApp } from '../../../src/attestation/index.js';
import { NodeAttester } from '../../../src/node/attest/node-attester.js';
import type { EvidenceSource } from '../../../src/node/attest/evidence.js';
import { adminKeys, fakeClock, tempStore } from '../../support/service.js';

const NONCE_TTL_MS = 120_000;
const ts = tempStore();
const svcClock = fakeClock();
let svc: FastifyInstance;
let ctl: FastifyInstance;
let svcUrl = '';
let ctlUrl = '';
const delivered: string[] = [];

/** Unsigned (Trustee-form) sample evidence carrying the report data the agent computed. */
const source: EvidenceSource = {
  reportDataBytes: 64,
  async collect(rd) {
    return { tee: 'sample', evidence: Buffer.from(JSON.stringify({ svn: '1', report_data: Buffer.from(rd).toString('base64') })).toString('base64') };
  },
};

before(async () => {
  const adm = await adminKeys();
  ({ app: svc } = await buildAttestationApp({ store: ts.store, adminKeys: [adm.publicJwk as Record<string, unknown>], dev: true, clock: svcClock.now, nonceTtlMs: NONCE_TTL_MS }));
  await svc.listen({ host: '127.0.0.1', port: 0 });
  svcUrl = `http://127.0.0.1:${(svc.server.address() as AddressInfo).port}`;
  const put = await svc.inject({ method: 'PUT', url: '/v1/admin/reference-values/default', headers: { authorization: `Bearer ${await adm.token()}` }, payload: { tees: ['sample'] } });
  assert.equal(put.statusCode, 201, put.body);
  // The controller's report endpoint, reduced to recording what arrives.
  ctl = Fastify();
  ctl.post('/v1/node-trust/reports', async (req, reply) => {
    const token = (req.body as { token: string }).token;
    delivered.push(token);
    return reply.code(202).send({ tokenId: createHash('sha256').update(token).digest('hex').slice(0, 8) });
  });
  await ctl.listen({ host: '127.0.0.1', port: 0 });
  ctlUrl = `http://127.0.0.1:${(ctl.server.address() as AddressInfo).port}`;
});
after(async () => {
  await svc.close();
  await ctl.close();
  await ts.cleanup();
});

function agent(clock = Date.now) {
  const calls: string[] = [];
  const f: typeof fetch = (u, i) => {
    calls.push(new URL(String(u)).pathname);
    return fetch(u, i);
  };
  return { calls, a: new NodeAttester({ nodeName: 'node-a', attestationUrl: svcUrl, controllerUrl: ctlUrl, source, fetch: f, clock, timeoutMs: 5000 }) };
}

test('steady state: one request to the service per round (the nonce comes with the previous answer)', async () => {
  const { calls, a } = agent(svcClock.now);
  assert.equal((await a.attestOnce()).status, 'affirming');
  assert.deepEqual(calls.splice(0), ['/v1/challenge', '/v1/attest', '/v1/node-trust/reports']);
  for (let i = 0; i < 3; i++) {
    svcClock.advance(60_000);
    assert.equal((await a.attestOnce()).status, 'affirming');
    assert.deepEqual(calls.splice(0), ['/v1/attest', '/v1/node-trust/reports'], `round ${i + 2}`);
  }
});

test('a held nonce that would expire within a request timeout is not used: a fresh challenge instead', async () => {
  const { calls, a } = agent(svcClock.now);
  await a.attestOnce();
  calls.length = 0;
  svcClock.advance(NONCE_TTL_MS - 4000); // 4 s left < the 5 s timeout
  assert.equal((await a.attestOnce()).status, 'affirming');
  assert.deepEqual(calls, ['/v1/challenge', '/v1/attest', '/v1/node-trust/reports']);
});

test('the service refuses the held nonce (expired by its clock): the round is repeated once with a fresh challenge', async () => {
  let skew = 0;
  const { calls, a } = agent(() => svcClock.now() - skew); // the agent's clock lags the service's
  await a.attestOnce();
  calls.length = 0;
  skew = NONCE_TTL_MS;
  svcClock.advance(NONCE_TTL_MS + 1);
  const before = delivered.length;
  assert.equal((await a.attestOnce()).status, 'affirming');
  assert.deepEqual(calls, ['/v1/attest', '/v1/challenge', '/v1/attest', '/v1/node-trust/reports']);
  assert.equal(delivered.length, before + 1);
});

test('other refusals with a held nonce are not retried: the error reaches the loop (which backs off)', async () => {
  let broken = false;
  const calls: string[] = [];
  const f: typeof fetch = (u, i) => {
    calls.push(new URL(String(u)).pathname);
    return fetch(u, i);
  };
  const flaky: EvidenceSource = { reportDataBytes: 64, collect: async (rd) => (broken ? { tee: 'sample', evidence: Buffer.from('{}').toString('base64') } : source.collect(rd)) };
  const a = new NodeAttester({ nodeName: 'node-b', attestationUrl: svcUrl, controllerUrl: ctlUrl, source: flaky, fetch: f, clock: svcClock.now });
  await a.attestOnce();
  calls.length = 0;
  broken = true;
  await assert.rejects(a.attestOnce(), (e: Error & { code?: string }) => e.code === 'ATTEST_FAILED');
  assert.deepEqual(calls, ['/v1/attest']);
  // The refused attestation consumed the held nonce and handed out none: the next round starts with a challenge.
  broken = false;
  calls.length = 0;
  await a.attestOnce();
  assert.deepEqual(calls, ['/v1/challenge', '/v1/attest', '/v1/node-trust/reports']);
});

test('a service from before nextChallenge (schema refuses the field): the same round is sent without it, and never asked again', async () => {
  // The older service's wire behaviour: an unknown body field is a 400 invalid-request problem before the handler.
  const old = Fastify();
  old.post('/v1/attest', async (req, reply) => {
    const b = req.body as Record<string, unknown>;
    if ('nextChallenge' in b) return reply.code(400).type('application/problem+json').send({ type: 'https://coffer.dev/problems/invalid-request', title: 'Invalid request', status: 400, detail: 'body must NOT have additional properties' });
    const r = await svc.inject({ method: 'POST', url: '/v1/attest', payload: b });
    return reply.code(r.statusCode).send(r.json());
  });
  old.post('/v1/challenge', async (_req, reply) => {
    const r = await svc.inject({ method: 'POST', url: '/v1/challenge' });
    return reply.code(r.statusCode).send(r.json());
  });
  await old.listen({ host: '127.0.0.1', port: 0 });
  try {
    const calls: string[] = [];
    const f: typeof fetch = (u, i) => {
      calls.push(new URL(String(u)).pathname);
      return fetch(u, i);
    };
    const a = new NodeAttester({ nodeName: 'node-c', attestationUrl: `http://127.0.0.1:${(old.server.address() as AddressInfo).port}`, controllerUrl: ctlUrl, source, fetch: f, clock: svcClock.now });
    assert.equal((await a.attestOnce()).status, 'affirming');
    assert.deepEqual(calls.splice(0), ['/v1/challenge', '/v1/attest', '/v1/attest', '/v1/node-trust/reports']);
    assert.equal((await a.attestOnce()).status, 'affirming');
    assert.deepEqual(calls.splice(0), ['/v1/challenge', '/v1/attest', '/v1/node-trust/reports']);
  } finally {
    await old.close();
  }
});
