import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import type { FastifyInstance } from 'fastify';
import { buildKbsApp } from '../../src/kbs/index.js';
import { KbsClient } from '../../src/kbs/client.js';
import { adminKeys, tempStore } from '../support/service.js';
import { pki, snpComposite, SNP_AT } from '../support/azure-composite.js';

/**
 * A Trustee attestation agent on an Azure SNP CVM puts SHA-384(JCS runtime data) in the vTPM quote's extraData
 * and sends az-snp-vtpm evidence JSON; the KBS verifies it through the composite verifier.
 */
const ts = tempStore();
let app: FastifyInstance;
const injectFetch = (async (url: string, init: RequestInit = {}) => {
  const r = await app.inject({ method: (init.method ?? 'GET') as 'GET', url: new URL(url).pathname, headers: init.headers as Record<string, string>, payload: init.body instanceof Uint8Array ? Buffer.from(init.body) : (init.body as string) });
  return new Response(r.rawPayload.length ? r.rawPayload : null, { status: r.statusCode, headers: r.headers as Record<string, string> });
}) as typeof fetch;

before(async () => {
  const adm = await adminKeys();
  ({ app } = await buildKbsApp({
    store: ts.store,
    adminKeys: [adm.publicJwk as Record<string, unknown>],
    dev: true,
    clock: () => SNP_AT.getTime(),
    // The service requires the ARK CRL for SNP chains (no KDS here: given as configured collateral).
    verifyOptions: { trustAnchors: pki.trustAnchors, snp: { certs: [pki.chainPem()], crls: [pki.crl()] } },
  }));
});
after(async () => {
  await app.close();
  await ts.cleanup();
});

test('KBS RCAR with az-snp-vtpm evidence: extraData = SHA-384(runtime data) binds the session; another binding is refused', async () => {
  const c = new KbsClient('http://kbs', { fetch: injectFetch });
  const token = await c.attest('az-snp-vtpm', (rd) => JSON.parse(Buffer.from(snpComposite({ extraData: rd }).json).toString('utf8')));
  const cpu0 = (decodeJwt(token).submods as Record<string, Record<string, unknown>>).cpu0;
  assert.match(String(cpu0['ear.status']), /^(affirming|warning)$/);
  const stale = new KbsClient('http://kbs', { fetch: injectFetch });
  await assert.rejects(stale.attest('az-snp-vtpm', () => JSON.parse(Buffer.from(snpComposite({ extraData: new Uint8Array(48).fill(1) }).json).toString('utf8'))), (e: Error) => /NONCE_MISMATCH/.test(e.message));
});
