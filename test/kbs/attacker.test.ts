import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { KbsClient, KbsClientError } from '../../src/kbs/client.js';
import { canonicalJson } from '../../src/tee/common/jcs.js';
import { chainPath, crlPath, vcekPath } from '../../src/tee/snp/collateral/kds.js';
import { cli, spawnCofferServer, type CofferServer } from '../support/cli.js';
import { fakeKds, type FakeUpstream } from '../support/fake-pcs.js';
import { SnpTestPki, p384, reportFields, signReport } from '../support/snp-pki.js';

/**
 * The attacker's view of issue 11: `coffer up` WITHOUT --dev, as a real process on loopback; real SEV-SNP evidence
 * on the project's generated test PKI (trusted with --trust-anchor), its VCEK chain and ARK CRL served by a local
 * stand-in for AMD KDS. The operator sets `--allow-all`; the attacker tries to get the secret anyway.
 */
const ERR = 'https://github.com/confidential-containers/kbs/errors/';
const DEBUG = 1n << 19n; // SEV-SNP guest policy bit 19: debugging allowed

describe('attacker view: production mode (no --dev), resource policy --allow-all', () => {
  const dir = mkdtempSync(join(tmpdir(), 'coffer-attack-'));
  const data = join(dir, 'data');
  const pki = new SnpTestPki('Milan', 'attack');
  const key = p384();
  const fields = reportFields({ product: 'Milan' });
  let kds: FakeUpstream;
  let server: CofferServer;
  let url = '';
  let adminToken = '';
  const report = (rd: Uint8Array, policy = fields.policy) => {
    const reportData = new Uint8Array(64);
    reportData.set(rd);
    return Buffer.from(signReport({ ...fields, policy, reportData }, key.privateKey)).toString('base64');
  };
  const audit = async () => {
    const r = await fetch(`${url}/v1/admin/audit?limit=500`, { headers: { authorization: `Bearer ${adminToken}` } });
    assert.equal(r.status, 200);
    return (await r.json()) as { action: string; result: string; target: string; details: Record<string, unknown> }[];
  };

  before(async () => {
    const leaf = pki.leaf({ tcb: fields.reportedTcb, chipId: fields.chipId, key });
    kds = await fakeKds(new Map([
      [vcekPath({ product: 'Milan', chipId: fields.chipId, tcb: fields.reportedTcb }), leaf.der],
      [chainPath('Milan', 'vcek'), pki.chainPem('vcek')],
      [crlPath('Milan', 'vcek'), pki.crl()],
    ]));
    const anchors = pki.trustAnchors.map((a, i) => {
      const f = join(dir, `ark-${i}.pem`);
      writeFileSync(f, a);
      return f;
    });
    server = await spawnCofferServer(['up', '--port', '0', '--data', data, '--kds-url', kds.base, '--pcs-url', 'off', '--swtpm', 'off', '--trust-anchor', ...anchors], { cwd: dir, env: { COFFER_KEK: '' } });
    url = server.url;
    const tok = await cli(['admin-token', '--data', data]);
    assert.equal(tok.code, 0, tok.err);
    adminToken = tok.out.trim();
    const admin = new KbsClient(url, { adminToken });
    await admin.setResource('prod/key/db', new TextEncoder().encode('the-crown-jewels'));
    const set = await cli(['kbs-client', '--url', url, '--admin-token', adminToken, 'set-resource-policy', '--allow-all']);
    assert.equal(set.code, 0, set.err);
  });
  after(async () => {
    server?.kill();
    await kds?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('control: genuine, non-debug SNP evidence gets the secret under --allow-all', async () => {
    const c = new KbsClient(url);
    const token = await c.attest('snp', (rd) => report(rd));
    assert.notEqual((decodeJwt(token).submods as Record<string, Record<string, unknown>>).cpu0['ear.status'], 'contraindicated');
    assert.equal(new TextDecoder().decode(await c.getResource('prod/key/db')), 'the-crown-jewels');
  });

  test('a debug-mode TEE (contraindicated token) gets nothing under --allow-all: 403 PolicyDeny, audited', async () => {
    const c = new KbsClient(url);
    const token = await c.attest('snp', (rd) => report(rd, fields.policy | DEBUG));
    const cpu0 = (decodeJwt(token).submods as Record<string, Record<string, unknown>>).cpu0;
    assert.equal(cpu0['ear.status'], 'contraindicated');
    assert.match(JSON.stringify(cpu0['ear.veraison.policy-claims']), /DEBUG_FORBIDDEN/);
    for (const bearer of [undefined, token]) {
      await assert.rejects(c.getResource('prod/key/db', bearer), (e: KbsClientError) => e.status === 403 && e.type === ERR + 'PolicyDeny' && /contraindicated/.test(e.message));
    }
    // The raw answer: Trustee's error shape, and nothing that decrypts.
    const raw = await fetch(`${url}/kbs/v0/resource/prod/key/db`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(raw.status, 403);
    const body = (await raw.json()) as Record<string, unknown>;
    assert.equal(body.type, ERR + 'PolicyDeny');
    assert.equal('ciphertext' in body, false);
    const denied = (await audit()).filter((e) => e.action === 'resource.get' && e.result === 'denied' && e.details.status === 'contraindicated');
    assert.equal(denied.length, 3); // cookie, bearer, raw bearer
  });

  test('the sample TEE is refused without --dev, on the KBS and on /v1, and audited', async () => {
    const c = new KbsClient(url);
    await assert.rejects(c.attest('sample', (rd) => ({ svn: '1', report_data: Buffer.from(rd).toString('base64') })), (e: KbsClientError) => e.status === 401 && e.type === ERR + 'AttestationError' && /not enabled/.test(e.message));
    const { nonce } = (await (await fetch(`${url}/v1/challenge`, { method: 'POST' })).json()) as { nonce: string };
    const v1 = await fetch(`${url}/v1/attest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tee: 'sample', evidence: Buffer.from(JSON.stringify({ svn: '1', report_data: nonce })).toString('base64'), nonce }) });
    assert.equal(v1.status, 400);
    const a = await audit();
    assert.ok(a.some((e) => e.action === 'kbs.auth' && e.target === 'sample' && e.result === 'rejected'));
    assert.ok(a.some((e) => e.action === 'attest' && e.target === 'sample' && e.result === 'rejected'));
  });

  test('a tee-pubkey with e = 1 is refused at attest time (400 InvalidTeePubKey): no token, nothing released, audited', async () => {
    const n = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' }).n!;
    const teeKey = { kty: 'RSA', alg: 'RSA-OAEP-256', n, e: 'AQ' };
    const auth = await fetch(`${url}/kbs/v0/auth`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ version: '0.4.0', tee: 'snp', 'extra-params': '' }) });
    const cookie = (auth.headers.get('set-cookie') ?? '').split(';')[0];
    const { nonce } = (await auth.json()) as { nonce: string };
    const rd = createHash('sha384').update(canonicalJson({ 'tee-pubkey': teeKey, nonce, 'additional-evidence': '' })).digest();
    const att = await fetch(`${url}/kbs/v0/attest`, {
      method: 'POST', headers: { 'content-type': 'application/json', cookie },
      body: JSON.stringify({ 'runtime-data': { nonce, 'tee-pubkey': teeKey }, 'tee-evidence': { primary_evidence: report(new Uint8Array(rd)), additional_evidence: '' } }),
    });
    assert.equal(att.status, 400);
    const body = (await att.json()) as { type: string; detail: string; token?: string };
    assert.equal(body.type, ERR + 'InvalidTeePubKey');
    assert.match(body.detail, /^TEE_PUBKEY_WEAK: .*exponent 1/);
    assert.equal(body.token, undefined);
    const res = await fetch(`${url}/kbs/v0/resource/prod/key/db`, { headers: { cookie } });
    assert.equal(res.status, 401, 'the session never became attested');
    const a = await audit();
    assert.ok(a.some((e) => e.action === 'kbs.attest' && e.result === 'rejected' && /TEE_PUBKEY_WEAK/.test(String(e.details.detail))));
  });

  test('every refusal above is in the audit log; the only release is the genuine one', async () => {
    const a = await audit();
    assert.equal(a.filter((e) => e.action === 'resource.get' && e.result === 'released').length, 1);
    assert.ok(a.filter((e) => e.result === 'denied' || e.result === 'rejected').length >= 6);
  });
});
