// Azure-style vTPM-in-CVM node attestation end to end with a real swtpm. The test plays the paravisor (an RSA AK
// made persistent at 0x81000003; an HCL report written to NV 0x01400001 whose runtime data names that AK, with an
// SNP report signed by a generated AMD-like ARK/ASK/VCEK chain, or a TDREPORT) and IMDS on loopback (THIM's VCEK;
// /acc/tdquote over the DCAP test world). The agent reads the HCL report, quotes with the vTPM AK bound to (nonce,
// node name) and sends az-snp-vtpm / az-tdx-vtpm evidence to Coffer's real attestation app over HTTP → a token for
// that TEE naming the node. The attacker's HCL report binding another AK is refused.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { decodeJwt } from 'jose';
import type { FastifyInstance } from 'fastify';
import { buildAttestationApp } from '../../../src/attestation/index.js';
import { NodeAttester, NodeAttestError } from '../../../src/node/attest/node-attester.js';
import { AzVtpmEvidenceSource, AzVtpmError, AZ_AK_HANDLE, HCL_REPORT_NV_INDEX, hasHclReport, tdQuoteFromImds, vcekFromImds } from '../../../src/node/attest/az-vtpm.js';
import { serializeHclReport } from '../../../src/tee/azure/abi/hcl-report.js';
import { world } from '../../support/dcap-helpers.js';
import { SocketTransport, TpmClient } from '../../../src/node/tpm/index.js';
import { publicToKeyObject } from '../../../src/tee/tpm/abi/public.js';
import { jwkOf, otherAk, pki, snpComposite, SNP_AT } from '../../support/azure-composite.js';
import { fakeClock, tempStore } from '../../support/service.js';
import { startSwtpm, swtpmSkip, type Swtpm } from '../../support/swtpm.js';
import { waitFor } from '../../support/wait.js';

const skip = swtpmSkip;
const BIN = new URL('../../../bin/coffer.js', import.meta.url).pathname;
const NV_SIZE = 2048; // libtpms' largest NV index; Azure's SNP HCL blob is 2048 bytes too
const NODE = 'cvm-node-1';

let tpm: Swtpm;
let client: TpmClient;
let app: FastifyInstance;
let attestationUrl: string;
let cleanupStore: () => Promise<void>;
let imds: http.Server;
let imdsUrl: string;
let imdsHits = 0;
let controller: http.Server;
let controllerUrl: string;
const delivered: { token: string }[] = [];
let vcekPem = '';
let vtpmAk: KeyObject;

/** HCL runtime data naming `ak` as HCLAkPub (the older SNP layout: AK only, to fit the 2048-byte index). */
function runtimeData(ak: KeyObject): Uint8Array {
  return new Uint8Array(Buffer.from(JSON.stringify({ keys: [{ kid: 'HCLAkPub', key_ops: ['sign'], ...jwkOf(ak) }], 'vm-configuration': { 'secure-boot': true, 'tpm-enabled': true, vmUniqueId: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee' } })));
}

/** The paravisor's part: an HCL report whose SNP report binds runtime data naming `ak`, written to the NV index. */
async function writeHclReport(ak: KeyObject): Promise<void> {
  const c = snpComposite({ varData: runtimeData(ak), padTo: NV_SIZE });
  assert.equal(c.hcl.length, NV_SIZE);
  vcekPem = new X509Certificate(Buffer.from(c.vcek)).toString();
  await client.nvWrite(HCL_REPORT_NV_INDEX, c.hcl);
}

function listen(s: http.Server): Promise<string> {
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)));
}

before(async () => {
  if (skip) return;
  tpm = await startSwtpm();
  client = new TpmClient(await SocketTransport.connect(tpm.port));
  // The vTPM's AK: an RSA restricted signing key made persistent where Azure keeps it.
  const ak = await client.createAk('rsa');
  await client.evictControl(ak.handle, AZ_AK_HANDLE);
  await client.flush(ak.handle);
  vtpmAk = publicToKeyObject((await client.readPublic(AZ_AK_HANDLE)).public);
  await client.nvDefineSpace(HCL_REPORT_NV_INDEX, NV_SIZE);
  await writeHclReport(vtpmAk);

  const ts = tempStore();
  const clock = fakeClock(SNP_AT.getTime());
  // The service pins the generated ARK and has the ASK chain and ARK CRL as configured collateral (no KDS here).
  ({ app } = await buildAttestationApp({ store: ts.store, adminKeys: [], clock: clock.now, verifyOptions: { trustAnchors: pki.trustAnchors, snp: { certs: [pki.chainPem()], crls: [pki.crl()] } } }));
  attestationUrl = await app.listen({ port: 0, host: '127.0.0.1' });
  cleanupStore = ts.cleanup;
  // IMDS/THIM: GET /metadata/THIM/amd/certification with "Metadata: true" → {vcekCert, certificateChain}.
  imds = http.createServer((req, res) => {
    imdsHits++;
    if (req.url !== '/metadata/THIM/amd/certification' || req.headers.metadata !== 'true') return void res.writeHead(400).end();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ vcekCert: vcekPem, certificateChain: pki.chainPem(), tcbm: '0000000000000000' }));
  });
  imdsUrl = await listen(imds);
  // The node-trust controller's report endpoint: records what the agent delivers.
  controller = http.createServer((req, res) => {
    let b = '';
    req.on('data', (d) => (b += d));
    req.on('end', () => {
      const j = JSON.parse(b) as { token: string };
      delivered.push(j);
      const p = decodeJwt(j.token);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ tokenId: p.jti, expiresAt: new Date((p.exp ?? 0) * 1000).toISOString() }));
    });
  });
  controllerUrl = await listen(controller);
});

after(async () => {
  if (skip) return;
  await client?.close();
  await tpm?.stop();
  await app?.close();
  await cleanupStore?.();
  imds?.close();
  controller?.close();
});

test('agent on a vTPM-in-CVM node: HCL report + vTPM quote → /v1/attest → az-snp-vtpm token naming the node', { skip }, async () => {
  assert.equal(await hasHclReport(client), true, 'autodetection sees the HCL report index');
  const source = new AzVtpmEvidenceSource(client, { vcek: vcekFromImds(imdsUrl) });
  const attester = new NodeAttester({ nodeName: NODE, attestationUrl, controllerUrl, source });
  const r = await attester.attestOnce();
  assert.match(r.status, /^(affirming|warning)$/);
  const claims = decodeJwt(delivered.at(-1)!.token) as Record<string, any>;
  const sub = claims.submods['az-snp-vtpm'];
  assert.ok(sub, JSON.stringify(Object.keys(claims.submods)));
  assert.equal(sub['ear.veraison.annotated-evidence'].runtime_data_claims.node, NODE);
  assert.equal(r.tokenId, claims.jti);
  // A second round reuses the VCEK (THIM is asked once) and is bound to a fresh nonce.
  await attester.attestOnce();
  assert.equal(imdsHits, 1);
  assert.notEqual(decodeJwt(delivered.at(-1)!.token).eat_nonce, claims.eat_nonce);
});

test('attacker: an HCL report binding another AK is refused by the service (AZ_AK_NOT_BOUND); restored → accepted', { skip }, async () => {
  await writeHclReport(otherAk.publicKey);
  const attester = new NodeAttester({ nodeName: NODE, attestationUrl, controllerUrl, source: new AzVtpmEvidenceSource(client, { vcek: vcekFromImds(imdsUrl) }) });
  const n = delivered.length;
  await assert.rejects(attester.attestOnce(), (e: unknown) => e instanceof NodeAttestError && e.code === 'ATTEST_FAILED' && e.status === 422 && /AZ_AK_NOT_BOUND/.test(e.message));
  assert.equal(delivered.length, n, 'nothing reached the controller');
  await writeHclReport(vtpmAk);
  await attester.attestOnce();
  assert.equal(delivered.length, n + 1);
});

test('typed agent-side failures: no HCL index, no VCEK', { skip }, async () => {
  const bare = await startSwtpm();
  const c = new TpmClient(await SocketTransport.connect(bare.port));
  try {
    assert.equal(await hasHclReport(c), false);
    await assert.rejects(new AzVtpmEvidenceSource(c, { vcek: vcekFromImds(imdsUrl) }).collect(new Uint8Array(32)), (e: unknown) => e instanceof AzVtpmError && e.code === 'AZ_HCL_REPORT_MISSING');
  } finally {
    await c.close();
    await bare.stop();
  }
  await assert.rejects(vcekFromImds('http://127.0.0.1:1', { timeoutMs: 1000 })(), (e: unknown) => e instanceof AzVtpmError && e.code === 'AZ_VCEK_UNAVAILABLE');
  assert.throws(() => new AzVtpmEvidenceSource(client, { vcek: vcekFromImds(imdsUrl), pcrs: 25 }), (e: unknown) => e instanceof AzVtpmError && e.code === 'AZ_PCRS_UNSUPPORTED');
});

test('coffer agent attest --evidence auto detects the HCL report and attests as az-snp-vtpm (no enrolment)', { skip }, async () => {
  // swtpm's data socket serves one client at a time: hand it to the agent process.
  await client.close();
  const n = delivered.length;
  const child = spawn(process.execPath, [BIN, 'agent', 'attest', '--attestation-url', attestationUrl, '--controller-url', controllerUrl, '--node-name', NODE, '--swtpm', `127.0.0.1:${tpm.port}`, '--imds-url', imdsUrl, '--event-log', '/nonexistent', '--attest-interval', '60s'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  try {
    await waitFor('a token delivered', () => delivered.length > n, 30_000);
    assert.ok(decodeJwt(delivered.at(-1)!.token).submods && (decodeJwt(delivered.at(-1)!.token).submods as Record<string, unknown>)['az-snp-vtpm']);
    assert.match(stderr, /"event":"evidence","kind":"az-vtpm"/);
    assert.doesNotMatch(stderr, /enrolled/);
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
  } finally {
    child.kill('SIGKILL');
    client = new TpmClient(await SocketTransport.connect(tpm.port));
  }
});

test('coffer agent attest --evidence auto on a TPM without the HCL index (and no configfs-tsm) takes the enrolled-TPM path', { skip }, async () => {
  const bare = await startSwtpm();
  const child = spawn(process.execPath, [BIN, 'agent', 'attest', '--attestation-url', attestationUrl, '--controller-url', controllerUrl, '--node-name', 'plain-node', '--swtpm', `127.0.0.1:${bare.port}`, '--tsm-dir', '/nonexistent/tsm', '--attest-interval', '5s'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((res) => child.on('exit', () => res()));
  try {
    // This service has no TPM manufacturer CA: enrolment is refused and retried, never a crash.
    await waitFor('an enrolment attempt', () => /"event":"enrol_failed"/.test(stderr), 30_000);
    assert.match(stderr, /"event":"evidence","kind":"tpm"/);
    assert.equal(child.exitCode, null, 'still running');
  } finally {
    child.kill('SIGKILL');
    await exited;
    await bare.stop();
  }
});

test('TDX CVM: the HCL report holds a TDREPORT, IMDS turns it into a TD quote → az-tdx-vtpm token; another AK refused', { skip }, async () => {
  const w = await world();
  const t2 = await startSwtpm();
  const c = new TpmClient(await SocketTransport.connect(t2.port));
  const ts = tempStore();
  let app2: FastifyInstance | undefined;
  const quoted: Buffer[] = [];
  // IMDS /acc/tdquote: the TD quoting service signs a quote over the posted TDREPORT's REPORTDATA (offset 128).
  const tdImds = http.createServer((req, res) => {
    let b = '';
    req.on('data', (d) => (b += d));
    req.on('end', async () => {
      if (req.method !== 'POST' || req.url !== '/acc/tdquote') return void res.writeHead(404).end();
      const report = Buffer.from((JSON.parse(b) as { report: string }).report, 'base64url');
      quoted.push(report);
      const quote = await w.quote({ tee: 'tdx', version: 4, reportData: new Uint8Array(report.subarray(128, 192)) });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ quote: Buffer.from(quote).toString('base64url') }));
    });
  });
  const tdImdsUrl = await listen(tdImds);
  try {
    const ak = await c.createAk('rsa');
    await c.evictControl(ak.handle, AZ_AK_HANDLE);
    await c.flush(ak.handle);
    const akKey = publicToKeyObject((await c.readPublic(AZ_AK_HANDLE)).public);
    await c.nvDefineSpace(HCL_REPORT_NV_INDEX, NV_SIZE);
    const writeTdx = async (named: KeyObject) => {
      const varData = runtimeData(named);
      const tdreport = new Uint8Array(1024);
      tdreport.set(createHash('sha256').update(varData).digest(), 128);
      await c.nvWrite(HCL_REPORT_NV_INDEX, serializeHclReport({ reportType: 'tdx', hwReport: tdreport, varData, padTo: NV_SIZE }));
    };
    await writeTdx(akKey);
    ({ app: app2 } = await buildAttestationApp({ store: ts.store, adminKeys: [], clock: fakeClock(w.at.getTime()).now, verifyOptions: { trustAnchors: w.trustAnchors, dcap: { collateral: await w.collateral('tdx') } } }));
    const url2 = await app2.listen({ port: 0, host: '127.0.0.1' });
    const source = new AzVtpmEvidenceSource(c, { tdQuote: tdQuoteFromImds(tdImdsUrl) });
    const attester = new NodeAttester({ nodeName: 'tdx-node', attestationUrl: url2, controllerUrl, source });
    const r = await attester.attestOnce();
    assert.match(r.status, /^(affirming|warning)$/);
    const claims = decodeJwt(delivered.at(-1)!.token) as Record<string, any>;
    assert.equal(claims.submods['az-tdx-vtpm']['ear.veraison.annotated-evidence'].runtime_data_claims.node, 'tdx-node');
    assert.equal(quoted.length, 1);
    assert.equal(quoted[0].length, 1024, 'IMDS got the TDREPORT');
    await attester.attestOnce();
    assert.equal(quoted.length, 1, 'the TD quote is reused while the TDREPORT is unchanged');
    // The attacker's HCL report names another AK: a new TD quote, and the service refuses the AK.
    await writeTdx(otherAk.publicKey);
    await assert.rejects(attester.attestOnce(), (e: unknown) => e instanceof NodeAttestError && e.status === 422 && /AZ_AK_NOT_BOUND/.test(e.message));
    assert.equal(quoted.length, 2);
    // SNP-only configuration on a TDX CVM: a typed refusal, nothing sent.
    await assert.rejects(new AzVtpmEvidenceSource(c, { vcek: vcekFromImds(imdsUrl) }).collect(new Uint8Array(32)), (e: unknown) => e instanceof AzVtpmError && e.code === 'AZ_TD_QUOTE_UNAVAILABLE');
  } finally {
    await c.close();
    await t2.stop();
    await app2?.close();
    await ts.cleanup();
    tdImds.close();
  }
});
