// DcapQuoteVerifier keeps the outcome of a frozen collateral set's own checks (its signers' chains, windows,
// revocation, issue dates) for the anchors and time they were made at. A batch repeats them for every quote; any
// other time, or another set, is checked again, and the warnings come out every time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { world } from '../../support/dcap-helpers.js';
import { DcapQuoteVerifier } from '../../../src/tee/dcap/verify-quote.js';
import { VerificationError, CollateralError } from '../../../src/tee/common/errors.js';
import type { DcapCollateral } from '../../../src/tee/dcap/collateral.js';

const DAY = 86_400_000;

function frozen(c: DcapCollateral): DcapCollateral {
  return Object.freeze({ ...c, certs: Object.freeze([...c.certs]) as Uint8Array[], crls: Object.freeze([...c.crls]) as Uint8Array[] });
}

test('the time is part of what is kept: a later time past the TCB info is COLLATERAL_EXPIRED, warnings repeat per quote', async () => {
  const w = await world();
  const nextUpdate = new Date(w.at.getTime() + 2 * DAY);
  const coll = frozen(await w.collateral('sgx', { tcbInfo: (s) => void (s.nextUpdate = nextUpdate) }));
  const v = new DcapQuoteVerifier();
  const quote = await w.quote({ tee: 'sgx', version: 3 });
  const run = async (at: Date) => {
    try {
      return (await v.verify(quote, 'sgx', { at, trustAnchors: w.trustAnchors, dcap: { collateral: coll } })).warnings;
    } catch (e) {
      if (e instanceof VerificationError || e instanceof CollateralError) return e.code;
      throw e;
    }
  };
  assert.deepEqual(await run(w.at), []);
  assert.deepEqual(await run(w.at), []);
  const late = new Date(nextUpdate.getTime() + DAY);
  assert.equal(await run(late), 'COLLATERAL_EXPIRED');
  assert.equal(await run(late), 'COLLATERAL_EXPIRED', 'a failure is checked again');
  const close = new Date(nextUpdate.getTime() - DAY / 2);
  const warned = await run(close);
  assert.ok(Array.isArray(warned) && warned.some((x) => /TCB info expires within a day/.test(x)), String(warned));
  assert.deepEqual(await run(close), warned, 'the same warnings for the next quote');
  assert.deepEqual(await run(w.at), [], 'and back to a time without warnings');
});

test('another collateral set (a revoked TCB signer) is checked on its own, after a good set passed', async () => {
  const w = await world();
  const v = new DcapQuoteVerifier();
  const quote = await w.quote({ tee: 'sgx', version: 3 });
  const good = frozen(await w.collateral('sgx'));
  const revoked = frozen(await w.collateral('sgx', { rootCrl: { revoked: [w.pki.tcbSigner.cert.serialNumber] } }));
  const run = async (coll: DcapCollateral) => {
    try {
      await v.verify(quote, 'sgx', { at: w.at, trustAnchors: w.trustAnchors, dcap: { collateral: coll } });
      return 'OK';
    } catch (e) {
      return (e as VerificationError).code;
    }
  };
  assert.equal(await run(good), 'OK');
  assert.equal(await run(revoked), 'TCB_SIGNING_CERT_REVOKED');
  assert.equal(await run(good), 'OK');
});

test('a platform\'s PCK chain checks are kept per time and CRL set: revocation, windows and CRL warnings still apply', async () => {
  const w = await world();
  const v = new DcapQuoteVerifier();
  const quote = await w.quote({ tee: 'sgx', version: 3 });
  const crlNext = new Date(w.at.getTime() + 2 * DAY);
  const good = frozen(await w.collateral('sgx', { pckCrl: { nextUpdate: crlNext } }));
  const revoked = frozen(await w.collateral('sgx', { pckCrl: { nextUpdate: crlNext, revoked: [w.sgxPck.cert.serialNumber] } }));
  const run = async (coll: DcapCollateral, at: Date) => {
    try {
      return (await v.verify(quote, 'sgx', { at, trustAnchors: w.trustAnchors, dcap: { collateral: coll } })).warnings;
    } catch (e) {
      return (e as VerificationError).code;
    }
  };
  assert.deepEqual(await run(good, w.at), []);
  assert.equal(await run(revoked, w.at), 'PCK_REVOKED');
  assert.deepEqual(await run(good, w.at), []);
  // The PCK CRL expiring within a day: warned for every quote.
  const close = new Date(crlNext.getTime() - DAY / 2);
  const warned = await run(good, close);
  assert.ok(Array.isArray(warned) && warned.some((x) => /CRL of '.*PCK Processor CA' expires within a day/.test(x)), String(warned));
  assert.deepEqual(await run(good, close), warned);
  // Past the PCK certificate's window: the chain's windows are checked again for the new time.
  assert.equal(await run(good, new Date(w.pki.to.getTime() + DAY)), 'PCK_CHAIN_INVALID');
  assert.deepEqual(await run(good, w.at), []);
});
