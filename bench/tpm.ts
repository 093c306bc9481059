/**
 * bench:tpm — warm TPM quote verifications per second through verifyEvidenceWith() (parse TPMS_ATTEST, AK
 * lookup, signature, nonce, PCR digest over 18 PCRs from a tpm2-tools-format file), for RSA-2048 and ECDSA P-256
 * AKs, against the raw node:crypto verify of the same signature with the same key in the same run.
 * Quotes come from a real swtpm when installed (via Coffer's TPM client), else from a software signer with the
 * identical wire format. Bounded: ~5 s per key type (floor and Coffer interleaved in 100 ms slices), ~11 s in all.
 */
import { spawnSync } from 'node:child_process';
import { constants, generateKeyPairSync, sign, verify, createHash, type KeyObject } from 'node:crypto';
import { createVerifierRegistry, verifyEvidenceWith } from '../src/index.js';
import { TPM_ALG, TPM_GENERATED_VALUE, TPM_ST } from '../src/tee/tpm/abi/constants.js';
import { serializeAttest } from '../src/tee/tpm/abi/attest.js';
import { serializeSignature, parseSignature } from '../src/tee/tpm/abi/signature.js';
import { parseAkPublic, serializePublic2b, type TpmtPublic } from '../src/tee/tpm/abi/public.js';
import { selection, serializePcrsSerialized, flatten, type PcrValues } from '../src/tee/tpm/abi/pcrs.js';
import { TpmClient, SocketTransport } from '../src/node/tpm/index.js';
import { startSwtpm } from '../test/support/swtpm.js';

const SEL = selection([[TPM_ALG.SHA256, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 23]]]);
const NONCE = new Uint8Array(32).fill(0x42);
const MS = 2500;

interface Sample {
  kind: 'rsa' | 'ecc';
  attest: Uint8Array;
  signature: Uint8Array;
  ak: Uint8Array;
  pcrs: Uint8Array;
}

async function fromSwtpm(): Promise<Sample[]> {
  const t = await startSwtpm();
  const c = new TpmClient(await SocketTransport.connect(t.port));
  try {
    await c.startup();
    const out: Sample[] = [];
    for (const kind of ['rsa', 'ecc'] as const) {
      const ak = await c.createAk(kind);
      const q = await c.quote(ak.handle, NONCE, SEL);
      const values = await c.pcrRead(SEL);
      await c.flush(ak.handle);
      out.push({ kind, attest: q.attest, signature: q.signatureBytes, ak: serializePublic2b(ak.public), pcrs: serializePcrsSerialized(SEL, values) });
    }
    return out;
  } finally {
    await c.close();
    await t.stop();
  }
}

function fromSoftware(): Sample[] {
  const values: PcrValues = new Map([[TPM_ALG.SHA256, new Map(SEL[0].pcrs.map((p) => [p, new Uint8Array(32).fill(p)]))]]);
  const digest = createHash('sha256');
  for (const d of flatten(SEL, values)) digest.update(d);
  const attest = serializeAttest({
    magic: TPM_GENERATED_VALUE, type: TPM_ST.ATTEST_QUOTE, qualifiedSigner: new Uint8Array(34), extraData: NONCE,
    clockInfo: { clock: 1n, resetCount: 0, restartCount: 0, safe: true }, firmwareVersion: 1n,
    attested: { kind: 'quote', pcrSelect: SEL, pcrDigest: new Uint8Array(digest.digest()) },
  });
  const base = { nameAlg: TPM_ALG.SHA256, objectAttributes: 0x00050072, authPolicy: new Uint8Array(0), symmetric: { alg: TPM_ALG.NULL } };
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const j = (k: KeyObject) => k.export({ format: 'jwk' });
  const b = (s: string) => new Uint8Array(Buffer.from(s, 'base64url'));
  const rsaPub: TpmtPublic = { ...base, type: TPM_ALG.RSA, scheme: { alg: TPM_ALG.RSASSA, hash: TPM_ALG.SHA256 }, keyBits: 2048, exponent: 0, modulus: b(j(rsa.publicKey).n!) };
  const ecPub: TpmtPublic = { ...base, type: TPM_ALG.ECC, scheme: { alg: TPM_ALG.ECDSA, hash: TPM_ALG.SHA256 }, curveId: 3, kdf: { alg: TPM_ALG.NULL }, x: b(j(ec.publicKey).x!), y: b(j(ec.publicKey).y!) };
  const ecSig = new Uint8Array(sign('sha256', attest, { key: ec.privateKey, dsaEncoding: 'ieee-p1363' }));
  const pcrs = serializePcrsSerialized(SEL, values);
  return [
    { kind: 'rsa', attest, ak: serializePublic2b(rsaPub), pcrs, signature: serializeSignature({ sigAlg: TPM_ALG.RSASSA, hash: TPM_ALG.SHA256, sig: new Uint8Array(sign('sha256', attest, rsa.privateKey)) }) },
    { kind: 'ecc', attest, ak: serializePublic2b(ecPub), pcrs, signature: serializeSignature({ sigAlg: TPM_ALG.ECDSA, hash: TPM_ALG.SHA256, r: ecSig.subarray(0, 32), s: ecSig.subarray(32) }) },
  ];
}

/**
 * Interleaves short slices of `a` (the floor) and `b` (Coffer) so load changes on a shared machine hit both
 * alike; returns ops/s of each. ~`ms` in all, after a warm-up.
 */
async function paired(a: () => unknown, b: () => unknown, ms = MS * 2): Promise<[number, number]> {
  for (let i = 0; i < 300; i++) {
    await a();
    await b();
  }
  const n = [0, 0];
  const t = [0n, 0n];
  const slice = 100_000_000n; // 100 ms
  const stop = process.hrtime.bigint() + BigInt(ms) * 1_000_000n;
  while (process.hrtime.bigint() < stop) {
    for (const [k, f] of [[0, a], [1, b]] as const) {
      const start = process.hrtime.bigint();
      let now = start;
      while (now - start < slice) {
        for (let i = 0; i < 50; i++) await f();
        n[k] += 50;
        now = process.hrtime.bigint();
      }
      t[k] += now - start;
    }
  }
  return [n[0] / (Number(t[0]) / 1e9), n[1] / (Number(t[1]) / 1e9)];
}

const haveSwtpm = spawnSync('swtpm', ['--version']).status === 0;
const samples = haveSwtpm ? await fromSwtpm() : fromSoftware();
const registry = createVerifierRegistry();
console.log(`bench:tpm — quotes from ${haveSwtpm ? 'swtpm (Coffer TPM client)' : 'a software signer (swtpm not installed)'}; 18 SHA-256 PCRs; node ${process.version}`);
let worst = 0;
for (const s of samples) {
  const input = { evidence: s.attest, attachments: { signature: s.signature, ak: s.ak, pcrs: s.pcrs } };
  const first = await verifyEvidenceWith(registry, input, { nonce: NONCE });
  if (!first.verified) throw new Error(`sample ${s.kind} does not verify: ${JSON.stringify(first.errors)}`);
  const key = parseAkPublic(s.ak).key;
  const sig = parseSignature(s.signature);
  const raw =
    sig.sigAlg === TPM_ALG.ECDSA
      ? (() => {
          const rs = Buffer.concat([Buffer.alloc(32 - sig.r.length), sig.r, Buffer.alloc(32 - sig.s.length), sig.s]);
          return () => verify('sha256', s.attest, { key, dsaEncoding: 'ieee-p1363' }, rs);
        })()
      : () => verify('sha256', s.attest, { key, padding: constants.RSA_PKCS1_PADDING }, (sig as { sig: Uint8Array }).sig);
  if (!raw()) throw new Error('raw verify failed');
  const [floor, full] = await paired(raw, () => verifyEvidenceWith(registry, input, { nonce: NONCE }));
  const ratio = floor / full;
  worst = Math.max(worst, ratio);
  const label = s.kind === 'rsa' ? 'RSA-2048 (RSASSA-SHA256)' : 'ECDSA P-256 (SHA-256)   ';
  console.log(`${label}  coffer verify ${full.toFixed(0).padStart(7)}/s   raw verify floor ${floor.toFixed(0).padStart(7)}/s   ratio ${ratio.toFixed(2)}x (target <= 1.3x)`);
}
console.log(`worst ratio ${worst.toFixed(2)}x ${worst <= 1.3 ? '(within target)' : '(ABOVE the 1.3x target)'}`);
