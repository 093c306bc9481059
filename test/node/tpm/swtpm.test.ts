import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSwtpm, swtpmSkip, tpm2ToolsSkip, type Swtpm } from '../../support/swtpm.js';
import { vectorsSkip, readVector } from '../../support/vectors.js';
import { TpmClient, SocketTransport, TpmResponseError, TPM_RH, akTemplate, swtpmControl, SWTPM_CTRL, type LoadedKey } from '../../../src/node/tpm/index.js';
import { verifyEvidence, createVerifierRegistry } from '../../../src/index.js';
import { runCli } from '../../../src/cli/run.js';
import { TPM_ALG } from '../../../src/tee/tpm/abi/constants.js';
import { selection, serializePcrsSerialized, type PcrSelection } from '../../../src/tee/tpm/abi/pcrs.js';
import { serializePublic2b, publicToKeyObject, parsePublic2b, type EccPublic } from '../../../src/tee/tpm/abi/public.js';
import { toHex } from '../../../src/tee/common/hex.js';
import { parseEventLog } from '../../../src/tee/tpm/eventlog/parse.js';
import { EV } from '../../../src/tee/tpm/eventlog/types.js';
import type { AkTrust } from '../../../src/tee/tpm/verify/ak-trust.js';
import { makeCredential } from '../../../src/tee/tpm/verify/credential.js';

const skip = swtpmSkip;
const opensslSkip = spawnSync('openssl', ['version']).status === 0 ? false : 'openssl CLI not installed: test PKI cannot be made';
let tpm: Swtpm;
let client: TpmClient;
let dir: string;
const registry = createVerifierRegistry();

before(async () => {
  if (skip) return;
  tpm = await startSwtpm();
  client = new TpmClient(await SocketTransport.connect(tpm.port));
  await client.startup();
  dir = mkdtempSync(join(tmpdir(), 'coffer-tpm-test-'));
});

after(async () => {
  if (skip) return;
  await client.close();
  await tpm.stop();
  rmSync(dir, { recursive: true, force: true });
});

const SEL: PcrSelection[] = selection([[TPM_ALG.SHA256, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 23]]]);

async function withKey<T>(k: Promise<LoadedKey>, f: (k: LoadedKey) => Promise<T>): Promise<T> {
  const key = await k;
  try {
    return await f(key);
  } finally {
    await client.flush(key.handle);
  }
}

/** Quote with a fresh AK; returns everything a verifier needs, as the files tpm2-tools would write. */
async function quoteWith(kind: 'rsa' | 'ecc', nonce: Uint8Array, sel = SEL) {
  return withKey(client.createAk(kind), async (ak) => {
    const q = await client.quote(ak.handle, nonce, sel);
    const values = await client.pcrRead(sel);
    return { ak, q, values, pcrsFile: serializePcrsSerialized(sel, values), akFile: serializePublic2b(ak.public) };
  });
}

test('client: GetRandom, PCR_Read beyond 8 digests, PCR_Extend semantics, TPM_RC errors named', { skip }, async () => {
  assert.equal((await client.getRandom(16)).length, 16);
  const all = selection([[TPM_ALG.SHA256, [...Array(24).keys()]], [TPM_ALG.SHA1, [0, 16]]]);
  const before = await client.pcrRead(all);
  assert.equal(before.get(TPM_ALG.SHA256)!.size, 24);
  const d = createHash('sha256').update('coffer').digest();
  await client.pcrExtend(16, [{ alg: TPM_ALG.SHA256, digest: d }]);
  const after = await client.pcrRead(all);
  const expect = createHash('sha256').update(before.get(TPM_ALG.SHA256)!.get(16)!).update(d).digest();
  assert.equal(toHex(after.get(TPM_ALG.SHA256)!.get(16)!), expect.toString('hex'));
  // Only the banks given are extended.
  assert.deepEqual(after.get(TPM_ALG.SHA1)!.get(16), before.get(TPM_ALG.SHA1)!.get(16));
  await assert.rejects(client.flush(0x80000077), (e: unknown) => e instanceof TpmResponseError && e.code === "TPM_COMMAND_FAILED" && /^TPM_RC_(HANDLE|VALUE)$/.test(e.rcName) && /TPM2_FlushContext failed: TPM_RC_/.test(e.message));
  await assert.rejects(client.pcrExtend(16, [{ alg: TPM_ALG.SHA256, digest: new Uint8Array(31) }]), TpmResponseError);
});

test('power-on through the swtpm control channel (CMD_INIT), then TPM2_Startup; commands before it are refused', { skip }, async () => {
  const cold = await startSwtpm({ startupClear: false });
  const c = new TpmClient(await SocketTransport.connect(cold.port));
  try {
    // The TPM is off until CMD_INIT: the data channel refuses commands.
    await assert.rejects(c.getRandom(4));
    await c.close();
    assert.equal(await swtpmControl(cold.ctrlPort, SWTPM_CTRL.INIT, new Uint8Array(4)), 0);
    const on = new TpmClient(await SocketTransport.connect(cold.port));
    try {
      await assert.rejects(on.getRandom(4), (e: unknown) => e instanceof TpmResponseError && e.rcName === 'TPM_RC_INITIALIZE');
      await on.startup();
      await on.startup(); // already started: TPM_RC_INITIALIZE is absorbed
      assert.equal((await on.getRandom(8)).length, 8);
    } finally {
      await on.close();
    }
    assert.equal(await swtpmControl(cold.ctrlPort, SWTPM_CTRL.SHUTDOWN), 0);
  } finally {
    await c.close();
    await cold.stop();
  }
});

for (const kind of ['rsa', 'ecc'] as const) {
  test(`client quote (${kind} AK) with a nonce verifies through verifyEvidence()`, { skip }, async () => {
    await client.pcrExtend(23, [{ alg: TPM_ALG.SHA256, digest: createHash('sha256').update(kind).digest() }]);
    const nonce = new Uint8Array(await client.getRandom(32));
    const { ak, q, values, pcrsFile, akFile } = await quoteWith(kind, nonce);
    const r = await verifyEvidence({ evidence: q.attest, attachments: { signature: q.signatureBytes, ak: akFile, pcrs: pcrsFile } }, { nonce, registry });
    assert.equal(r.verified, true, JSON.stringify(r.errors));
    assert.equal(r.tee, 'tpm');
    const c = r.claims!;
    assert.equal(c.reportData, toHex(nonce));
    assert.equal(c.platform.akName, toHex(ak.name));
    for (const p of SEL[0].pcrs) assert.equal(c.measurements[`pcrsha256_${p}`], toHex(values.get(TPM_ALG.SHA256)!.get(p)!));
    assert.ok(c.warnings.some((w) => w.startsWith('AK_PINNED_BY_CALLER')));
    assert.equal((c.raw.signature as { alg: string }).alg, kind === 'rsa' ? 'RSASSA' : 'ECDSA');
  });
}

test('AK created under the EK (Create+Load with PolicySecret, as tpm2_createak) quotes and verifies', { skip }, async () => {
  await withKey(client.createEk('ecc'), async (ek) => {
    await withKey(client.createAkUnderEk(ek.handle, 'rsa'), async (ak) => {
      assert.deepEqual((await client.readPublic(ak.handle)).name, ak.name);
      const nonce = Uint8Array.from([0x51, 0x52]);
      const q = await client.quote(ak.handle, nonce, SEL);
      const pcrs = serializePcrsSerialized(SEL, await client.pcrRead(SEL));
      const r = await verifyEvidence({ evidence: q.attest, attachments: { signature: q.signatureBytes, ak: serializePublic2b(ak.public), pcrs } }, { registry, nonce });
      assert.equal(r.verified, true, JSON.stringify(r.errors));
      assert.equal(r.claims!.platform.akName, toHex(ak.name));
    });
  });
  // The EK's policy is enforced: a password session cannot authorize Create under it (no userWithAuth), TPM_RC named.
  await withKey(client.createEk('rsa'), async (ek) => {
    await assert.rejects(
      (client as unknown as { run: (...a: unknown[]) => Promise<unknown> }).run('Create', 0x153, [ek.handle], new Uint8Array(0), 1),
      (e: unknown) => e instanceof TpmResponseError && e.rcName === 'TPM_RC_AUTH_UNAVAILABLE' && /TPM2_Create failed: TPM_RC_AUTH_UNAVAILABLE/.test(e.message),
    );
  });
});

test('credential activation binds an AK to the EK: software MakeCredential, and tpm2_makecredential blobs', { skip }, async () => {
  await withKey(client.createEk('rsa'), async (ek) => {
    await withKey(client.createAkUnderEk(ek.handle, 'ecc'), async (ak) => {
      const secret = new TextEncoder().encode('coffer-activation-01');
      const cred = makeCredential(ek.public, ak.name, secret);
      assert.deepEqual(await client.activateCredential(ak.handle, ek.handle, cred.credentialBlob, cred.secret), secret);
      // A credential made for another key's name does not activate (the outer HMAC covers the AK name).
      const forOther = makeCredential(ek.public, Uint8Array.from([...ak.name.subarray(0, -1), ak.name[ak.name.length - 1] ^ 1]), secret);
      await assert.rejects(client.activateCredential(ak.handle, ek.handle, forOther.credentialBlob, forOther.secret), (e: unknown) => e instanceof TpmResponseError && e.rcName === 'TPM_RC_INTEGRITY');
      if (tpm2ToolsSkip) return;
      // tpm2_makecredential (offline, -T none) writes 0xBADCC0DE, version, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET.
      const d = mkdtempSync(join(dir, 'makecred-'));
      writeFileSync(join(d, 'ek.pub'), serializePublic2b(ek.public));
      writeFileSync(join(d, 'secret.bin'), secret);
      execFileSync('tpm2_makecredential', ['-T', 'none', '-u', 'ek.pub', '-s', 'secret.bin', '-n', toHex(ak.name), '-o', 'cred.out'], { cwd: d, stdio: 'pipe' });
      const out = new Uint8Array(readFileSync(join(d, 'cred.out')));
      assert.equal(Buffer.from(out.subarray(0, 4)).toString('hex'), 'badcc0de');
      const idLen = (out[8] << 8) | out[9];
      const blob = out.subarray(8, 10 + idLen);
      const encSecret = out.subarray(10 + idLen);
      assert.deepEqual(await client.activateCredential(ak.handle, ek.handle, blob, encSecret), secret);
    });
  });
});

test('credential activation with an ECC P-256 EK: software MakeCredential (ephemeral ECDH + KDFe) activates only for the named AK', { skip }, async () => {
  await withKey(client.createEk('ecc'), async (ek) => {
    await withKey(client.createAk('rsa'), async (ak) => {
      const secret = new TextEncoder().encode('coffer-activation-ecc');
      const cred = makeCredential(ek.public, ak.name, secret);
      assert.deepEqual(await client.activateCredential(ak.handle, ek.handle, cred.credentialBlob, cred.secret), secret);
      // Each credential uses a fresh ephemeral key: two encryptions of one secret differ.
      assert.notDeepEqual(makeCredential(ek.public, ak.name, secret).secret, cred.secret);
      const forOther = makeCredential(ek.public, Uint8Array.from([...ak.name.subarray(0, -1), ak.name[ak.name.length - 1] ^ 1]), secret);
      await assert.rejects(client.activateCredential(ak.handle, ek.handle, forOther.credentialBlob, forOther.secret), (e: unknown) => e instanceof TpmResponseError && e.rcName === 'TPM_RC_INTEGRITY');
      // A point that is not on the EK's curve is refused before any secret is derived.
      assert.equal(ek.public.type, TPM_ALG.ECC);
      const pub = ek.public as EccPublic;
      const bad: EccPublic = { ...pub, y: Uint8Array.from(pub.y, (b, i) => (i === 0 ? b ^ 1 : b)) };
      assert.throws(() => makeCredential(bad, ak.name, secret), /not a valid key|TPM_PUBLIC_MALFORMED/);
    });
  });
});

test('failure paths: wrong nonce, tampered PCR, wrong AK, flipped signature, truncated attest', { skip }, async () => {
  const nonce = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
  const { q, pcrsFile, akFile } = await quoteWith('rsa', nonce);
  const other = await withKey(client.createPrimary(TPM_RH.OWNER, akTemplate('rsa')), async (k) => serializePublic2b(k.public));
  const ecc = (await quoteWith('ecc', nonce)).akFile;
  const run = async (over: Partial<Record<'evidence' | 'signature' | 'ak' | 'pcrs', Uint8Array>>, n = nonce) => {
    const r = await verifyEvidence(
      { evidence: over.evidence ?? q.attest, attachments: { signature: over.signature ?? q.signatureBytes, ak: over.ak ?? akFile, pcrs: over.pcrs ?? pcrsFile } },
      { nonce: n, registry, tee: 'tpm' },
    );
    assert.equal(r.verified, false);
    return r.errors[0];
  };
  assert.equal((await run({}, Uint8Array.from([9, 9]))).code, 'NONCE_MISMATCH');
  const tampered = Uint8Array.from(pcrsFile);
  tampered[0x8c + 2 + 5] ^= 1; // first digest's 6th byte (serialized layout)
  assert.equal((await run({ pcrs: tampered })).code, 'TPM_PCR_DIGEST_MISMATCH');
  assert.equal((await run({ ak: other })).code, 'TPM_SIGNATURE_INVALID');
  assert.equal((await run({ ak: ecc })).code, 'TPM_SIGNATURE_INVALID');
  const flipped = Uint8Array.from(q.signatureBytes);
  flipped[flipped.length - 7] ^= 0x10;
  assert.equal((await run({ signature: flipped })).code, 'TPM_SIGNATURE_INVALID');
  assert.equal((await run({ evidence: q.attest.subarray(0, q.attest.length - 3) })).code, 'TRUNCATED');
  const tail = new Uint8Array(q.attest.length + 1);
  tail.set(q.attest);
  assert.equal((await run({ evidence: tail })).code, 'TRAILING_BYTES');
  // Without the signature or the AK the verifier fails closed.
  const noSig = await verifyEvidence({ evidence: q.attest, attachments: { ak: akFile } }, { registry, tee: 'tpm' });
  assert.equal(noSig.errors[0].code, 'TPM_SIGNATURE_MISSING');
  const noAk = await verifyEvidence({ evidence: q.attest, attachments: { signature: q.signatureBytes } }, { registry, tee: 'tpm' });
  assert.equal(noAk.errors[0].code, 'TPM_AK_MISSING');
  // Pinned AK that is not the one given.
  const pinnedOther = await verifyEvidence(
    { evidence: q.attest, attachments: { signature: q.signatureBytes, ak: akFile, pcrs: pcrsFile } },
    { registry, tpm: { akTrust: { kind: 'pinned', ak: other } satisfies AkTrust } },
  );
  assert.equal(pinnedOther.errors[0].code, 'TPM_AK_UNTRUSTED');
});

test('event log replayed into the TPM verifies; a different log is rejected naming the PCR', { skip: skip || vectorsSkip }, async () => {
  // Measure a real firmware log's SHA-256 digests into swtpm's PCRs, as firmware would have.
  const logBytes = readVector('tpm/go-tpm-tools_ubuntu-2404-amd-sevsnp.bin');
  const log = parseEventLog(logBytes);
  for (const ev of log.events) {
    if (ev.type === EV.NO_ACTION) continue;
    await client.pcrExtend(ev.pcr, ev.digests.filter((d) => d.alg === TPM_ALG.SHA256));
  }
  const nonce = Uint8Array.from([0xee, 0x01]);
  const { q, pcrsFile, akFile } = await quoteWith('ecc', nonce);
  const att = { signature: q.signatureBytes, ak: akFile, pcrs: pcrsFile };
  const ok = await verifyEvidence({ evidence: q.attest, attachments: { ...att, eventlog: logBytes } }, { registry, nonce });
  assert.equal(ok.verified, true, JSON.stringify(ok.errors));
  const ev = ok.claims!.raw.eventLog as { replayedPcrs: string[] };
  assert.ok(ev.replayedPcrs.includes('sha256:0') && ev.replayedPcrs.includes('sha256:14'));
  const bad = await verifyEvidence({ evidence: q.attest, attachments: { ...att, eventlog: readVector('tpm/go-tpm-tools_cos-101-amd-sev.bin') } }, { registry, nonce });
  assert.equal(bad.verified, false);
  assert.equal(bad.errors[0].code, 'TPM_EVENTLOG_MISMATCH');
  assert.match(bad.errors[0].message, /PCR sha256:\d+/);
  const malformed = await verifyEvidence({ evidence: q.attest, attachments: { ...att, eventlog: logBytes.subarray(0, 5000) } }, { registry, nonce });
  assert.equal(malformed.errors[0].code, 'EVENTLOG_MALFORMED');
});

function tools(args: string[], cwd: string): string {
  return execFileSync(args[0], args.slice(1), { cwd, env: { ...process.env, TPM2TOOLS_TCTI: tpm.tcti }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30000 });
}

/** swtpm serves one data connection at a time: let go of ours while tpm2-tools talks to the TPM. */
async function withToolsAccess(f: () => Promise<void>): Promise<void> {
  await client.close();
  try {
    await f();
  } finally {
    client = new TpmClient(await SocketTransport.connect(tpm.port));
  }
}

async function cli(argv: string[]) {
  let out = '';
  let err = '';
  const r = await runCli(argv, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code: r.kind === 'exit' ? r.code : -1, out, err };
}

test('cross-check: a tpm2-tools quote verifies with coffer verify --tee tpm (tss/pem AK, tss/plain signature)', { skip: skip || tpm2ToolsSkip }, async () => {
  await withToolsAccess(() => toolsQuotesVerify(mkdtempSync(join(dir, 'tools-'))));
});

async function toolsQuotesVerify(d: string): Promise<void> {
  const flush = () => tools(['tpm2_flushcontext', '-t'], d);
  for (const [alg, scheme] of [['rsa', 'rsassa'], ['ecc', 'ecdsa']] as const) {
    tools(['tpm2_createek', '-c', `ek-${alg}.ctx`, '-G', alg, '-u', `ek-${alg}.pub`], d);
    flush();
    tools(['tpm2_createak', '-C', `ek-${alg}.ctx`, '-c', `ak-${alg}.ctx`, '-G', alg, '-g', 'sha256', '-s', scheme, '-u', `ak-${alg}.pub`, '-n', `ak-${alg}.name`], d);
    flush();
    tools(['tpm2_quote', '-c', `ak-${alg}.ctx`, '-l', 'sha256:0,1,2,16,23+sha1:0,16', '-q', 'c0ffee01', '-m', `q-${alg}.msg`, '-s', `q-${alg}.sig`, '-o', `q-${alg}.pcrs`, '-g', 'sha256'], d);
    flush();
    tools(['tpm2_quote', '-c', `ak-${alg}.ctx`, '-l', 'sha256:0,16', '-q', 'c0ffee02', '-m', `p-${alg}.msg`, '-s', `p-${alg}.sig`, '-f', 'plain', '-o', `p-${alg}.values`, '-F', 'values', '-g', 'sha256'], d);
    flush();
    tools(['tpm2_readpublic', '-c', `ak-${alg}.ctx`, '-f', 'pem', '-o', `ak-${alg}.pem`], d);
    flush();
    tools(['tpm2_readpublic', '-c', `ak-${alg}.ctx`, '-f', 'tss', '-o', `ak-${alg}.tss`], d);
    flush();
    const f = (n: string) => join(d, n);
    for (const akf of [`ak-${alg}.pub`, `ak-${alg}.pem`, `ak-${alg}.tss`]) {
      const r = await cli(['verify', f(`q-${alg}.msg`), '--tee', 'tpm', '--signature', f(`q-${alg}.sig`), '--ak', f(akf), '--pcrs', f(`q-${alg}.pcrs`), '--nonce', 'c0ffee01', '--json']);
      assert.equal(r.code, 0, r.out + r.err);
      const line = JSON.parse(r.out);
      assert.equal(line.claims.reportData, 'c0ffee01');
      assert.ok(line.claims.measurements.pcrsha1_16 && line.claims.measurements.pcrsha256_23);
      if (!akf.endsWith('.pem')) assert.equal(line.claims.platform.akName, toHex(readFileSync(f(`ak-${alg}.name`))));
    }
    const plain = await cli(['verify', f(`p-${alg}.msg`), '--signature', f(`p-${alg}.sig`), '--ak', f(`ak-${alg}.pub`), '--pcrs', f(`p-${alg}.values`), '--nonce', 'c0ffee02']);
    assert.equal(plain.code, 0, plain.out + plain.err);
    assert.match(plain.out, /warning: AK_PINNED_BY_CALLER/);
    const wrong = await cli(['verify', f(`q-${alg}.msg`), '--tee', 'tpm', '--signature', f(`q-${alg}.sig`), '--ak', f(`ak-${alg}.pub`), '--pcrs', f(`p-${alg}.values`), '--nonce', 'c0ffee01']);
    assert.equal(wrong.code, 1);
  }
}

test('cross-check: a quote made by the Coffer client verifies with tpm2_checkquote', { skip: skip || tpm2ToolsSkip }, async () => {
  for (const kind of ['rsa', 'ecc'] as const) {
    const nonce = Uint8Array.from(Buffer.from(`coffer-${kind}`));
    const { ak, q, pcrsFile } = await quoteWith(kind, nonce);
    const d = mkdtempSync(join(dir, `checkquote-${kind}-`));
    writeFileSync(join(d, 'q.msg'), q.attest);
    writeFileSync(join(d, 'q.sig'), q.signatureBytes);
    writeFileSync(join(d, 'q.pcrs'), pcrsFile);
    writeFileSync(join(d, 'ak.pem'), publicToKeyObject(ak.public).export({ format: 'pem', type: 'spki' }));
    const args = ['-u', 'ak.pem', '-m', 'q.msg', '-s', 'q.sig', '-f', 'q.pcrs', '-g', 'sha256', '-q', toHex(nonce)];
    const ok = spawnSync('tpm2_checkquote', args, { cwd: d, encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    const bad = spawnSync('tpm2_checkquote', [...args.slice(0, -1), 'abcd'], { cwd: d, encoding: 'utf8' });
    assert.notEqual(bad.status, 0);
  }
});

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** A test CA (openssl CLI: no extra npm dependency) that certifies TPM public keys. */
function makeCa(d: string, name: string): { root: Uint8Array; certFor(pub2b: Uint8Array, cn: string): Uint8Array } {
  openssl(['req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-subj', `/CN=${name}`, '-days', '3650', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'], d);
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'csr.key', '-out', 'csr.pem', '-subj', '/CN=placeholder'], d);
  return {
    root: new Uint8Array(readFileSync(join(d, `${name}.pem`))),
    certFor(pub2b, cn) {
      writeFileSync(join(d, `${cn}.pub.pem`), publicToKeyObject(parsePublic2b(pub2b)).export({ format: 'pem', type: 'spki' }));
      openssl(['x509', '-req', '-in', 'csr.pem', '-CA', `${name}.pem`, '-CAkey', `${name}.key`, '-CAcreateserial', '-force_pubkey', `${cn}.pub.pem`, '-subj', `/CN=${cn}`, '-days', '365', '-out', `${cn}.crt`], d);
      return new Uint8Array(readFileSync(join(d, `${cn}.crt`)));
    },
  };
}

test('AK trust by certificate: AK certificate chain, and TPM2_Certify by a certified key', { skip: skip || opensslSkip }, async () => {
  const d = mkdtempSync(join(dir, 'pki-'));
  const ca = makeCa(d, 'coffer-test-tpm-ca');
  const otherCa = makeCa(mkdtempSync(join(dir, 'pki2-')), 'someone-else');
  const nonce = Uint8Array.from([7, 7, 7]);
  // 1) The AK itself is certified.
  const { q, pcrsFile, akFile } = await quoteWith('ecc', nonce);
  const akCert = ca.certFor(akFile, 'AK');
  const att = { signature: q.signatureBytes, ak: akFile, pcrs: pcrsFile };
  const trust = (roots: Uint8Array[]): AkTrust => ({ kind: 'certificate', chain: [akCert], roots });
  const good = await verifyEvidence({ evidence: q.attest, attachments: att }, { registry, nonce, tpm: { akTrust: trust([ca.root]) } });
  assert.equal(good.verified, true, JSON.stringify(good.errors));
  assert.equal(good.claims!.platform.akTrust, 'certificate');
  assert.ok(!good.claims!.warnings.some((w) => w.startsWith('AK_PINNED')));
  const untrusted = await verifyEvidence({ evidence: q.attest, attachments: att }, { registry, nonce, tpm: { akTrust: trust([otherCa.root]) } });
  assert.equal(untrusted.errors[0].code, 'TPM_AK_CHAIN_UNTRUSTED');
  const expired = await verifyEvidence({ evidence: q.attest, attachments: att }, { registry, nonce, at: new Date(Date.now() + 2 * 365 * 86400e3), tpm: { akTrust: trust([ca.root]) } });
  assert.equal(expired.errors[0].code, 'TPM_AK_CERT_EXPIRED');
  // A certificate for another key does not vouch for this AK.
  const wrongLeaf = await verifyEvidence({ evidence: q.attest, attachments: att }, { registry, nonce, tpm: { akTrust: { kind: 'certificate', chain: [otherCa.certFor(akFile, 'AK2')], roots: [ca.root] } } });
  assert.equal(wrongLeaf.verified, false);

  // 2) A certified identity key (a restricted ECC signing key in the owner hierarchy) certifies the AK (TPM2_Certify).
  await withKey(client.createPrimary(TPM_RH.OWNER, akTemplate('ecc')), async (iak) => {
    await withKey(client.createAk('rsa'), async (ak) => {
      const iakCert = ca.certFor(serializePublic2b(iak.public), 'IAK');
      const cert = await client.certify(ak.handle, iak.handle, Uint8Array.from([1]));
      const q2 = await client.quote(ak.handle, nonce, SEL);
      const pcrs2 = serializePcrsSerialized(SEL, await client.pcrRead(SEL));
      const akPub = serializePublic2b(ak.public);
      const certTrust: AkTrust = { kind: 'certificate', chain: [iakCert], roots: [ca.root], certify: { attest: cert.attest, signature: cert.signatureBytes } };
      const r = await verifyEvidence({ evidence: q2.attest, attachments: { signature: q2.signatureBytes, ak: akPub, pcrs: pcrs2 } }, { registry, nonce, tpm: { akTrust: certTrust } });
      assert.equal(r.verified, true, JSON.stringify(r.errors));
      // The same certification does not vouch for another key.
      const wrongAk = await verifyEvidence({ evidence: q.attest, attachments: att }, { registry, nonce, tpm: { akTrust: certTrust } });
      assert.equal(wrongAk.errors[0].code, 'TPM_AK_UNTRUSTED');
    });
  });
});
