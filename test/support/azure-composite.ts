/**
 * Generated Azure CVM composites on the project's own PKIs: an SNP report (SnpTestPki) or TD quote (DCAP test
 * world) whose report data binds an HCL runtime-data JSON carrying a software RSA AK as HCLAkPub, plus a vTPM
 * quote (TPMS_ATTEST, RSASSA-SHA256 raw signature as Azure's vTPM makes) signed by that AK. Every knob breaks one
 * link of the chain so each failure path can be produced.
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { serializeHclReport } from '../../src/tee/azure/abi/hcl-report.js';
import { serializeAttest } from '../../src/tee/tpm/abi/attest.js';
import { TPM_ALG, TPM_GENERATED_VALUE, TPM_ST } from '../../src/tee/tpm/abi/constants.js';
import { selection } from '../../src/tee/tpm/abi/pcrs.js';
import { SnpTestPki, p384, reportFields, signReport } from './snp-pki.js';
import { world } from './dcap-helpers.js';

export const NONCE = new Uint8Array(Buffer.from('coffer-nonce-0001'));
export const SNP_AT = new Date('2025-06-01T00:00:00Z');

const ak = generateKeyPairSync('rsa', { modulusLength: 2048 });
const otherAk = generateKeyPairSync('rsa', { modulusLength: 2048 });
export { ak, otherAk };

const pki = new SnpTestPki('Milan', 'azure');
const vcekKey = p384();
const fields0 = reportFields({ product: 'Milan', vmpl: 0 });
const vcek = pki.leaf({ tcb: fields0.reportedTcb, chipId: fields0.chipId, key: vcekKey });
export { pki };

export function jwkOf(k: KeyObject): Record<string, string> {
  const j = k.export({ format: 'jwk' });
  return { kty: 'RSA', n: j.n!, e: j.e! };
}

export function runtimeJson(akPub: KeyObject = ak.publicKey, userData?: string): Uint8Array {
  const doc: Record<string, unknown> = {
    keys: [
      { kid: 'HCLAkPub', key_ops: ['sign'], ...jwkOf(akPub) },
      { kid: 'HCLEkPub', key_ops: ['encrypt'], ...jwkOf(otherAk.publicKey) },
    ],
    'vm-configuration': { 'console-enabled': true, 'secure-boot': true, 'tpm-enabled': true, vmUniqueId: '11111111-2222-3333-4444-555555555555' },
    ...(userData !== undefined ? { 'user-data': userData } : {}),
  };
  return new Uint8Array(Buffer.from(JSON.stringify(doc)));
}

export const PCRS = Array.from({ length: 24 }, (_, i) => Buffer.alloc(32, i + 1).toString('hex'));

export interface QuoteKnobs {
  extraData?: Uint8Array;
  /** PCR values the quote's pcrDigest commits to (default PCRS). */
  quotedPcrs?: string[];
  signer?: KeyObject;
}

export function vtpmQuote(k: QuoteKnobs = {}): { message: Uint8Array; signature: Uint8Array } {
  const pcrs = k.quotedPcrs ?? PCRS;
  const digest = createHash('sha256');
  for (const p of pcrs) digest.update(Buffer.from(p, 'hex'));
  const message = serializeAttest({
    magic: TPM_GENERATED_VALUE,
    type: TPM_ST.ATTEST_QUOTE,
    qualifiedSigner: new Uint8Array(34).fill(0x0b),
    extraData: k.extraData ?? NONCE,
    clockInfo: { clock: 1234n, resetCount: 1, restartCount: 0, safe: true },
    firmwareVersion: 0x2020031200120003n,
    attested: { kind: 'quote', pcrSelect: selection([[TPM_ALG.SHA256, pcrs.map((_, i) => i)]]), pcrDigest: new Uint8Array(digest.digest()) },
  });
  return { message, signature: new Uint8Array(sign('sha256', message, k.signer ?? ak.privateKey)) };
}

export interface CompositeKnobs extends QuoteKnobs {
  /** Runtime data bytes placed in the HCL report (default runtimeJson()). */
  varData?: Uint8Array;
  /** Runtime data bytes the report data hashes (default: varData). */
  boundData?: Uint8Array;
  /** PCR values shipped in the evidence (default PCRS). */
  pcrs?: string[];
  version?: number;
  vmpl?: number;
  /** Sign the SNP report with another key than the VCEK's. */
  badReportKey?: boolean;
  /** Size the HCL report is padded to (default 2600, as Azure's TDX NV blob; swtpm's NV indexes hold 2048). */
  padTo?: number;
  /** TDX: report data in the HCL's TDREPORT (default: the quote's). */
  tdReportData?: Uint8Array;
}

function reportDataFor(bound: Uint8Array): Uint8Array {
  const rd = new Uint8Array(64);
  rd.set(createHash('sha256').update(bound).digest());
  return rd;
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');

export interface SnpComposite {
  /** Trustee az-snp-vtpm evidence v1 JSON. */
  json: Uint8Array;
  hcl: Uint8Array;
  quote: { message: Uint8Array; signature: Uint8Array };
  pcrs: string[];
  vcek: Uint8Array;
  opts: { at: Date; trustAnchors: Uint8Array[]; snp: { certs: Uint8Array[] }; nonce: Uint8Array };
}

export function snpComposite(k: CompositeKnobs = {}): SnpComposite {
  const varData = k.varData ?? runtimeJson();
  const rep = reportFields({ product: 'Milan', vmpl: k.vmpl ?? 0, reportData: reportDataFor(k.boundData ?? varData) });
  const hwReport = signReport(rep, k.badReportKey ? p384().privateKey : vcekKey.privateKey);
  const hcl = serializeHclReport({ reportType: 'snp', hwReport, varData, padTo: k.padTo ?? 2600 });
  const quote = vtpmQuote(k);
  const pcrs = k.pcrs ?? PCRS;
  const doc = {
    version: k.version ?? 1,
    hcl_report: b64(hcl),
    tpm_quote: { signature: Buffer.from(quote.signature).toString('hex'), message: Buffer.from(quote.message).toString('hex'), pcrs },
    vcek: b64(vcek.der),
  };
  return {
    json: new Uint8Array(Buffer.from(JSON.stringify(doc, null, 2))),
    hcl,
    quote,
    pcrs,
    vcek: vcek.der,
    opts: { at: SNP_AT, trustAnchors: pki.trustAnchors, snp: { certs: [pki.chainPem()] }, nonce: NONCE },
  };
}

export interface TdxComposite {
  json: Uint8Array;
  hcl: Uint8Array;
  quote: { message: Uint8Array; signature: Uint8Array };
  tdQuote: Uint8Array;
  opts: Record<string, unknown> & { at: Date; nonce: Uint8Array };
}

export async function tdxComposite(k: CompositeKnobs & { badTdQuote?: boolean } = {}): Promise<TdxComposite> {
  const w = await world();
  const varData = k.varData ?? runtimeJson();
  const rd = reportDataFor(k.boundData ?? varData);
  const tdQuote = await w.quote({ tee: 'tdx', version: 4, reportData: rd });
  if (k.badTdQuote) tdQuote[48 + 136] ^= 1; // MRTD: covered by the attestation key's signature
  const tdreport = new Uint8Array(1024);
  tdreport.set(k.tdReportData ?? rd, 128);
  const hcl = serializeHclReport({ reportType: 'tdx', hwReport: tdreport, varData, padTo: 2600 });
  const quote = vtpmQuote(k);
  const doc = {
    version: k.version ?? 1,
    tpm_quote: { signature: Buffer.from(quote.signature).toString('hex'), message: Buffer.from(quote.message).toString('hex'), pcrs: k.pcrs ?? PCRS },
    hcl_report: b64(hcl),
    td_quote: b64(tdQuote),
  };
  return {
    json: new Uint8Array(Buffer.from(JSON.stringify(doc))),
    hcl,
    quote,
    tdQuote,
    opts: { at: w.at, trustAnchors: w.trustAnchors, dcap: { collateral: await w.collateral('tdx') }, nonce: NONCE },
  };
}
