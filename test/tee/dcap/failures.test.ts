import { test } from 'node:test';
import assert from 'node:assert/strict';
import { world, verifyQuote, codeOf } from '../../support/dcap-helpers.js';
import { parseQuote, serializeQuote } from '../../../src/tee/dcap/quote.js';

const DAY = 86_400_000;

async function expectCode(p: Promise<{ verified: boolean; errors: { code: string; message: string }[] }>, code: string) {
  const r = await p;
  assert.equal(r.verified, false, `expected rejection ${code}`);
  assert.equal(r.errors[0]?.code, code, r.errors[0]?.message);
  assert.ok(r.errors[0].message.length > 10);
}

test('baseline: generated SGX v3/v4 and TDX v4/v5 quotes verify UpToDate', async () => {
  const w = await world();
  for (const [tee, version] of [['sgx', 3], ['sgx', 4], ['tdx', 4], ['tdx', 5]] as const) {
    const r = await verifyQuote(w, await w.quote({ tee, version }), tee);
    assert.equal(r.verified, true, JSON.stringify(r.errors));
    assert.equal(r.tcbStatus, 'UpToDate');
  }
});

test('revoked PCK certificate is PCK_REVOKED', async () => {
  const w = await world();
  const q = await w.quote({ tee: 'sgx', version: 3 });
  const serial = w.sgxPck.cert.serialNumber;
  await expectCode(verifyQuote(w, q, 'sgx', { tweaks: { pckCrl: { revoked: [serial] } } }), 'PCK_REVOKED');
  // an unrelated serial on the CRL changes nothing
  const ok = await verifyQuote(w, q, 'sgx', { tweaks: { pckCrl: { revoked: ['0badc0de'] } } });
  assert.equal(ok.verified, true);
});

test('revoked PCK CA (root CRL) is CERT_REVOKED; revoked TCB signer is rejected', async () => {
  const w = await world();
  const q = await w.quote({ tee: 'tdx', version: 4 });
  await expectCode(verifyQuote(w, q, 'tdx', { tweaks: { rootCrl: { revoked: [w.pki.platformCa.cert.serialNumber] } } }), 'CERT_REVOKED');
  await expectCode(verifyQuote(w, q, 'tdx', { tweaks: { rootCrl: { revoked: [w.pki.tcbSigner.cert.serialNumber] } } }), 'TCB_SIGNING_CERT_REVOKED');
});

test('TCB info / QE identity validity windows: expired and not yet valid are COLLATERAL_EXPIRED', async () => {
  const w = await world();
  const q = await w.quote({ tee: 'sgx', version: 3 });
  const past = new Date(w.at.getTime() - 2 * DAY);
  const expired = (s: { issueDate: Date; nextUpdate: Date }) => {
    s.issueDate = new Date(past.getTime() - DAY);
    s.nextUpdate = past;
  };
  const future = (s: { issueDate: Date; nextUpdate: Date }) => {
    s.issueDate = new Date(w.at.getTime() + DAY);
    s.nextUpdate = new Date(w.at.getTime() + 30 * DAY);
  };
  await expectCode(verifyQuote(w, q, 'sgx', { tweaks: { tcbInfo: expired } }), 'COLLATERAL_EXPIRED');
  await expectCode(verifyQuote(w, q, 'sgx', { tweaks: { tcbInfo: future } }), 'COLLATERAL_EXPIRED');
  await expectCode(verifyQuote(w, q, 'sgx', { tweaks: { qeIdentity: expired } }), 'COLLATERAL_EXPIRED');
});

test('expired or not-yet-valid CRLs are CRL_EXPIRED', async () => {
  const w = await world();
  const q = await w.quote({ tee: 'sgx', version: 3 });
  const stale = { thisUpdate: new Date(w.at.getTime() - 40 * DAY), nextUpdate: new Date(w.at.getTime() - DAY) };
  await expectCode(verifyQuote(w, q, 'sgx', { tweaks: { pckCrl: stale } }), 'CRL_EXPIRED');
  await expectCode(verifyQuote(w, q, 'sgx', { tweaks: { rootCrl: stale } }), 'CRL_EXPIRED');
  const early = { thisUpdate: new Date(w.at.getTime() + DAY), nextUpdate: new Date(w.at.getTime() + 9 * DAY) };
  await expectCode(verifyQuote(w, q, 'sgx', { tweaks: { pckCrl: early } }), 'CRL_EXPIRED');
});

test('a CRL signed by the wrong key is CRL_SIGNATURE_INVALID', async () => {
  const w = await world();
  const q = await w.quote({ tee: 'sgx', version: 3 });
  // The processor CA's name with the platform CA's key: the CRL names the right issuer but is signed by another key.
  const forged = { ...w.pki.processorCa, keys: w.pki.platformCa.keys, priv: w.pki.platformCa.priv };
  await expectCode(verifyQuote(w, q, 'sgx', { tweaks: { pckCrl: { signer: forged } } }), 'CRL_SIGNATURE_INVALID');
});

test('verification time outside the certificate windows is PCK_CHAIN_INVALID', async () => {
  const w = await world();
  const q = await w.quote({ tee: 'sgx', version: 3 });
  await expectCode(verifyQuote(w, q, 'sgx', { at: new Date(w.pki.from.getTime() - DAY) }), 'PCK_CHAIN_INVALID');
  await expectCode(verifyQuote(w, q, 'sgx', { at: new Date(w.pki.to.getTime() + DAY) }), 'PCK_CHAIN_INVALID');
});

test('collateral for another FMSPC is FMSPC_MISMATCH; wrong PCE-ID or TEE id is TCB_INFO_MISMATCH', async () => {
  const w = await world();
  const q = await w.quote({ tee: 'sgx', version: 3 });
  await expectCode(verifyQuote(w, q, 'sgx', { tweaks: { tcbInfo: (s) => (s.fmspc = '00906ED50000') } }), 'FMSPC_MISMATCH');
  await expectCode(verifyQuote(w, q, 'sgx', { tweaks: { tcbInfo: (s) => (s.pceId = '0001') } }), 'TCB_INFO_MISMATCH');
  const tq = await w.quote({ tee: 'tdx', version: 4 });
  const asSgx = (s: { id: string; tdxModule?: unknown; tdxModuleIdentities?: unknown; levels: { tdx?: number[] }[] }) => {
    s.id = 'SGX';
    delete s.tdxModule;
    delete s.tdxModuleIdentities;
    for (const l of s.levels) delete l.tdx;
  };
  await expectCode(verifyQuote(w, tq, 'tdx', { tweaks: { tcbInfo: asSgx } }), 'TCB_INFO_MISMATCH');
});

test('bad collateral signatures: tampered TCB info / QE identity, rogue signer', async () => {
  const w = await world();
  const q = await w.quote({ tee: 'tdx', version: 4 });
  await expectCode(verifyQuote(w, q, 'tdx', { tweaks: { tamperTcbInfo: true } }), 'TCB_INFO_SIGNATURE_INVALID');
  await expectCode(verifyQuote(w, q, 'tdx', { tweaks: { tamperQeIdentity: true } }), 'QE_IDENTITY_SIGNATURE_INVALID');
  await expectCode(
    verifyQuote(w, q, 'tdx', { tweaks: { signer: w.pki.rogueSigner, tcbChain: [w.pki.rogueSigner, w.pki.rogueRoot] } }),
    'TCB_SIGNING_CHAIN_INVALID',
  );
  // A PCK key (chains to the root through the PCK CA) must not be able to sign collateral.
  await expectCode(
    verifyQuote(w, q, 'tdx', { tweaks: { signer: w.tdxPck, tcbChain: [w.tdxPck, w.pki.platformCa, w.pki.root] } }),
    'TCB_SIGNING_CHAIN_INVALID',
  );
});

test('quote signed by another key is QUOTE_SIGNATURE_INVALID; QE report signature and binding are checked', async () => {
  const w = await world();
  const good = parseQuote(await w.quote({ tee: 'sgx', version: 3 }));
  const flipSig = { ...good, signature: good.signature.map((b, i) => (i === 5 ? b ^ 1 : b)) };
  await expectCode(verifyQuote(w, serializeQuote(flipSig), 'sgx'), 'QUOTE_SIGNATURE_INVALID');
  const flipBody = { ...good, body: good.body.map((b, i) => (i === 100 ? b ^ 0x80 : b)) };
  await expectCode(verifyQuote(w, serializeQuote(flipBody), 'sgx'), 'QUOTE_SIGNATURE_INVALID');
  const flipQe = { ...good, qeReportSignature: good.qeReportSignature.map((b, i) => (i === 40 ? b ^ 1 : b)) };
  await expectCode(verifyQuote(w, serializeQuote(flipQe), 'sgx'), 'QE_REPORT_SIGNATURE_INVALID');
  await expectCode(verifyQuote(w, await w.quote({ tee: 'sgx', version: 3, badBinding: true }), 'sgx'), 'QE_REPORT_DATA_MISMATCH');
  // auth data changed after the QE signed: binding breaks
  const auth = { ...good, qeAuthData: new Uint8Array(32).fill(1) };
  await expectCode(verifyQuote(w, serializeQuote(auth), 'sgx'), 'QE_REPORT_DATA_MISMATCH');
});

test('PCK chain to an untrusted root is PCK_CHAIN_INVALID; the pinned Intel root is the default', async () => {
  const w = await world();
  const q = await w.quote({ tee: 'sgx', version: 3 });
  await expectCode(verifyQuote(w, q, 'sgx', { trustAnchors: [w.pki.rogueRoot.der] }), 'PCK_CHAIN_INVALID');
  await expectCode(verifyQuote(w, q, 'sgx', { trustAnchors: [] }), 'PCK_CHAIN_INVALID');
  // PEM anchors are accepted too
  const pem = new TextEncoder().encode(w.pki.root.pem);
  assert.equal((await verifyQuote(w, q, 'sgx', { trustAnchors: [pem] })).verified, true);
});

test('QE identity mismatches are QE_IDENTITY_MISMATCH', async () => {
  const w = await world();
  const q = await w.quote({ tee: 'sgx', version: 3 });
  await expectCode(verifyQuote(w, q, 'sgx', { tweaks: { qeIdentity: (s) => (s.mrsigner = 'ab'.repeat(32)) } }), 'QE_IDENTITY_MISMATCH');
  await expectCode(verifyQuote(w, q, 'sgx', { tweaks: { qeIdentity: (s) => (s.isvprodid = 9) } }), 'QE_IDENTITY_MISMATCH');
  await expectCode(verifyQuote(w, q, 'sgx', { tweaks: { qeIdentity: (s) => (s.attributes = '13000000000000000000000000000000') } }), 'QE_IDENTITY_MISMATCH');
  await expectCode(verifyQuote(w, q, 'sgx', { tweaks: { qeIdentity: (s) => (s.miscselect = '01000000') } }), 'QE_IDENTITY_MISMATCH');
  await expectCode(verifyQuote(w, q, 'sgx', { tweaks: { qeIdentity: (s) => (s.id = 'TD_QE') } }), 'QE_IDENTITY_MISMATCH');
});

test('missing collateral is COLLATERAL_MISSING naming what is missing', async () => {
  const w = await world();
  const q = await w.quote({ tee: 'sgx', version: 3 });
  const { verifyEvidence } = await import('../../../src/index.js');
  const r = await verifyEvidence(q, { at: w.at, trustAnchors: w.trustAnchors });
  assert.equal(codeOf(r), 'COLLATERAL_MISSING');
  assert.match(r.errors[0].message, /TCB info for SGX FMSPC 00A067110000/);
  const c = await w.collateral('sgx');
  const noCrl = await verifyEvidence(q, { at: w.at, trustAnchors: w.trustAnchors, dcap: { collateral: { ...c, crls: [c.crls[0]] } } });
  assert.equal(codeOf(noCrl), 'COLLATERAL_MISSING');
  assert.match(noCrl.errors[0].message, /no CRL issued by 'Intel SGX PCK Processor CA'/);
});

test('nonce binding through verifyEvidence', async () => {
  const w = await world();
  const nonce = new Uint8Array([1, 2, 3, 4]);
  const { createHash } = await import('node:crypto');
  const rd = new Uint8Array(64);
  rd.set(createHash('sha256').update(nonce).digest());
  const q = await w.quote({ tee: 'tdx', version: 4, reportData: rd });
  assert.equal((await verifyQuote(w, q, 'tdx', { nonce })).verified, true);
  await expectCode(verifyQuote(w, q, 'tdx', { nonce: new Uint8Array([9]) }), 'NONCE_MISMATCH');
});

test('a warm verifier still runs every per-quote check (cache hits never skip one)', async () => {
  const w = await world();
  const { createVerifierRegistry } = await import('../../../src/index.js');
  const registry = createVerifierRegistry();
  const q = await w.quote({ tee: 'sgx', version: 3 });
  assert.equal((await verifyQuote(w, q, 'sgx', { registry })).verified, true);
  const good = parseQuote(q);
  const bad = serializeQuote({ ...good, body: good.body.map((b, i) => (i === 320 ? b ^ 1 : b)) });
  await expectCode(verifyQuote(w, bad, 'sgx', { registry }), 'QUOTE_SIGNATURE_INVALID');
  await expectCode(verifyQuote(w, q, 'sgx', { registry, tweaks: { pckCrl: { revoked: [w.sgxPck.cert.serialNumber] } } }), 'PCK_REVOKED');
  await expectCode(verifyQuote(w, q, 'sgx', { registry, at: new Date(w.pki.to.getTime() + DAY) }), 'PCK_CHAIN_INVALID');
  assert.equal((await verifyQuote(w, q, 'sgx', { registry })).verified, true);
});

test('PCK certificates without a well-formed SGX extension are PCK_EXTENSION_INVALID', async () => {
  const w = await world();
  const { sgxExtensionDer } = await import('../../support/dcap-pki.js');
  const { SGX_FMSPC, PCK_COMPS } = await import('../../support/dcap-world.js');
  const tcb = { comps: PCK_COMPS, pceSvn: 13, fmspc: SGX_FMSPC };
  const good = sgxExtensionDer(tcb, false);
  const variants: (Uint8Array | null)[] = [
    null, // no SGX extension
    new Uint8Array([0x30, 0x00]), // empty SEQUENCE: every entry missing
    new Uint8Array(good.subarray(0, good.length - 3)), // truncated DER
    sgxExtensionDer({ ...tcb, fmspc: '00A0671100' }, false), // FMSPC of 5 bytes
  ];
  for (const extDer of variants) {
    const pck = await w.pki.issuePck('processor', tcb, { extDer });
    const q = await w.quote({ tee: 'sgx', version: 3, pck });
    await expectCode(verifyQuote(w, q, 'sgx'), 'PCK_EXTENSION_INVALID');
  }
});

test('signed but malformed TCB info / QE identity JSON is COLLATERAL_INVALID', async () => {
  const w = await world();
  const q = await w.quote({ tee: 'sgx', version: 3 });
  await expectCode(verifyQuote(w, q, 'sgx', { tweaks: { tcbInfo: (s) => (s.levels[0].status = 'Bogus') } }), 'COLLATERAL_INVALID');
  await expectCode(verifyQuote(w, q, 'sgx', { tweaks: { tcbInfo: (s) => (s.levels = []) } }), 'COLLATERAL_INVALID');
  await expectCode(verifyQuote(w, q, 'sgx', { tweaks: { tcbInfo: (s) => (s.fmspc = 'XYZ') } }), 'COLLATERAL_INVALID');
  await expectCode(verifyQuote(w, q, 'sgx', { tweaks: { qeIdentity: (s) => (s.levels = []) } }), 'COLLATERAL_INVALID');
  await expectCode(verifyQuote(w, q, 'sgx', { tweaks: { qeIdentity: (s) => (s.mrsigner = 'abcd') } }), 'COLLATERAL_INVALID');
});

test('bytes after the signature data: accepted like Intel QVL, with a warning when they are not zero padding', async () => {
  const { createDcapWorld } = await import('../../support/dcap-world.js');
  const { createVerifierRegistry, verifyEvidence } = await import('../../../src/index.js');
  const w = await createDcapWorld();
  const coll = await w.collateral('sgx');
  const q = await w.quote({ tee: 'sgx', version: 3 });
  const opts = { registry: createVerifierRegistry(), at: w.at, trustAnchors: w.trustAnchors, dcap: { collateral: coll } };
  const plain = await verifyEvidence(q, opts);
  assert.equal(plain.verified, true);
  assert.deepEqual(plain.claims!.warnings.filter((x) => /signature data/.test(x)), []);
  const junk = await verifyEvidence(new Uint8Array([...q, 0xde, 0xad, 0xbe, 0xef]), opts);
  assert.equal(junk.verified, true, JSON.stringify(junk.errors));
  assert.ok(junk.claims!.warnings.some((x) => /4 bytes after its signature data/.test(x)), junk.claims!.warnings.join('; '));
  const zeros = await verifyEvidence(new Uint8Array([...q, 0, 0, 0]), opts);
  assert.deepEqual(zeros.claims!.warnings.filter((x) => /signature data/.test(x)), []);
  // The signed part is still checked: a flipped byte inside the signature data is a rejection.
  const bad = new Uint8Array([...q, 1]);
  bad[q.length - 1] ^= 0xff;
  assert.equal((await verifyEvidence(bad, opts)).verified, false);
});
