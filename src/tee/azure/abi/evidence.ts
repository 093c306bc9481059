import { EvidenceFormatError } from '../../common/errors.js';
import { fromHex } from '../../common/hex.js';
import { TPM_ALG } from '../../tpm/abi/constants.js';
import { selection, serializePcrsMarshaled, type PcrValues } from '../../tpm/abi/pcrs.js';
import { hclReportType, type HclReportType } from './hcl-report.js';

/**
 * Composite Azure CVM evidence, in either of the forms Coffer accepts:
 *  - Trustee's az-snp-vtpm / az-tdx-vtpm evidence JSON (v1; SNP also v2): `{"version":1,"hcl_report":b64url,
 *    "tpm_quote":{"signature":hex,"message":hex,"pcrs":[hex…]},"vcek":b64url}` (SNP) or `…,"td_quote":b64url`
 *    (TDX) (trustee deps/verifier/src/az_{snp,tdx}_vtpm/compat.rs). `pcrs` are the SHA-256 PCRs 0..n-1.
 *  - files: the HCL report as the evidence, with attachments `quote` (TPMS_ATTEST), `signature`, `pcrs` (any
 *    tpm2-tools PCR file), optional `eventlog`, `ak`, and `tdQuote` for TDX.
 */
export interface CompositeEvidence {
  format: 'trustee-v1' | 'trustee-v2' | 'files';
  kind: HclReportType;
  hcl: Uint8Array;
  quote: Uint8Array;
  signature: Uint8Array;
  /** PCR values in a format the TPM verifier reads (Trustee's list is turned into the marshaled form). */
  pcrs?: Uint8Array;
  eventlog?: Uint8Array;
  /** An AK the caller names; it must be the one the report binds. */
  ak?: Uint8Array;
  /** DER VCEK carried by the evidence (SNP). */
  vcek?: Uint8Array;
  /** The TD quote (TDX). */
  tdQuote?: Uint8Array;
}

function bad(msg: string): EvidenceFormatError {
  return new EvidenceFormatError('AZ_EVIDENCE_MALFORMED', `Azure vTPM evidence: ${msg}`);
}

const B64 = /^[A-Za-z0-9+/_-]*={0,2}$/;
function b64(v: unknown, field: string): Uint8Array {
  if (typeof v !== 'string' || !B64.test(v)) throw bad(`${field} is not a base64 string`);
  // Node's decoder takes the standard and the URL-safe alphabet (Trustee writes URL-safe, padded).
  return new Uint8Array(Buffer.from(v, 'base64'));
}

function hex(v: unknown, field: string): Uint8Array {
  if (typeof v !== 'string') throw bad(`${field} is not a hex string`);
  try {
    return fromHex(v);
  } catch {
    throw bad(`${field} is not a hex string`);
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** First non-blank byte is '{': the JSON form (HCL reports start with "HCLA"). */
export function looksLikeJson(b: Uint8Array): boolean {
  for (let i = 0; i < b.length && i < 64; i++) {
    const c = b[i];
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || (i === 0 && c === 0xef)) continue;
    if (i > 0 && i < 3 && (c === 0xbb || c === 0xbf)) continue; // UTF-8 BOM
    return c === 0x7b;
  }
  return false;
}

/** Which composite this is, without a full parse (detect() must be cheap and must not throw). */
export function sniffComposite(b: Uint8Array): HclReportType | undefined {
  const bin = hclReportType(b);
  if (bin) return bin;
  if (!looksLikeJson(b) || b.length > 1 << 20) return undefined;
  const text = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
  if (!text.includes('"hcl_report"') || !text.includes('"tpm_quote"')) return undefined;
  if (text.includes('"td_quote"')) return 'tdx';
  return text.includes('"vcek"') ? 'snp' : undefined;
}

/** Trustee's list of SHA-256 PCRs 0..n-1 as a marshaled PCR file (TPML_PCR_SELECTION + TPML_DIGESTs). */
export function pcrListToFile(list: unknown): Uint8Array {
  if (!Array.isArray(list) || list.length === 0) throw bad('tpm_quote.pcrs is not a non-empty list');
  if (list.length > 24) throw bad(`tpm_quote.pcrs holds ${list.length} PCRs, more than 24`);
  const bank = new Map<number, Uint8Array>();
  list.forEach((p, i) => {
    const d = hex(p, `tpm_quote.pcrs[${i}]`);
    if (d.length !== 32) throw bad(`tpm_quote.pcrs[${i}] is ${d.length} bytes, not a SHA-256 PCR (32)`);
    bank.set(i, d);
  });
  const values: PcrValues = new Map([[TPM_ALG.SHA256, bank]]);
  return serializePcrsMarshaled(selection([[TPM_ALG.SHA256, [...bank.keys()]]]), values);
}

export function parseTrusteeEvidence(b: Uint8Array): CompositeEvidence {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(b));
  } catch (e) {
    throw bad(`is not UTF-8 JSON (${(e as Error).message})`);
  }
  if (!isObj(doc)) throw bad('is not a JSON object');
  if (doc.version === undefined) {
    throw new EvidenceFormatError('AZ_EVIDENCE_UNSUPPORTED', 'Azure vTPM evidence without "version" is Trustee v0 (bincode quote), which Coffer does not read: use v1');
  }
  const tdx = 'td_quote' in doc;
  const versions = tdx ? [1] : [1, 2];
  if (typeof doc.version !== 'number' || !versions.includes(doc.version)) {
    throw new EvidenceFormatError('AZ_EVIDENCE_UNSUPPORTED', `Azure ${tdx ? 'TDX' : 'SNP'} vTPM evidence version ${JSON.stringify(doc.version)} is not supported (${versions.join(', ')})`);
  }
  const q = doc.tpm_quote;
  if (!isObj(q)) throw bad('tpm_quote is not an object');
  const hcl = b64(doc.hcl_report, 'hcl_report');
  const kind = hclReportType(hcl);
  if (!kind) throw new EvidenceFormatError('HCL_REPORT_MALFORMED', 'hcl_report is not an HCL report ("HCLA" with report type SNP or TDX)');
  if (kind !== (tdx ? 'tdx' : 'snp')) throw bad(`the HCL report holds a ${kind.toUpperCase()} report but the evidence is ${tdx ? 'TDX' : 'SNP'} evidence`);
  return {
    format: doc.version === 2 ? 'trustee-v2' : 'trustee-v1',
    kind,
    hcl,
    quote: hex(q.message, 'tpm_quote.message'),
    signature: hex(q.signature, 'tpm_quote.signature'),
    pcrs: pcrListToFile(q.pcrs),
    vcek: tdx ? undefined : b64(doc.vcek, 'vcek'),
    tdQuote: tdx ? b64(doc.td_quote, 'td_quote') : undefined,
  };
}

/** The files form: the HCL report plus attachments. */
export function parseFileEvidence(hcl: Uint8Array, a: Record<string, Uint8Array>): CompositeEvidence {
  const kind = hclReportType(hcl);
  if (!kind) throw new EvidenceFormatError('HCL_REPORT_MALFORMED', 'the evidence is neither Trustee vTPM evidence JSON nor an HCL report ("HCLA")');
  if (!a.quote) throw new EvidenceFormatError('AZ_QUOTE_MISSING', 'the vTPM quote (attachment "quote" / --quote, a TPMS_ATTEST) is missing');
  if (!a.signature) throw new EvidenceFormatError('AZ_QUOTE_MISSING', 'the vTPM quote signature (attachment "signature" / --signature) is missing');
  if (kind === 'tdx' && !a.tdQuote) throw new EvidenceFormatError('AZ_TD_QUOTE_MISSING', 'a TDX HCL report needs its TD quote (attachment "tdQuote" / --td-quote)');
  return { format: 'files', kind, hcl, quote: a.quote, signature: a.signature, pcrs: a.pcrs, eventlog: a.eventlog, ak: a.ak, tdQuote: a.tdQuote };
}

export function parseCompositeEvidence(evidence: Uint8Array, attachments: Record<string, Uint8Array> = {}): CompositeEvidence {
  if (looksLikeJson(evidence)) {
    const ev = parseTrusteeEvidence(evidence);
    // Attachments still apply to the JSON form: an event log to replay, an AK the caller expects.
    return { ...ev, eventlog: attachments.eventlog, ak: attachments.ak };
  }
  return parseFileEvidence(evidence, attachments);
}
