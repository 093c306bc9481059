/**
 * bench:node-trust's nodes: one software TPM per node, so that every node has an AK of its own enrolled under its
 * own name (node trust refuses a token whose AK is enrolled as another node, and enrolment binds one EK to one
 * name, so a few real swtpms cannot play 10,000 nodes any more). Each AK is a P-256 key with the TPM2B_PUBLIC of
 * the restricted signing AK `coffer agent` creates (akTemplate('ecc')), and each quote is a TPMS_ATTEST of type
 * ATTEST_QUOTE signed ECDSA-SHA256 and marshaled as a TPMT_SIGNATURE: the bytes the service's TPM verifier parses
 * from a real TPM. Only the key's custody is simulated (a software key has no fixedTPM guarantee); every check the
 * service makes per request (AK lookup, signature, PCR digest, event-log replay) runs as on real evidence.
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { serializeAttest } from '../src/tee/tpm/abi/attest.js';
import { TPM_ALG, TPM_GENERATED_VALUE, TPM_ST } from '../src/tee/tpm/abi/constants.js';
import { flatten, selection, serializePcrsSerialized, type PcrSelection, type PcrValues } from '../src/tee/tpm/abi/pcrs.js';
import { objectName, parsePublic2b, publicToKeyObject, serializePublic2b, type TpmtPublic } from '../src/tee/tpm/abi/public.js';
import { serializeSignature } from '../src/tee/tpm/abi/signature.js';
import { checkAkAttributes } from '../src/tee/tpm/verify/ak-attributes.js';
import { akFingerprint } from '../src/tee/tpm/verify/ak-trust.js';
import { akTemplate } from '../src/node/tpm/templates.js';
import { reportDataFor } from '../src/node/attest/node-attester.js';
import type { TpmAkRecord } from '../src/store/types.js';
import { buildEventLog, type BuiltEvent } from '../test/support/eventlog-builder.js';

const sha256 = (...b: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const x of b) h.update(x);
  return h.digest();
};

/** A measured boot: its event log, the SHA-256 PCRs replaying it gives (from zero), as the agent sends them. */
export interface BootState {
  sel: PcrSelection[];
  values: PcrValues;
  digests: { pcr: number; digest: Buffer }[];
  logB64: string;
  /** The `pcrs` attachment (tpm2_pcrread -o serialized format). */
  pcrs: string;
  /** TPMS_QUOTE_INFO.pcrDigest: SHA-256 of the selected PCRs in selection order. */
  pcrDigest: Uint8Array;
  pcrHex(pcr: number): string;
}

export function bootState(events: BuiltEvent[], pcrs: number[]): BootState {
  const { log, digests } = buildEventLog(events);
  const bank = new Map<number, Uint8Array>(pcrs.map((p) => [p, new Uint8Array(32)]));
  for (const d of digests) if (bank.has(d.pcr)) bank.set(d.pcr, sha256(bank.get(d.pcr)!, d.digest));
  const sel = selection([[TPM_ALG.SHA256, pcrs]]);
  const values: PcrValues = new Map([[TPM_ALG.SHA256, bank]]);
  return {
    sel, values, digests, logB64: log.toString('base64'),
    pcrs: Buffer.from(serializePcrsSerialized(sel, values)).toString('base64'),
    pcrDigest: new Uint8Array(sha256(...flatten(sel, values))),
    pcrHex: (p) => Buffer.from(bank.get(p)!).toString('hex'),
  };
}

/** One node's TPM: its AK and its current boot. */
export class SoftTpm {
  readonly akKey: KeyObject;
  /** TPM2B_PUBLIC of the AK, base64: the `ak` attachment and what the registry stores. */
  readonly akPublic: string;
  private readonly priv: KeyObject;
  private readonly name: Uint8Array;
  private clock = 0n;

  constructor(readonly node: string, public boot: BootState) {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    const pub = { ...akTemplate('ecc'), x: new Uint8Array(Buffer.from(jwk.x!, 'base64url')), y: new Uint8Array(Buffer.from(jwk.y!, 'base64url')) } as TpmtPublic;
    this.akKey = publicKey;
    this.priv = privateKey;
    this.akPublic = Buffer.from(serializePublic2b(pub)).toString('base64');
    this.name = objectName(pub);
  }

  /** TPM2_Quote over the boot's PCRs with extraData = the agent's binding SHA-256(nonce ‖ JCS({runtime-data})). */
  quote(nonce: Uint8Array, runtimeData: unknown): { attest: Uint8Array; signature: Uint8Array; p1363: Buffer } {
    const attest = serializeAttest({
      magic: TPM_GENERATED_VALUE,
      type: TPM_ST.ATTEST_QUOTE,
      qualifiedSigner: this.name, // a real TPM puts the qualified name here; the verifier reports it, checks nothing
      extraData: reportDataFor(nonce, runtimeData, 32),
      clockInfo: { clock: (this.clock += 1000n), resetCount: 1, restartCount: 0, safe: true },
      firmwareVersion: 0x2000_0000_0000_0001n,
      attested: { kind: 'quote', pcrSelect: this.boot.sel, pcrDigest: this.boot.pcrDigest },
    });
    const p1363 = sign('sha256', attest, { key: this.priv, dsaEncoding: 'ieee-p1363' });
    const signature = serializeSignature({ sigAlg: TPM_ALG.ECDSA, hash: TPM_ALG.SHA256, r: p1363.subarray(0, 32), s: p1363.subarray(32) });
    return { attest, signature, p1363 };
  }
}

/**
 * The registry record enrolment's activate step stores for an AK (tpm-enrol.ts), with the same attribute check,
 * fingerprint and name. The EK is a per-node stand-in (no certificate: the bench skips MakeCredential), distinct
 * per node as enrolment's name binding requires.
 */
export function enrolledAkRecord(attester: string, akPublic2b: Uint8Array, now: number): TpmAkRecord {
  const ak = parsePublic2b(akPublic2b);
  checkAkAttributes(ak);
  const ekFingerprint = sha256(Buffer.from(`bench software EK of ${attester}`)).toString('hex');
  return {
    id: `ak-${sha256(akPublic2b).subarray(0, 12).toString('hex')}`, fingerprint: akFingerprint(publicToKeyObject(ak)), attester,
    akPublic: akPublic2b, akName: Buffer.from(objectName(ak)).toString('hex'), ekFingerprint,
    ekCertSubject: `CN=bench software TPM of ${attester}`, ekCertIssuer: 'CN=coffer bench (AK registered by bench:node-trust)',
    enrolledAt: now, revokedAt: null, revokedBy: null,
  };
}
