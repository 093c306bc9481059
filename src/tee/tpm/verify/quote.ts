import { createHash } from 'node:crypto';
import type { Claims } from '../../common/claims.js';
import { EvidenceFormatError, VerificationError } from '../../common/errors.js';
import { bytesEqual, toHex } from '../../common/hex.js';
import { parseAttest, unwrapAttest, type TpmsAttest } from '../abi/attest.js';
import { TPMA_OBJECT, TPM_ST, algName, attributeNames, hashAlgById } from '../abi/constants.js';
import { flatten, type PcrValues } from '../abi/pcrs.js';
import { checkPcrs, digestOf, selectionRaw, type PcrCheck, type PcrCheckCache } from './pcr-check.js';
import type { AkPublic } from '../abi/public.js';
import { replayLog, type EventLogCache } from './eventlog-cache.js';
import { establishAkTrust, fingerprintOf, type AkTrust } from './ak-trust.js';
import { resolveSignature, verifyTpmSignature } from './signature.js';

/** `opts.tpm` for the TPM verifier. */
export interface TpmVerifyOptions {
  /**
   * How the AK is trusted (default: pinned to the `ak` attachment, with the AK_PINNED_BY_CALLER warning: right
   * for `coffer verify --ak`, where the user pins it). The services always set it (enrolment registry).
   */
  akTrust?: AkTrust;
  /** Reject quotes whose PCR values were not supplied (default false: then only pcrDigest is reported). */
  requirePcrs?: boolean;
}

export interface QuoteParts {
  attest: Uint8Array;
  signature?: Uint8Array;
  ak?: Uint8Array;
  pcrs?: Uint8Array;
  eventlog?: Uint8Array;
}

export interface QuoteCheckOptions {
  at: Date;
  nonce?: Uint8Array;
  tpm?: TpmVerifyOptions;
  /** Parses AK bytes; the verifier passes a cached one so warm verifications skip key import. */
  parseAk?: (b: Uint8Array) => AkPublic;
  /** Memo of PCR checks owned by the verifier (identical PCR file + selection + digest → same result). */
  pcrCache?: PcrCheckCache;
  /** Memo of event-log replays owned by the verifier (identical log bytes → same replayed PCRs). */
  eventLogCache?: EventLogCache;
}

/** H_sig(selected PCR values concatenated in selection order): what TPMS_QUOTE_INFO.pcrDigest commits to. */
export function pcrDigest(attest: TpmsAttest, values: PcrValues, hashNode: string): Uint8Array {
  if (attest.attested.kind !== 'quote') throw new Error('not a quote');
  return digestOf(hashNode, Buffer.concat(flatten(attest.attested.pcrSelect, values)));
}

/** Hex of `field`, a view into `whole` whose hex is `wholeHex`. A module function: a closure per quote costs more. */
function hexSlice(wholeHex: string, whole: Uint8Array, field: Uint8Array): string {
  const o = (field.byteOffset - whole.byteOffset) * 2;
  return wholeHex.slice(o, o + field.byteLength * 2);
}

/**
 * Verifies a TPM2_Quote: AK trust, signature over the exact TPMS_ATTEST bytes, magic/type, nonce = extraData,
 * PCR digest recomputed from the supplied values, and the event log replayed against those values. Order: the
 * signature first, so nothing unsigned is interpreted as evidence.
 */
export async function verifyQuote(parts: QuoteParts, opts: QuoteCheckOptions): Promise<Claims> {
  const attestBytes = unwrapAttest(parts.attest);
  const attest = parseAttest(attestBytes);
  if (!parts.signature) throw new VerificationError('TPM_SIGNATURE_MISSING', 'the quote signature (attachment "signature" / --signature) is missing');
  const pending = establishAkTrust(parts.ak, opts.tpm?.akTrust, opts.at, opts.parseAk);
  const trusted = pending instanceof Promise ? await pending : pending;
  const ak = trusted.ak;
  const sig = resolveSignature(parts.signature, ak);
  verifyTpmSignature(attestBytes, sig, ak, 'quote');

  if (attest.type !== TPM_ST.ATTEST_QUOTE || attest.attested.kind !== 'quote') {
    throw new VerificationError('TPM_NOT_A_QUOTE', `the attestation has type 0x${attest.type.toString(16)}, not TPM_ST_ATTEST_QUOTE (0x8018)`);
  }
  const warnings = trusted.warnings.slice();
  const notes: string[] = trusted.notes?.slice() ?? [];
  if (ak.tpmPublic) {
    // Only a restricted signing key refuses to sign outside data that mimics TPMS_ATTEST: anything else forges quotes.
    const need = TPMA_OBJECT.restricted | TPMA_OBJECT.sign | TPMA_OBJECT.fixedTPM;
    if ((ak.tpmPublic.objectAttributes & need) !== need) {
      throw new VerificationError('TPM_AK_NOT_RESTRICTED', `the AK is not a fixedTPM restricted signing key (attributes: ${attributeNames(ak.tpmPublic.objectAttributes).join('|')})`);
    }
  } else if (trusted.trust === 'tee-report') {
    // The TEE report binds this key by hardware (the HCL put it there): its attributes are not a trust question.
    notes.push('AK_ATTRIBUTES_UNKNOWN: the AK was given as a bare public key, so its restricted/fixedTPM attributes could not be checked; the TEE report binds it');
  } else {
    warnings.push('AK_ATTRIBUTES_UNKNOWN: the AK was given as a bare public key, so its restricted/fixedTPM attributes could not be checked');
  }
  // extraData holds at most 64 bytes, so a longer binding (the KBS's nonce ‖ runtime data) arrives hashed: the
  // nonce itself or its SHA-256/384/512, exactly (the same digests `--nonce` accepts for other TEEs).
  const nonce = opts.nonce;
  if (nonce && !bytesEqual(attest.extraData, nonce) && !(['sha256', 'sha384', 'sha512'] as const).some((h) => bytesEqual(attest.extraData, createHash(h).update(nonce).digest()))) {
    throw new VerificationError('NONCE_MISMATCH', `quote extraData ${toHex(attest.extraData)} is neither the nonce ${toHex(nonce)} nor its SHA-256/384/512`);
  }

  const sel = attest.attested.pcrSelect;
  // One hex conversion of the signed bytes; the fields are views into them, so their hex is a slice.
  const attestHex = Buffer.from(attestBytes.buffer, attestBytes.byteOffset, attestBytes.byteLength).toString('hex');
  const extraHex = hexSlice(attestHex, attestBytes, attest.extraData);
  const digestHex = hexSlice(attestHex, attestBytes, attest.attested.pcrDigest);
  let measurements: Record<string, string>;
  let eventLog: Record<string, unknown> | undefined;
  let check: PcrCheck | undefined;
  if (parts.pcrs) {
    check = checkPcrs(parts.pcrs, sel, sig.hash, attest.attested.pcrDigest, digestHex, opts.pcrCache);
    // Object.assign rather than a spread: measurably cheaper per quote in V8.
    measurements = Object.assign({ pcrDigest: digestHex }, check.measurements);
    if (parts.eventlog) eventLog = checkEventLog(parts.eventlog, sel, check.values, opts.eventLogCache);
  } else {
    if (opts.tpm?.requirePcrs) throw new EvidenceFormatError('TPM_PCRS_MISSING', 'PCR values (attachment "pcrs" / --pcrs) are required');
    if (parts.eventlog) throw new EvidenceFormatError('TPM_PCRS_MISSING', 'an event log can only be checked against PCR values: supply --pcrs too');
    warnings.push('PCR_VALUES_ABSENT: no PCR values were supplied; only the signed pcrDigest is reported');
    measurements = { pcrDigest: digestHex };
  }
  const raw: Record<string, unknown> = {
    // Both were checked above: TPM_GENERATED_VALUE and TPM_ST_ATTEST_QUOTE.
    magic: '0xff544347',
    type: '0x8018',
    qualifiedSigner: hexSlice(attestHex, attestBytes, attest.qualifiedSigner),
    extraData: extraHex,
    clockInfo: {
      clock: attest.clockInfo.clock.toString(),
      resetCount: attest.clockInfo.resetCount,
      restartCount: attest.clockInfo.restartCount,
      safe: attest.clockInfo.safe,
    },
    // firmwareVersion is the u64 right after extraData (TPM2B) and clockInfo (17 bytes): its hex is a slice too.
    firmwareVersion: `0x${attestHex.slice((attest.extraData.byteOffset - attestBytes.byteOffset + attest.extraData.byteLength + 17) * 2, (attest.extraData.byteOffset - attestBytes.byteOffset + attest.extraData.byteLength + 25) * 2)}`,
    pcrSelection: check?.selectionRaw ?? selectionRaw(sel),
    signature: { alg: algName(sig.sigAlg), hash: hashAlgById(sig.hash)?.name },
  };
  if (eventLog) raw.eventLog = eventLog;

  const platform: Record<string, string> = Object.assign({ akFingerprint: fingerprintOf(ak), akTrust: trusted.trust }, trusted.platform);
  if (ak.name) platform.akName = ak.nameHex ??= toHex(ak.name);
  return {
    tee: 'tpm',
    measurements,
    svns: {},
    debug: false,
    reportData: extraHex,
    platform,
    advisories: [],
    warnings,
    ...(notes.length ? { notes } : {}),
    raw,
  };
}

function checkEventLog(bytes: Uint8Array, sel: { hash: number; pcrs: number[] }[], values: PcrValues, cache?: EventLogCache): Record<string, unknown> {
  // The replay depends on the log bytes only (cacheable); the comparison with this quote's values is made every time.
  const log = cache ? cache.replay(bytes) : replayLog(bytes);
  const replay = log.replay;
  const replayed: string[] = [];
  for (const s of sel) {
    const bank = replay.get(s.hash);
    if (!bank) continue;
    const name = hashAlgById(s.hash)!.name;
    for (const p of s.pcrs) {
      const r = bank.get(p);
      if (!r) continue; // the log never extends this PCR (e.g. PCR 10 for IMA, 16 debug, 23 application)
      const q = values.get(s.hash)!.get(p)!;
      if (!bytesEqual(r, q)) {
        throw new VerificationError('TPM_EVENTLOG_MISMATCH', `the event log does not replay to the quoted PCR ${name}:${p} (log ${toHex(r)}, quoted ${toHex(q)})`);
      }
      replayed.push(`${name}:${p}`);
    }
  }
  if (replayed.length === 0) throw new VerificationError('TPM_EVENTLOG_MISMATCH', 'the event log covers none of the quoted PCRs in the quoted banks');
  return { format: log.format, events: log.events, replayedPcrs: replayed };
}
