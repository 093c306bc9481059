/**
 * Intel's certificate/CRL profile (QVL X509Constants / CommonVerifier / PckCrlVerifier) on the test PKI: each
 * departure from it (wrong role name, CA flags, pathLen, keyUsage, key identifiers, critical extensions,
 * algorithms, CRL version/number/AKI, PCK CRL type) is a typed rejection with its own code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { px509 } from '../../support/x509-lib.js';
import { world, verifyQuote } from '../../support/dcap-helpers.js';
import { CN, type CertVariant, type CrlOptions, type Party } from '../../support/dcap-pki.js';
import { PCK_COMPS, PCK_PCESVN, SGX_FMSPC } from '../../support/dcap-world.js';
import { verifyEvidence, createVerifierRegistry, type VerificationResult } from '../../../src/index.js';

const KU = px509.KeyUsageFlags;

function expectCode(r: VerificationResult, code: string, msg?: RegExp) {
  assert.equal(r.verified, false, `expected rejection ${code}`);
  assert.equal(r.errors[0]?.code, code, r.errors[0]?.message);
  if (msg) assert.match(r.errors[0].message, msg);
}

interface Scenario {
  root?: Party;
  ca?: Party;
  pck?: Party;
  signer?: Party;
  pckCrl?: CrlOptions;
  rootCrl?: CrlOptions;
}

/** An SGX v3 quote whose PCK chain / TCB signer / CRLs are the given (default: the world's) parties. */
async function run(s: Scenario): Promise<VerificationResult> {
  const w = await world();
  const root = s.root ?? w.pki.root;
  const ca = s.ca ?? w.pki.processorCa;
  const pck = s.pck ?? (s.ca ? await w.pki.issuePck(ca, { comps: PCK_COMPS, pceSvn: PCK_PCESVN, fmspc: SGX_FMSPC }) : w.sgxPck);
  const signer = s.signer ?? w.pki.tcbSigner;
  const q = await w.quote({ tee: 'sgx', version: 3, pck, pckChain: [ca, root] });
  const c = await w.collateral('sgx', { signer, tcbChain: [signer, root], pckCrl: { signer: ca, ...s.pckCrl } });
  const collateral = { ...c, certs: [...c.certs, ca.der, root.der], crls: [await w.pki.crl(root, s.rootCrl), c.crls[1]] };
  return verifyEvidence(q, { registry: createVerifierRegistry(), at: w.at, trustAnchors: [root.der], dcap: { collateral } });
}

async function ca(variant: CertVariant = {}, cn = CN.processorCa, issuer?: Party): Promise<Party> {
  const w = await world();
  return w.pki.issueCert(issuer ?? w.pki.root, cn, { ca: true, variant });
}
async function leaf(issuer: Party, variant: CertVariant = {}, cn = CN.pck): Promise<Party> {
  const w = await world();
  return w.pki.issuePck(issuer, { comps: PCK_COMPS, pceSvn: PCK_PCESVN, fmspc: SGX_FMSPC }, { variant, cn });
}

test('baseline: the scenario builder verifies with an Intel-profiled chain', async () => {
  const r = await run({ ca: await ca() });
  assert.equal(r.verified, true, JSON.stringify(r.errors));
});

test('role names (Intel-rooted chains): PCK leaf, PCK CA, TCB signer and root common names are CERT_ROLE_MISMATCH', async () => {
  const w = await world();
  expectCode(await run({ pck: await leaf(w.pki.processorCa, {}, CN.tcbSigning) }), 'CERT_ROLE_MISMATCH', /PCK certificate subject common name is 'Intel SGX TCB Signing'/);
  expectCode(await run({ ca: await ca({}, 'Intel SGX Intermediate CA') }), 'CERT_ROLE_MISMATCH', /PCK CA subject/);
  expectCode(await run({ signer: await w.pki.issueCert(w.pki.root, CN.pck, { ca: false }) }), 'CERT_ROLE_MISMATCH', /TCB signing certificate subject/);
  // A CA named like the TCB signer, issuing the PCK: still the wrong role.
  expectCode(await run({ ca: await ca({}, CN.tcbSigning) }), 'CERT_ROLE_MISMATCH');
});

test('role names apply only under an Intel-named root: a differently named anchor with a well-formed chain verifies', async () => {
  const w = await world();
  const root = await w.pki.issueCert(undefined, 'Example Root CA', { ca: true });
  const c = await ca({}, 'Example PCK Processor CA', root);
  const signer = await w.pki.issueCert(root, 'Example TCB Signer', { ca: false });
  const r = await run({ root, ca: c, signer });
  assert.equal(r.verified, true, JSON.stringify(r.errors));
  // ... but its extensions are still checked.
  const noKu = await ca({ keyUsage: KU.keyCertSign }, 'Example PCK Processor CA', root);
  expectCode(await run({ root, ca: noKu, signer }), 'CERT_KEY_USAGE_INVALID');
});

test('PCK CRL from the other PCK CA (platform vs processor) is PCK_CRL_MISMATCH', async () => {
  const w = await world();
  const q = await w.quote({ tee: 'sgx', version: 3 });
  const r = await verifyQuote(w, q, 'sgx', { tweaks: { pckCrl: { signer: w.pki.platformCa } } });
  expectCode(r, 'PCK_CRL_MISMATCH', /issued by 'Intel SGX PCK Processor CA' but the collateral's PCK CRL is issued by 'Intel SGX PCK Platform CA'/);
});

test('basicConstraints: CA:TRUE leaf, non-CA or unconstrained issuer, exceeded pathLen are CERT_BASIC_CONSTRAINTS_INVALID', async () => {
  const w = await world();
  expectCode(await run({ pck: await leaf(w.pki.processorCa, { basicConstraints: 'flip' }) }), 'CERT_BASIC_CONSTRAINTS_INVALID', /leaf .* CA:TRUE/);
  expectCode(await run({ pck: await leaf(w.pki.processorCa, { basicConstraints: 'omit' }) }), 'CERT_BASIC_CONSTRAINTS_INVALID', /no basicConstraints/);
  expectCode(await run({ ca: await ca({ basicConstraints: 'flip' }) }), 'CERT_BASIC_CONSTRAINTS_INVALID', /not CA:TRUE/);
  expectCode(await run({ ca: await ca({ basicConstraints: 'omit' }) }), 'CERT_BASIC_CONSTRAINTS_INVALID');
  // A root allowing no intermediate CA (pathlen 0) cannot anchor leaf → PCK CA → root.
  const root0 = await w.pki.issueCert(undefined, CN.root, { ca: true, variant: { pathLen: 0 } });
  const signer = await w.pki.issueCert(root0, CN.tcbSigning, { ca: false });
  expectCode(await run({ root: root0, ca: await ca({}, CN.processorCa, root0), signer }), 'CERT_BASIC_CONSTRAINTS_INVALID', /allows 0 intermediate/);
});

test('keyUsage: leaves need digitalSignature, CAs keyCertSign and cRLSign (CERT_KEY_USAGE_INVALID)', async () => {
  const w = await world();
  expectCode(await run({ pck: await leaf(w.pki.processorCa, { keyUsage: KU.nonRepudiation }) }), 'CERT_KEY_USAGE_INVALID', /digitalSignature/);
  expectCode(await run({ pck: await leaf(w.pki.processorCa, { keyUsage: 'omit' }) }), 'CERT_KEY_USAGE_INVALID', /no keyUsage/);
  expectCode(await run({ ca: await ca({ keyUsage: KU.keyCertSign }) }), 'CERT_KEY_USAGE_INVALID', /keyCertSign and cRLSign/);
  expectCode(await run({ signer: await w.pki.issueCert(w.pki.root, CN.tcbSigning, { ca: false, variant: { keyUsage: KU.keyEncipherment } }) }), 'CERT_KEY_USAGE_INVALID');
});

test('authorityKeyIdentifier not matching the issuer SKI is CERT_KEY_ID_MISMATCH', async () => {
  const w = await world();
  expectCode(await run({ pck: await leaf(w.pki.processorCa, { aki: '00'.repeat(20) }) }), 'CERT_KEY_ID_MISMATCH');
  expectCode(await run({ ca: await ca({ aki: 'ab'.repeat(20) }) }), 'CERT_KEY_ID_MISMATCH');
});

test('a critical extension the verifier does not understand (private OID, nameConstraints) is CERT_UNKNOWN_CRITICAL_EXTENSION', async () => {
  const w = await world();
  expectCode(await run({ pck: await leaf(w.pki.processorCa, { criticalExt: '1.3.6.1.4.1.99999.1' }) }), 'CERT_UNKNOWN_CRITICAL_EXTENSION', /1\.3\.6\.1\.4\.1\.99999\.1/);
  expectCode(await run({ ca: await ca({ criticalExt: '2.5.29.30' }) }), 'CERT_UNKNOWN_CRITICAL_EXTENSION');
});

test('signature algorithms other than ecdsa-with-SHA256 on P-256 are CERT_ALGORITHM_UNSUPPORTED / CRL_ALGORITHM_UNSUPPORTED', async () => {
  const w = await world();
  expectCode(await run({ pck: await leaf(w.pki.processorCa, { hash: 'SHA-384' }) }), 'CERT_ALGORITHM_UNSUPPORTED', /ecdsa-with-SHA256/);
  expectCode(await run({ ca: await ca({ curve: 'P-384' }) }), 'CERT_ALGORITHM_UNSUPPORTED', /P-256/);
  expectCode(await run({ signer: await w.pki.issueCert(w.pki.root, CN.tcbSigning, { ca: false, variant: { hash: 'SHA-384' } }) }), 'CERT_ALGORITHM_UNSUPPORTED');
  // A P-384 TCB signer (its TCB info signature then 96 bytes): refused by algorithm, not merely as a bad signature.
  expectCode(await run({ signer: await w.pki.issueCert(w.pki.root, CN.tcbSigning, { ca: false, variant: { curve: 'P-384' } }) }), 'CERT_ALGORITHM_UNSUPPORTED', /P-256/);
  expectCode(await run({ pckCrl: { hash: 'SHA-384' } }), 'CRL_ALGORITHM_UNSUPPORTED');
  expectCode(await run({ rootCrl: { hash: 'SHA-384' } }), 'CRL_ALGORITHM_UNSUPPORTED');
});

test('CRLs: AKI not the issuer SKI, no CRL number, critical or delta extensions are rejected', async () => {
  expectCode(await run({ pckCrl: { aki: '00'.repeat(20) } }), 'CRL_KEY_ID_MISMATCH');
  expectCode(await run({ rootCrl: { aki: '11'.repeat(20) } }), 'CRL_KEY_ID_MISMATCH');
  expectCode(await run({ pckCrl: { number: null } }), 'CRL_VERSION_INVALID', /no CRL number/);
  expectCode(await run({ pckCrl: { v1: true } }), 'CRL_VERSION_INVALID', /not a version 2 CRL/);
  expectCode(await run({ pckCrl: { nextUpdate: null } }), 'CRL_INVALID', /no nextUpdate/);
  expectCode(await run({ rootCrl: { v1: true } }), 'CRL_VERSION_INVALID', /not a version 2 CRL/);
  expectCode(await run({ pckCrl: { criticalExt: '1.3.6.1.4.1.99999.2' } }), 'CRL_UNKNOWN_CRITICAL_EXTENSION');
  expectCode(await run({ pckCrl: { criticalExt: '2.5.29.27' } }), 'CRL_UNKNOWN_CRITICAL_EXTENSION', /delta CRL/);
  // AKI is optional (checked where present), CRL number any non-negative value.
  assert.equal((await run({ pckCrl: { aki: null, number: 4242 } })).verified, true);
});

test('QE identity id: a TDX quote needs TD_QE, an SGX quote QE (QE_IDENTITY_MISMATCH)', async () => {
  const w = await world();
  const tq = await w.quote({ tee: 'tdx', version: 4 });
  expectCode(await verifyQuote(w, tq, 'tdx', { tweaks: { qeIdentity: (s) => (s.id = 'QE') } }), 'QE_IDENTITY_MISMATCH', /needs TD_QE/);
  const sq = await w.quote({ tee: 'sgx', version: 3 });
  expectCode(await verifyQuote(w, sq, 'sgx', { tweaks: { qeIdentity: (s) => (s.id = 'TD_QE') } }), 'QE_IDENTITY_MISMATCH', /needs QE/);
});

test('QE identity masks: bits outside MISCSELECT/ATTRIBUTES masks are ignored, bits inside are compared', async () => {
  const w = await world();
  const q = await w.quote({ tee: 'sgx', version: 3 });
  // The QE report has ATTRIBUTES byte 0 = 0x11. With the mask clearing bit 4 the expected value 0x01 matches.
  const masked = await verifyQuote(w, q, 'sgx', { tweaks: { qeIdentity: (s) => ((s.attributes = '01' + '00'.repeat(15)), (s.attributesMask = 'EF' + 'FF'.repeat(7) + '00'.repeat(8))) } });
  assert.equal(masked.verified, true, JSON.stringify(masked.errors));
  expectCode(await verifyQuote(w, q, 'sgx', { tweaks: { qeIdentity: (s) => (s.attributes = '01' + '00'.repeat(15)) } }), 'QE_IDENTITY_MISMATCH', /ATTRIBUTES/);
  const miscOff = await verifyQuote(w, q, 'sgx', { tweaks: { qeIdentity: (s) => ((s.miscselect = '00000000'), (s.miscselectMask = '00000000')) } });
  assert.equal(miscOff.verified, true, JSON.stringify(miscOff.errors));
  expectCode(await verifyQuote(w, q, 'sgx', { tweaks: { qeIdentity: (s) => (s.mrsigner = '00'.repeat(32)) } }), 'QE_IDENTITY_MISMATCH', /MRSIGNER/);
  expectCode(await verifyQuote(w, q, 'sgx', { tweaks: { qeIdentity: (s) => (s.isvprodid = 2) } }), 'QE_IDENTITY_MISMATCH', /ISVPRODID/);
});

test('caching: a profile failure is never cached as a pass; a bad chain is rejected on every call beside good ones', async () => {
  const w = await world();
  const badCa = await ca({ keyUsage: KU.keyCertSign });
  for (let i = 0; i < 3; i++) {
    expectCode(await run({ ca: badCa }), 'CERT_KEY_USAGE_INVALID');
    assert.equal((await verifyQuote(w, await w.quote({ tee: 'sgx', version: 3 }), 'sgx')).verified, true);
  }
});

test('a root listed on its own CRL is CERT_REVOKED', async () => {
  const w = await world();
  expectCode(await run({ rootCrl: { revoked: [w.pki.root.cert.serialNumber] } }), 'CERT_REVOKED', /root certificate 'Intel SGX Root CA'/);
  expectCode(await run({ rootCrl: { revoked: [w.pki.processorCa.cert.serialNumber] } }), 'CERT_REVOKED', /Intel SGX PCK Processor CA/);
});
