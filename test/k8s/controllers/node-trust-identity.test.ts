// The token half of node identity: verifyNodeToken refuses a token whose evidence key is enrolled as another node,
// and TPM submods that cannot say who they are (old or foreign tokens). Tokens are signed here with a key the
// "service" publishes, so each case isolates one claim; the real service's tokens are in test/k8s/node-trust-identity.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { NodeTokenError, verifyNodeToken } from '../../../src/k8s/controllers/node-trust-token.js';

const ISS = 'https://attestation.test';
const AUD = 'coffer-node-trust';
const NOW = Date.parse('2026-12-01T10:00:00Z');
const { privateKey, publicKey } = await generateKeyPair('ES256');
const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'svc', alg: 'ES256' };

function submod(node: string, platform: Record<string, string> | undefined) {
  return {
    'ear.status': 'affirming',
    'ear.veraison.annotated-evidence': { tee: 'tpm', measurements: {}, ...(platform ? { platform } : {}), runtime_data_claims: { node } },
    'ear.veraison.policy-claims': { failures: [], warnings: [] },
  };
}

async function token(submods: Record<string, unknown>): Promise<string> {
  return new SignJWT({ submods, jti: `t-${Math.random()}` })
    .setProtectedHeader({ alg: 'ES256', kid: 'svc' })
    .setIssuer(ISS).setAudience(AUD).setIssuedAt(NOW / 1000).setExpirationTime(NOW / 1000 + 300)
    .sign(privateKey);
}

const verify = (t: string) => verifyNodeToken(t, { keys: [jwk] }, { issuer: ISS, audience: AUD, now: NOW });
const refused = (code: string, re: RegExp, node?: string) => (e: unknown) => e instanceof NodeTokenError && e.code === code && re.test(e.message) && e.node === node;

test('an enrolled AK speaks only for the node it is enrolled as', async () => {
  const own = await verify(await token({ tpm: submod('node-a', { akTrust: 'enrolled', akAttester: 'node-a', akId: 'ak-1' }) }));
  assert.equal(own.node, 'node-a');
  assert.deepEqual(own.tees[0].identity, { akTrust: 'enrolled', enrolledAs: 'node-a', akId: 'ak-1' });
  await assert.rejects(verify(await token({ tpm: submod('node-b', { akTrust: 'enrolled', akAttester: 'node-a', akId: 'ak-1' }) })), refused('TOKEN_NODE_IDENTITY', /\(ak-1\) is enrolled as node "node-a", but the token names node "node-b"/, 'node-b'));
  // Any submod with an enrolled name is held to it, whatever its TEE (a composite whose vTPM AK is enrolled).
  await assert.rejects(verify(await token({ 'az-snp-vtpm': submod('node-b', { akTrust: 'enrolled', akAttester: 'node-a' }) })), refused('TOKEN_NODE_IDENTITY', /enrolled as node "node-a"/, 'node-b'));
});

test('TPM submods that cannot say who they are: refused (fail closed)', async () => {
  // Enrolled, but the attester name is missing (a foreign or damaged token).
  await assert.rejects(verify(await token({ tpm: submod('node-b', { akTrust: 'enrolled', akId: 'ak-9' }) })), refused('TOKEN_NODE_IDENTITY', /enrolled but the token does not name the attester/, 'node-b'));
  // No AK trust at all: a token from a service that does not close AK trust.
  for (const platform of [undefined, { akFingerprint: 'ab'.repeat(32) }]) {
    await assert.rejects(verify(await token({ tpm: submod('node-b', platform) })), refused('TOKEN_NODE_IDENTITY', /does not say how the AK was trusted/, 'node-b'));
  }
  // Non-string claims are absent claims, not a pass.
  await assert.rejects(verify(await token({ tpm: submod('node-b', { akTrust: 'enrolled', akAttester: 7 as never }) })), refused('TOKEN_NODE_IDENTITY', /does not name the attester/, 'node-b'));
});

test('unbound identities pass the token check and are left to the policy (requireEnrolledIdentity)', async () => {
  const pinned = await verify(await token({ tpm: submod('node-b', { akTrust: 'pinned' }) }));
  assert.deepEqual(pinned.tees[0].identity, { akTrust: 'pinned' });
  const az = await verify(await token({ 'az-snp-vtpm': submod('node-b', { akTrust: 'tee-report', akBoundBy: 'HCL report' }) }));
  assert.deepEqual(az.tees[0].identity, { akTrust: 'tee-report' });
  const snp = await verify(await token({ snp: submod('node-b', { productLine: 'Milan' }) }));
  assert.deepEqual(snp.tees[0].identity, {});
});
