import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { startServices } from '../../src/cli/commands/up.js';
import { captureContext, cli } from '../support/cli.js';
import { startSwtpm, swtpmSkip, tpm2ToolsSkip, type Swtpm } from '../support/swtpm.js';
import { KbsClient, KbsClientError } from '../../src/kbs/client.js';
import { devTpmEvidence } from '../../src/node/tpm/dev.js';
import { enrolAk, httpEnrolPost, TpmEnrolError, TpmClient, SocketTransport, TpmResponseError } from '../../src/node/tpm/index.js';
import { serializeAttest } from '../../src/tee/tpm/abi/attest.js';
import { TPM_ALG, TPM_GENERATED_VALUE, TPM_ST } from '../../src/tee/tpm/abi/constants.js';
import { selection, serializePcrsSerialized } from '../../src/tee/tpm/abi/pcrs.js';
import { publicToKeyObject, serializePublic2b, type TpmtPublic } from '../../src/tee/tpm/abi/public.js';
import { serializeSignature } from '../../src/tee/tpm/abi/signature.js';
import { ByteWriter } from '../../src/tee/tpm/abi/writer.js';
import { buildAttestationApp, loadTpmCaDir } from '../../src/attestation/index.js';
import { fakeClock, tempStore } from '../support/service.js';
import { manufactureSwtpm } from '../support/swtpm-manufacture.js';

/**
 * TPM AK enrolment against the services started WITHOUT --dev, from the attacker's side: real swtpms manufactured
 * with EK certificates from a CA this test owns (swtpm_setup + swtpm_localca for RSA; an ECC P-256 EK certificate
 * signed by the same CA and written to NV 0x01C0000A with tpm2-tools), enrolment through the CLI and the API,
 * and every refusal checked for its code and its audit record.
 */
const skip = swtpmSkip || tpm2ToolsSkip || (spawnSync('swtpm_setup', ['--help']).status === 0 ? false : 'swtpm_setup (swtpm-tools) is not installed')
  || (spawnSync('openssl', ['version']).status === 0 ? false : 'openssl is not installed');

let dir: string;
let caDir: string;
let tpmA: Swtpm;
let tpmB: Swtpm;
let epA: string;
let epB: string;
let svc: Awaited<ReturnType<typeof startServices>>;
let adminToken: string;

const manufacture = (name: string, ca: string): string => manufactureSwtpm(dir, name, ca);

/** Gives the TPM an ECC P-256 (template L-2) EK certificate signed by the CA's issuer, at NV 0x01C0000A. */
async function addEccEkCert(tpm: Swtpm, ca: string): Promise<void> {
  const c = new TpmClient(await SocketTransport.connect(tpm.port));
  let pem: string;
  try {
    const ek = await c.createEk('ecc');
    await c.flush(ek.handle);
    pem = publicToKeyObject(ek.public).export({ format: 'pem', type: 'spki' }).toString();
  } finally {
    await c.close();
  }
  const d = mkdtempSync(join(dir, 'eccek-'));
  writeFileSync(join(d, 'ek.pem'), pem);
  execFileSync('openssl', ['x509', '-new', '-subj', '/CN=coffer test ECC EK', '-force_pubkey', 'ek.pem', '-CA', join(ca, 'issuercert.pem'), '-CAkey', join(ca, 'signkey.pem'), '-days', '3650', '-outform', 'DER', '-out', 'ek.der'], { cwd: d, stdio: 'pipe' });
  const size = readFileSync(join(d, 'ek.der')).length;
  const env = { ...process.env, TPM2TOOLS_TCTI: tpm.tcti };
  execFileSync('tpm2_nvdefine', ['-C', 'o', '-s', String(size), '-a', 'ownerread|ownerwrite|authread|authwrite|no_da', '0x01c0000a'], { env, stdio: 'pipe' });
  execFileSync('tpm2_nvwrite', ['-C', 'o', '-i', join(d, 'ek.der'), '0x01c0000a'], { env, stdio: 'pipe' });
}

function endpoint(name: string, t: Swtpm): string {
  const f = join(dir, `${name}.json`);
  writeFileSync(f, JSON.stringify({ host: '127.0.0.1', port: t.port }));
  return f;
}

async function admin(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${svc.url}${path}`, {
    method, headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function auditOf(action: string): Promise<{ action: string; result: string; target: string; details?: Record<string, unknown> }[]> {
  return (await (await admin('GET', `/v1/admin/audit?action=${action}&limit=1000`)).json()) as never;
}

/** POST /v1/attest with a quote over a fresh challenge; returns status and body. */
async function attestApi(ev: { quote: string; signature: string; ak: string; pcrs: string } | ((nonce: Uint8Array) => Promise<{ quote: string; signature: string; ak: string; pcrs: string }>)) {
  const ch = (await (await fetch(`${svc.url}/v1/challenge`, { method: 'POST' })).json()) as { nonce: string };
  const nonce = new Uint8Array(Buffer.from(ch.nonce, 'base64'));
  const e = typeof ev === 'function' ? await ev(nonce) : ev;
  const res = await fetch(`${svc.url}/v1/attest`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tee: 'tpm', evidence: e.quote, attachments: { signature: e.signature, ak: e.ak, pcrs: e.pcrs }, nonce: ch.nonce }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { errors?: { code: string }[]; token?: string } };
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'coffer-tpmenrol-'));
  const ca = join(dir, 'ca');
  mkdirSync(ca);
  const stateA = manufacture('a', ca);
  const stateB = manufacture('b', ca);
  // The operator's --tpm-ca-dir: the manufacturer root and its issuing CA.
  caDir = join(dir, 'tpm-ca');
  mkdirSync(caDir);
  writeFileSync(join(caDir, 'root.pem'), readFileSync(join(ca, 'swtpm-localca-rootca-cert.pem')));
  writeFileSync(join(caDir, 'issuer.pem'), readFileSync(join(ca, 'issuercert.pem')));
  tpmA = await startSwtpm({ stateDir: stateA });
  tpmB = await startSwtpm({ stateDir: stateB });
  await addEccEkCert(tpmA, ca);
  epA = endpoint('a', tpmA);
  epB = endpoint('b', tpmB);
  writeFileSync(join(dir, 'secret.txt'), '{"secret":"released only to enrolled AKs"}');
  svc = await startServices('up', { port: '0', host: '127.0.0.1', data: join(dir, 'data'), pcsUrl: 'off', kdsUrl: 'off', swtpm: 'off', tpmCaDir: caDir }, captureContext(), {});
  const t = await cli(['admin-token', '--data', join(dir, 'data')]);
  assert.equal(t.code, 0, t.err);
  adminToken = t.out.trim();
  assert.equal((await admin('PUT', '/v1/admin/reference-values/default', { tees: ['tpm'] })).status < 300, true);
});

after(async () => {
  if (skip) return;
  await svc?.stop();
  await tpmA?.stop();
  await tpmB?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('happy path (RSA EK): kbs-client tpm-enrol, then the KBS releases a secret to quotes by the enrolled AK; listed by the admin API', { skip }, async () => {
  const e = await cli(['kbs-client', '--url', svc.url, 'tpm-enrol', '--swtpm', epA, '--attester', 'node-a']);
  assert.equal(e.code, 0, e.err);
  const akId = /enrolled AK (ak-[0-9a-f]+)/.exec(e.out)![1];
  const set = await cli(['kbs-client', '--url', svc.url, '--admin-token', adminToken, 'set-resource', '--path', 'default/key/one', '--resource-file', join(dir, 'secret.txt')]);
  assert.equal(set.code, 0, set.err);
  assert.equal((await cli(['kbs-client', '--url', svc.url, '--admin-token', adminToken, 'set-resource-policy', '--allow-all'])).code, 0);
  const got = await cli(['kbs-client', '--url', svc.url, 'get-resource', '--tee', 'tpm', '--swtpm', epA, '--path', 'default/key/one', '--raw']);
  assert.equal(got.code, 0, got.err);
  assert.equal(got.out, readFileSync(join(dir, 'secret.txt'), 'utf8'));
  // The token names the enrolled AK and how it is trusted.
  const tok = await cli(['kbs-client', '--url', svc.url, 'attest', '--tee', 'tpm', '--swtpm', epA]);
  const sub = (decodeJwt(tok.out.trim()) as { submods: { cpu0: Record<string, unknown> } }).submods.cpu0;
  const platform = (sub['ear.veraison.annotated-evidence'] as { coffer: { platform: Record<string, string>; warnings: string[] } }).coffer;
  assert.equal(platform.platform.akTrust, 'enrolled');
  assert.equal(platform.platform.akId, akId);
  assert.equal(platform.platform.akAttester, 'node-a');
  assert.deepEqual(platform.warnings.filter((w) => w.startsWith('AK_')), []);
  // The attestation API too.
  const r = await attestApi((n) => devTpmEvidence(tpmA.port, n));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const list = (await (await admin('GET', '/v1/admin/tpm/aks')).json()) as { id: string; attester: string; revokedAt: string | null; ekCertIssuer: string }[];
  const rec = list.find((x) => x.id === akId)!;
  assert.equal(rec.attester, 'node-a');
  assert.equal(rec.revokedAt, null);
  assert.match(rec.ekCertIssuer, /swtpm-localca/);
  assert.equal((await fetch(`${svc.url}/v1/admin/tpm/aks`)).status, 401);
  assert.ok((await auditOf('tpm.activate')).some((a) => a.result === 'ok' && a.target === akId));
  // Enrolling the same AK again is idempotent: same id.
  const again = await cli(['kbs-client', '--url', svc.url, 'tpm-enrol', '--swtpm', epA, '--attester', 'node-a']);
  assert.equal(/enrolled AK (ak-[0-9a-f]+)/.exec(again.out)![1], akId);
});

test('happy path (ECC P-256 EK): MakeCredential with ECDH + KDFe, activated by the real TPM', { skip }, async () => {
  const c = new TpmClient(await SocketTransport.connect(tpmA.port));
  try {
    // An RSA AK this time, so the registry gets a new record (the ECC AK is enrolled already).
    const r = await enrolAk(c, { attester: 'node-a-ecc', ek: 'ecc', ak: 'rsa', post: httpEnrolPost(svc.url) });
    assert.match(r.akId, /^ak-/);
    const rec = (await (await admin('GET', `/v1/admin/tpm/aks/${r.akId}`)).json()) as { attester: string; fingerprint: string; ekCertSubject: string };
    assert.equal(rec.attester, 'node-a-ecc');
    assert.equal(rec.fingerprint, r.fingerprint);
    assert.match(rec.ekCertSubject, /coffer test ECC EK/);
  } finally {
    await c.close();
  }
  const events = await auditOf('tpm.enrol');
  assert.ok(events.some((a) => a.target === 'node-a-ecc' && a.result === 'challenged'));
});

/** The attacker's software AK: claims every AK attribute, signs a well-formed quote over the challenge. */
function forgedEvidence(reportData: Uint8Array) {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const n = new Uint8Array(Buffer.from(publicKey.export({ format: 'jwk' }).n!, 'base64url'));
  const akPub: TpmtPublic = { type: TPM_ALG.RSA, nameAlg: TPM_ALG.SHA256, objectAttributes: 0x00050072, authPolicy: new Uint8Array(0), symmetric: { alg: TPM_ALG.NULL }, scheme: { alg: TPM_ALG.RSASSA, hash: TPM_ALG.SHA256 }, keyBits: 2048, exponent: 0, modulus: n };
  const sel = selection([[TPM_ALG.SHA256, [0, 7]]]);
  const values = new Map([[TPM_ALG.SHA256, new Map([[0, new Uint8Array(32)], [7, new Uint8Array(32)]])]]);
  const quote = serializeAttest({
    magic: TPM_GENERATED_VALUE, type: TPM_ST.ATTEST_QUOTE, qualifiedSigner: new Uint8Array(34), extraData: reportData.length > 64 ? new Uint8Array(createHash('sha256').update(reportData).digest()) : reportData,
    clockInfo: { clock: 1n, resetCount: 0, restartCount: 0, safe: true }, firmwareVersion: 1n,
    attested: { kind: 'quote', pcrSelect: sel, pcrDigest: new Uint8Array(createHash('sha256').update(new Uint8Array(64)).digest()) },
  });
  const sig = serializeSignature({ sigAlg: TPM_ALG.RSASSA, hash: TPM_ALG.SHA256, sig: new Uint8Array(sign('sha256', quote, privateKey)) });
  const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
  return { quote: b64(quote), signature: b64(sig), ak: b64(serializePublic2b(akPub)), pcrs: b64(serializePcrsSerialized(sel, values)), akPub };
}

test('forged quote with an attacker software AK: TPM_AK_UNTRUSTED at /v1/attest and the KBS, nothing released, audited', { skip }, async () => {
  const r = await attestApi(async (n) => forgedEvidence(n));
  assert.equal(r.status, 422);
  assert.equal(r.body.errors![0].code, 'TPM_AK_UNTRUSTED');
  assert.equal(r.body.token, undefined);
  const kbs = new KbsClient(svc.url);
  await assert.rejects(kbs.attest('tpm', (rd) => forgedEvidence(rd)), (e: unknown) => e instanceof KbsClientError && /TPM_AK_UNTRUSTED/.test(e.message));
  await assert.rejects(kbs.getResource('default/key/one'), (e: unknown) => e instanceof KbsClientError && e.status === 401);
  assert.ok((await auditOf('attest')).some((a) => a.result === 'rejected' && a.details?.code === 'TPM_AK_UNTRUSTED'));
  assert.ok((await auditOf('kbs.attest')).some((a) => a.result === 'rejected' && /TPM_AK_UNTRUSTED/.test(String(a.details?.detail))));
  // The same software AK cannot be enrolled either: it has no EK certificate and no TPM to activate with;
  // under TPM A's certified EK, the credential is for a Name no TPM holds, so any answer is wrong.
  const c = new TpmClient(await SocketTransport.connect(tpmA.port));
  try {
    const ekCert = (await c.readEkCertificate('rsa'))!;
    const ek = await c.createEk('rsa');
    await c.flush(ek.handle);
    const post = httpEnrolPost(svc.url);
    const req = { ekCert: Buffer.from(ekCert).toString('base64'), ekPublic: Buffer.from(new ByteWriter().tpm2b(ek.publicBytes).finish()).toString('base64'), akPublic: forgedEvidence(new Uint8Array(8)).ak };
    // Under a new name TPM A's EK is refused before any challenge (it holds node-a); under its own name, activation decides.
    await assert.rejects(post('v1/tpm/enrol', { attester: 'mallory', ...req }), (e: unknown) => e instanceof TpmEnrolError && e.code === 'TPM_EK_BOUND' && e.status === 409);
    const ch = await post('v1/tpm/enrol', { attester: 'node-a', ...req });
    await assert.rejects(post('v1/tpm/activate', { challengeId: ch.challengeId, secret: randomBytes(32).toString('base64') }), (e: unknown) => e instanceof TpmEnrolError && e.code === 'TPM_ACTIVATION_FAILED' && e.status === 403);
  } finally {
    await c.close();
  }
});

test('an AK enrolled on TPM A does not vouch for quotes by TPM B', { skip }, async () => {
  const a = await devTpmEvidence(tpmA.port, new Uint8Array(32));
  // B's quote with A's enrolled AK attached: the signature is not A's.
  const swapped = await attestApi(async (n) => ({ ...(await devTpmEvidence(tpmB.port, n)), ak: a.ak }));
  assert.equal(swapped.status, 422);
  assert.equal(swapped.body.errors![0].code, 'TPM_SIGNATURE_INVALID');
  // B's quote with B's own (never enrolled) AK.
  const own = await attestApi((n) => devTpmEvidence(tpmB.port, n));
  assert.equal(own.status, 422);
  assert.equal(own.body.errors![0].code, 'TPM_AK_UNTRUSTED');
  const codes = (await auditOf('attest')).filter((a) => a.result === 'rejected').map((a) => a.details?.code);
  assert.ok(codes.includes('TPM_SIGNATURE_INVALID') && codes.includes('TPM_AK_UNTRUSTED'), JSON.stringify(codes));
});

test('credential activation answered by the wrong TPM fails, and the challenge is then spent', { skip }, async () => {
  // Mallory holds TPM B and wants B's AK registered under TPM A's certified EK (and A's name, the only one A's EK may use).
  const ca = new TpmClient(await SocketTransport.connect(tpmA.port));
  const cb = new TpmClient(await SocketTransport.connect(tpmB.port));
  try {
    const ekCertA = (await ca.readEkCertificate('rsa'))!;
    const ekA = await ca.createEk('rsa');
    await ca.flush(ekA.handle);
    const akB = await cb.createAk('ecc');
    const ekB = await cb.createEk('rsa');
    try {
      const post = httpEnrolPost(svc.url);
      const ch = await post('v1/tpm/enrol', {
        attester: 'node-a', ekCert: Buffer.from(ekCertA).toString('base64'), ekPublic: Buffer.from(new ByteWriter().tpm2b(ekA.publicBytes).finish()).toString('base64'),
        akPublic: Buffer.from(serializePublic2b(akB.public)).toString('base64'),
      });
      const blob = new Uint8Array(Buffer.from(String(ch.credentialBlob), 'base64'));
      const secret = new Uint8Array(Buffer.from(String(ch.encryptedSecret), 'base64'));
      // TPM B cannot unwrap a seed made for TPM A's EK.
      await assert.rejects(cb.activateCredential(akB.handle, ekB.handle, blob, secret), (e: unknown) => e instanceof TpmResponseError);
      await assert.rejects(post('v1/tpm/activate', { challengeId: ch.challengeId, secret: randomBytes(32).toString('base64') }), (e: unknown) => e instanceof TpmEnrolError && e.code === 'TPM_ACTIVATION_FAILED');
      await assert.rejects(post('v1/tpm/activate', { challengeId: ch.challengeId, secret: randomBytes(32).toString('base64') }), (e: unknown) => e instanceof TpmEnrolError && e.code === 'TPM_CHALLENGE_REPLAYED');
    } finally {
      await cb.flush(akB.handle);
      await cb.flush(ekB.handle);
    }
  } finally {
    await ca.close();
    await cb.close();
  }
  const rejected = (await auditOf('tpm.activate')).filter((a) => a.result === 'rejected').map((a) => a.details?.code);
  assert.ok(rejected.includes('TPM_ACTIVATION_FAILED') && rejected.includes('TPM_CHALLENGE_REPLAYED'), JSON.stringify(rejected));
});

test('a replayed activation (the right answer, sent twice) is refused; an unknown challenge too', { skip }, async () => {
  const c = new TpmClient(await SocketTransport.connect(tpmB.port));
  const answers: Record<string, unknown>[] = [];
  const post = httpEnrolPost(svc.url);
  try {
    await enrolAk(c, {
      attester: 'node-b', post: async (path, body) => {
        if (path.endsWith('activate')) answers.push(body as Record<string, unknown>);
        return post(path, body);
      },
    });
  } finally {
    await c.close();
  }
  await assert.rejects(post('v1/tpm/activate', answers[0]), (e: unknown) => e instanceof TpmEnrolError && e.code === 'TPM_CHALLENGE_REPLAYED' && e.status === 409);
  await assert.rejects(post('v1/tpm/activate', { challengeId: 'AAAAAAAAAAAAAAAA', secret: 'AAAA' }), (e: unknown) => e instanceof TpmEnrolError && e.code === 'TPM_CHALLENGE_UNKNOWN');
});

test('an EK certificate from a CA the operator did not configure is refused; no CA configured refuses all enrolment', { skip }, async () => {
  // Another service whose --tpm-ca-dir holds an unrelated CA.
  const other = join(dir, 'other-ca');
  mkdirSync(other);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'k.pem', '-out', 'root.pem', '-subj', '/CN=Other TPM Vendor Root', '-days', '30'], { cwd: other, stdio: 'pipe' });
  rmSync(join(other, 'k.pem'));
  for (const [name, caFlag, code] of [['other', other, 'TPM_EK_CHAIN_UNTRUSTED'], ['none', undefined, 'TPM_ENROLMENT_DISABLED']] as const) {
    const s2 = await startServices('up', { port: '0', host: '127.0.0.1', data: join(dir, `data-${name}`), pcsUrl: 'off', kdsUrl: 'off', swtpm: 'off', ...(caFlag ? { tpmCaDir: caFlag } : {}) }, captureContext(), {});
    try {
      const r = await cli(['kbs-client', '--url', s2.url, 'tpm-enrol', '--swtpm', epA]);
      assert.equal(r.code, 1, r.out + r.err);
      assert.match(r.err, new RegExp(`TPM enrolment refused: ${code}`));
      const tok = (await cli(['admin-token', '--data', join(dir, `data-${name}`)])).out.trim();
      const audit = (await (await fetch(`${s2.url}/v1/admin/audit?action=tpm.enrol`, { headers: { authorization: `Bearer ${tok}` } })).json()) as { result: string; details: { code: string } }[];
      assert.deepEqual(audit.map((a) => [a.result, a.details.code]), [['rejected', code]]);
      // A quote by TPM A's AK, enrolled on the first service, means nothing here.
      const ch = (await (await fetch(`${s2.url}/v1/challenge`, { method: 'POST' })).json()) as { nonce: string };
      const e = await devTpmEvidence(tpmA.port, new Uint8Array(Buffer.from(ch.nonce, 'base64')));
      const res = await fetch(`${s2.url}/v1/attest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tee: 'tpm', evidence: e.quote, attachments: { signature: e.signature, ak: e.ak, pcrs: e.pcrs }, nonce: ch.nonce }) });
      assert.equal(res.status, 422);
      assert.equal(((await res.json()) as { errors: { code: string }[] }).errors[0].code, 'TPM_AK_UNTRUSTED');
    } finally {
      await s2.stop();
    }
  }
});

test('an AK with bad attributes (not restricted, or not fixedTPM) is refused at enrolment with its code', { skip }, async () => {
  const c = new TpmClient(await SocketTransport.connect(tpmA.port));
  try {
    const ekCert = (await c.readEkCertificate('rsa'))!;
    const ek = await c.createEk('rsa');
    await c.flush(ek.handle);
    const post = httpEnrolPost(svc.url);
    const base = { attester: 'bad-attrs', ekCert: Buffer.from(ekCert).toString('base64'), ekPublic: Buffer.from(new ByteWriter().tpm2b(ek.publicBytes).finish()).toString('base64') };
    const { akPub } = forgedEvidence(new Uint8Array(8));
    for (const attrs of [0x00040072 /* no restricted */, 0x00050070 /* no fixedTPM */, 0x00050052 /* no sensitiveDataOrigin */, 0x00070072 /* + decrypt */]) {
      const akPublic = Buffer.from(serializePublic2b({ ...akPub, objectAttributes: attrs })).toString('base64');
      await assert.rejects(post('v1/tpm/enrol', { ...base, akPublic }), (e: unknown) => e instanceof TpmEnrolError && e.code === 'TPM_AK_BAD_ATTRIBUTES', `attributes 0x${attrs.toString(16)}`);
    }
    // The EK public must be the certified one.
    const otherEk = await c.createEk('ecc');
    await c.flush(otherEk.handle);
    await assert.rejects(post('v1/tpm/enrol', { ...base, ekPublic: Buffer.from(new ByteWriter().tpm2b(otherEk.publicBytes).finish()).toString('base64'), akPublic: forgedEvidence(new Uint8Array(8)).ak }), (e: unknown) => e instanceof TpmEnrolError && e.code === 'TPM_EK_MISMATCH');
  } finally {
    await c.close();
  }
  const codes = (await auditOf('tpm.enrol')).filter((a) => a.target === 'bad-attrs').map((a) => a.details?.code);
  assert.deepEqual(codes, ['TPM_AK_BAD_ATTRIBUTES', 'TPM_AK_BAD_ATTRIBUTES', 'TPM_AK_BAD_ATTRIBUTES', 'TPM_AK_BAD_ATTRIBUTES', 'TPM_EK_MISMATCH']);
});

test('a revoked AK is refused at attestation (TPM_AK_REVOKED, nothing released) and cannot be enrolled again', { skip }, async () => {
  const e = await cli(['kbs-client', '--url', svc.url, 'tpm-enrol', '--swtpm', epB, '--attester', 'node-b']);
  assert.equal(e.code, 0, e.err);
  const akId = /enrolled AK (ak-[0-9a-f]+)/.exec(e.out)![1];
  assert.equal((await attestApi((n) => devTpmEvidence(tpmB.port, n))).status, 200);
  assert.equal((await admin('DELETE', `/v1/admin/tpm/aks/${akId}`)).status, 204);
  assert.equal((await admin('DELETE', `/v1/admin/tpm/aks/${akId}`)).status, 404);
  const r = await attestApi((n) => devTpmEvidence(tpmB.port, n));
  assert.equal(r.status, 422);
  assert.equal(r.body.errors![0].code, 'TPM_AK_REVOKED');
  assert.ok((await auditOf('attest')).some((a) => a.result === 'rejected' && a.details?.code === 'TPM_AK_REVOKED'));
  const got = await cli(['kbs-client', '--url', svc.url, 'get-resource', '--tee', 'tpm', '--swtpm', epB, '--path', 'default/key/one']);
  assert.equal(got.code, 1);
  assert.match(got.err, /TPM_AK_REVOKED/);
  const again = await cli(['kbs-client', '--url', svc.url, 'tpm-enrol', '--swtpm', epB, '--attester', 'node-b']);
  assert.equal(again.code, 1);
  assert.match(again.err, /TPM_AK_REVOKED/);
  // Revoked while a challenge was out (enrolled, challenged, then revoked, then answered): still refused.
  const c = new TpmClient(await SocketTransport.connect(tpmB.port));
  try {
    const post = httpEnrolPost(svc.url);
    const first = await enrolAk(c, { attester: 'node-b-rsa', ak: 'rsa', post });
    const ekCert = (await c.readEkCertificate('rsa'))!;
    const ek = await c.createEk('rsa');
    const ak = await c.createAk('rsa');
    try {
      const ch = await post('v1/tpm/enrol', {
        attester: 'node-b-rsa', ekCert: Buffer.from(ekCert).toString('base64'), ekPublic: Buffer.from(new ByteWriter().tpm2b(ek.publicBytes).finish()).toString('base64'),
        akPublic: Buffer.from(serializePublic2b(ak.public)).toString('base64'),
      });
      const secret = await c.activateCredential(ak.handle, ek.handle, new Uint8Array(Buffer.from(String(ch.credentialBlob), 'base64')), new Uint8Array(Buffer.from(String(ch.encryptedSecret), 'base64')));
      // The AK's revocation while this second challenge is still open.
      assert.equal((await admin('DELETE', `/v1/admin/tpm/aks/${first.akId}`)).status, 204);
      await assert.rejects(post('v1/tpm/activate', { challengeId: ch.challengeId, secret: Buffer.from(secret).toString('base64') }), (e: unknown) => e instanceof TpmEnrolError && e.code === 'TPM_AK_REVOKED');
    } finally {
      await c.flush(ak.handle);
      await c.flush(ek.handle);
    }
  } finally {
    await c.close();
  }
  const view = (await (await admin('GET', `/v1/admin/tpm/aks/${akId}`)).json()) as { revokedAt: string | null; revokedBy: string };
  assert.ok(view.revokedAt);
  assert.ok((await auditOf('tpm.revoke')).some((a) => a.target === akId && a.result === 'ok'));
});

test('an activation challenge expires: the right answer after its lifetime is TPM_CHALLENGE_EXPIRED', { skip }, async () => {
  const clock = fakeClock();
  const { store, cleanup } = tempStore();
  const { app } = await buildAttestationApp({ store, adminKeys: [], tpmCaCerts: loadTpmCaDir(caDir), clock: clock.now });
  const c = new TpmClient(await SocketTransport.connect(tpmA.port));
  try {
    const post = async (path: string, body: unknown) => {
      const r = await app.inject({ method: 'POST', url: `/${path}`, payload: body as object });
      const j = r.json() as Record<string, unknown>;
      if (r.statusCode >= 400) throw new TpmEnrolError(String(j.code), String(j.detail), r.statusCode);
      return j;
    };
    await assert.rejects(
      enrolAk(c, { attester: 'slow', post: async (path, body) => {
        if (path.endsWith('activate')) clock.advance(5 * 60_000 + 1);
        return post(path, body);
      } }),
      (e: unknown) => e instanceof TpmEnrolError && e.code === 'TPM_CHALLENGE_EXPIRED',
    );
    assert.deepEqual((await store.listAudit({ action: 'tpm.activate' })).map((a) => [a.result, a.details?.code]), [['rejected', 'TPM_CHALLENGE_EXPIRED']]);
    assert.deepEqual(await store.listTpmAks(), []);
    // Housekeeping removes it; a late answer then finds no challenge at all.
    assert.equal(await store.purgeTpmChallenges(clock.now()), 1);
  } finally {
    await c.close();
    await app.close();
    await cleanup();
  }
});

test('intermediates: the attester may send them (ekChain); the operator may configure only the root', { skip }, async () => {
  const { store, cleanup } = tempStore();
  const rootOnly = join(dir, 'root-only');
  mkdirSync(rootOnly);
  writeFileSync(join(rootOnly, 'root.pem'), readFileSync(join(caDir, 'root.pem')));
  const { app } = await buildAttestationApp({ store, adminKeys: [], tpmCaCerts: loadTpmCaDir(rootOnly) });
  const issuer = readFileSync(join(caDir, 'issuer.pem'), 'utf8').replace(/-----[A-Z ]+-----|\s+/g, '');
  const c = new TpmClient(await SocketTransport.connect(tpmB.port));
  try {
    const post = (withChain: boolean) => async (path: string, body: unknown) => {
      const payload = path.endsWith('enrol') && withChain ? { ...(body as object), ekChain: [issuer] } : (body as object);
      const r = await app.inject({ method: 'POST', url: `/${path}`, payload });
      const j = r.json() as Record<string, unknown>;
      if (r.statusCode >= 400) throw new TpmEnrolError(String(j.code), String(j.detail), r.statusCode);
      return j;
    };
    await assert.rejects(enrolAk(c, { attester: 'no-chain', post: post(false) }), (e: unknown) => e instanceof TpmEnrolError && e.code === 'TPM_EK_CHAIN_UNTRUSTED');
    const ok = await enrolAk(c, { attester: 'with-chain', post: post(true) });
    assert.equal((await store.getTpmAk(ok.akId))?.attester, 'with-chain');
  } finally {
    await c.close();
    await app.close();
    await cleanup();
  }
});
