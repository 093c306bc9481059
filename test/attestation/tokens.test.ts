import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenIssuer } from '../../src/attestation/tokens.js';
import { tempStore } from '../support/service.js';

test('replicas on one store: a token from a replica that rotated verifies at the other; scheduled rotation by age', async () => {
  const ts = tempStore();
  try {
    const t0 = Date.now();
    const a = new TokenIssuer(ts.store, { issuer: 'iss' });
    const b = new TokenIssuer(ts.store, { issuer: 'iss' });
    await a.init(t0);
    await b.init(t0);
    assert.equal(a.activeKid, b.activeKid);
    await a.rotate(t0 + 1000);
    const tok = await a.sign({ x: 1 }, t0 + 1000);
    assert.equal((await b.verify(tok, t0 + 2000)).x, 1); // b reloads on the unknown kid
    assert.equal(await a.rotateIfOlderThan(3_600_000, t0 + 2000), false);
    assert.equal(await a.rotateIfOlderThan(3_600_000, t0 + 3_601_001), true);
    await assert.rejects(b.verify(tok, t0 + 3_601_001 + 400_000)); // expired, and its key is no longer published
    await assert.rejects(b.verify(`${tok.slice(0, -4)}AAAA`, t0 + 2000));
  } finally {
    await ts.cleanup();
  }
});
