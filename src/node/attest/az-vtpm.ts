/**
 * Combined TPM + TEE evidence on an Azure-style confidential VM (vTPM inside the CVM, run by the paravisor/HCL):
 * the HCL report in vTPM NV index 0x01400001 carries the SNP report whose REPORT_DATA is SHA-256 of the HCL runtime
 * data, which names the vTPM AK (HCLAkPub, persistent at 0x81000003). The agent quotes with that AK, the quote's
 * extraData carrying Coffer's binding value (nonce + node name), and sends Trustee's az-snp-vtpm evidence v1 JSON
 * with the VCEK (from IMDS/THIM as Azure serves it, or a file). The service checks every link: VCEK chain → SNP
 * report → runtime data → HCLAkPub = the quoting AK → nonce and PCRs. Nothing here is trusted by the agent itself.
 * On a TDX CVM the HCL report holds a TDREPORT (MAC'd, verifiable only on the host): the agent has it turned into a
 * TD quote by IMDS (`POST /acc/tdquote {"report": base64url(TDREPORT)}` → `{"quote": base64url}`, as Azure's
 * az-tdx-vtpm does) and sends az-tdx-vtpm evidence v1 with `td_quote` instead of `vcek`.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { TPM_ALG } from '../../tee/tpm/abi/constants.js';
import { selection } from '../../tee/tpm/abi/pcrs.js';
import { serializePublic2b } from '../../tee/tpm/abi/public.js';
import { serializeSignature } from '../../tee/tpm/abi/signature.js';
import { HCL_HW_REPORT_OFFSET, TDREPORT_SIZE, hclReportType } from '../../tee/azure/abi/hcl-report.js';
import { TpmResponseError } from '../tpm/rc.js';
import type { TpmClient } from '../tpm/client.js';
import type { EvidenceSource, NodeEvidence } from './evidence.js';

/** Azure vTPM: the HCL report NV index and the AK's persistent handle (azure-cvm-tooling az-cvm-vtpm). */
export const HCL_REPORT_NV_INDEX = 0x01400001;
export const AZ_AK_HANDLE = 0x81000003;
/** The HCL report NV blob is 2048-2600 bytes on Azure; anything far larger is not one. */
const MAX_HCL_NV_BYTES = 16 * 1024;
const MAX_THIM_BYTES = 64 * 1024;

export class AzVtpmError extends Error {
  constructor(
    readonly code: 'AZ_HCL_REPORT_MISSING' | 'AZ_HCL_REPORT_MALFORMED' | 'AZ_AK_MISSING' | 'AZ_VCEK_UNAVAILABLE' | 'AZ_TD_QUOTE_UNAVAILABLE' | 'AZ_PCRS_UNSUPPORTED',
    message: string,
  ) {
    super(message);
    this.name = 'AzVtpmError';
  }
}

const notDefined = (e: unknown) => e instanceof TpmResponseError && /^TPM_RC_(HANDLE|NV_DEFINED|VALUE|NV_UNINITIALIZED)$/.test(e.rcName);

/** True when this TPM holds an HCL report (the autodetection probe: NV_ReadPublic only, no auth needed). */
export async function hasHclReport(client: TpmClient): Promise<boolean> {
  try {
    await client.nvReadPublic(HCL_REPORT_NV_INDEX);
    return true;
  } catch (e) {
    if (notDefined(e)) return false;
    throw e;
  }
}

/** DER of a PEM or DER certificate, checked to parse. */
function certDer(b: Uint8Array, what: string): Uint8Array {
  try {
    const text = Buffer.from(b).toString('latin1');
    return new Uint8Array(new X509Certificate(text.includes('-----BEGIN') ? text : Buffer.from(b)).raw);
  } catch (e) {
    throw new AzVtpmError('AZ_VCEK_UNAVAILABLE', `${what} is not an X.509 certificate: ${(e as Error).message}`);
  }
}

/** The VCEK from a file (PEM or DER). */
export function vcekFromFile(path: string): () => Promise<Uint8Array> {
  return async () => {
    let b: Buffer;
    try {
      b = await readFile(path);
    } catch (e) {
      throw new AzVtpmError('AZ_VCEK_UNAVAILABLE', `cannot read the VCEK ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    return certDer(b, path);
  };
}

/**
 * The VCEK from Azure IMDS (THIM): GET {base}/metadata/THIM/amd/certification with `Metadata: true` answers
 * {"vcekCert": PEM, "certificateChain": PEM, …}. Fetched once and kept: it changes only with the TCB (a reboot).
 */
export function vcekFromImds(base = 'http://169.254.169.254', o: { fetch?: typeof fetch; timeoutMs?: number } = {}): () => Promise<Uint8Array> {
  let cached: Uint8Array | undefined;
  const url = `${base.replace(/\/$/, '')}/metadata/THIM/amd/certification`;
  return async () => {
    if (cached) return cached;
    let text: string;
    try {
      const res = await (o.fetch ?? fetch)(url, { headers: { Metadata: 'true' }, signal: AbortSignal.timeout(o.timeoutMs ?? 10_000) });
      const body = new Uint8Array(await res.arrayBuffer());
      if (body.length > MAX_THIM_BYTES) throw new Error(`answer over ${MAX_THIM_BYTES} bytes`);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      text = Buffer.from(body).toString('utf8');
    } catch (e) {
      throw new AzVtpmError('AZ_VCEK_UNAVAILABLE', `${url}: ${(e as Error).message}`);
    }
    let doc: { vcekCert?: unknown };
    try {
      doc = JSON.parse(text);
    } catch {
      throw new AzVtpmError('AZ_VCEK_UNAVAILABLE', `${url}: the answer is not JSON`);
    }
    if (typeof doc?.vcekCert !== 'string') throw new AzVtpmError('AZ_VCEK_UNAVAILABLE', `${url}: the answer has no vcekCert`);
    cached = certDer(new Uint8Array(Buffer.from(doc.vcekCert, 'latin1')), `${url} vcekCert`);
    return cached;
  };
}

const MAX_TD_QUOTE_BYTES = 64 * 1024;

/**
 * The TD quote for a TDREPORT from Azure IMDS: POST {base}/acc/tdquote {"report": base64url(TDREPORT)} →
 * {"quote": base64url}. Cached per TDREPORT (the HCL report's TDREPORT is fixed until the HCL regenerates it).
 */
export function tdQuoteFromImds(base = 'http://169.254.169.254', o: { fetch?: typeof fetch; timeoutMs?: number } = {}): (tdReport: Uint8Array) => Promise<Uint8Array> {
  let cached: { key: string; quote: Uint8Array } | undefined;
  const url = `${base.replace(/\/$/, '')}/acc/tdquote`;
  return async (tdReport) => {
    const key = Buffer.from(tdReport).toString('base64');
    if (cached?.key === key) return cached.quote;
    let doc: { quote?: unknown };
    try {
      const res = await (o.fetch ?? fetch)(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ report: Buffer.from(tdReport).toString('base64url') }), signal: AbortSignal.timeout(o.timeoutMs ?? 10_000) });
      const body = new Uint8Array(await res.arrayBuffer());
      if (body.length > MAX_TD_QUOTE_BYTES) throw new Error(`answer over ${MAX_TD_QUOTE_BYTES} bytes`);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      doc = JSON.parse(Buffer.from(body).toString('utf8'));
    } catch (e) {
      throw new AzVtpmError('AZ_TD_QUOTE_UNAVAILABLE', `${url}: ${(e as Error).message}`);
    }
    if (typeof doc?.quote !== 'string' || !/^[A-Za-z0-9_-]+={0,2}$/.test(doc.quote)) throw new AzVtpmError('AZ_TD_QUOTE_UNAVAILABLE', `${url}: the answer has no base64url quote`);
    const quote = new Uint8Array(Buffer.from(doc.quote, 'base64url'));
    cached = { key, quote };
    return quote;
  };
}

export interface AzVtpmSourceOptions {
  /** SHA-256 PCRs 0..n-1 (Trustee's evidence lists PCRs from 0 without gaps); default all 24, as Azure quotes. */
  pcrs?: number;
  /** SNP CVMs: the VCEK (DER). */
  vcek?: () => Promise<Uint8Array>;
  /** TDX CVMs: the TD quote for the HCL report's TDREPORT. */
  tdQuote?: (tdReport: Uint8Array) => Promise<Uint8Array>;
  /** Measured-boot event log attached for replay (absent file → none). */
  eventLogPath?: string;
  maxEventLogBytes?: number;
}

const b64url = (b: Uint8Array) => Buffer.from(b).toString('base64url');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

export class AzVtpmEvidenceSource implements EvidenceSource {
  /** The vTPM quote's extraData holds SHA-256 of the binding value. */
  readonly reportDataBytes = 32;
  constructor(
    private readonly client: TpmClient,
    private readonly o: AzVtpmSourceOptions,
  ) {
    const n = o.pcrs ?? 24;
    if (!Number.isInteger(n) || n < 1 || n > 24) throw new AzVtpmError('AZ_PCRS_UNSUPPORTED', `the vTPM quote covers PCRs 0..n-1 with n in 1..24, not ${n}`);
  }

  private async hclReport(): Promise<Uint8Array> {
    let pub;
    try {
      pub = await this.client.nvReadPublic(HCL_REPORT_NV_INDEX);
    } catch (e) {
      if (notDefined(e)) throw new AzVtpmError('AZ_HCL_REPORT_MISSING', `vTPM NV index 0x${HCL_REPORT_NV_INDEX.toString(16)} (the HCL report) is not defined: not an Azure-style CVM`);
      throw e;
    }
    if (pub.dataSize > MAX_HCL_NV_BYTES) throw new AzVtpmError('AZ_HCL_REPORT_MALFORMED', `NV index 0x${HCL_REPORT_NV_INDEX.toString(16)} is ${pub.dataSize} bytes, more than ${MAX_HCL_NV_BYTES}`);
    const hcl = await this.client.nvRead(HCL_REPORT_NV_INDEX);
    const kind = hclReportType(hcl);
    if (!kind) throw new AzVtpmError('AZ_HCL_REPORT_MALFORMED', `NV index 0x${HCL_REPORT_NV_INDEX.toString(16)} does not hold an HCL report ("HCLA" with an SNP or TDX report)`);
    return hcl;
  }

  async collect(reportData: Uint8Array): Promise<NodeEvidence> {
    const hcl = await this.hclReport();
    let ak;
    try {
      ak = await this.client.readPublic(AZ_AK_HANDLE);
    } catch (e) {
      if (notDefined(e)) throw new AzVtpmError('AZ_AK_MISSING', `no vTPM AK at persistent handle 0x${AZ_AK_HANDLE.toString(16)}`);
      throw e;
    }
    const n = this.o.pcrs ?? 24;
    const sel = selection([[TPM_ALG.SHA256, [...Array(n).keys()]]]);
    const q = await this.client.quote(AZ_AK_HANDLE, reportData, sel);
    // PCRs read after the quote: a PCR extended in between makes the service's digest check refuse (retried next
    // interval), never accept a wrong value.
    const values = await this.client.pcrRead(sel);
    const bank = values.get(TPM_ALG.SHA256)!;
    const tdx = hclReportType(hcl) === 'tdx';
    let hw: Record<string, string>;
    if (tdx) {
      if (!this.o.tdQuote) throw new AzVtpmError('AZ_TD_QUOTE_UNAVAILABLE', 'the HCL report holds a TDX report and no TD quote source is configured');
      hw = { td_quote: b64url(await this.o.tdQuote(hcl.slice(HCL_HW_REPORT_OFFSET, HCL_HW_REPORT_OFFSET + TDREPORT_SIZE))) };
    } else {
      if (!this.o.vcek) throw new AzVtpmError('AZ_VCEK_UNAVAILABLE', 'the HCL report holds an SNP report and no VCEK source is configured');
      hw = { vcek: b64url(await this.o.vcek()) };
    }
    // Trustee's tpm_quote.signature is the bare RSASSA signature; any other scheme goes as a TPMT_SIGNATURE.
    const sig = q.signature.sigAlg === TPM_ALG.RSASSA ? q.signature.sig : serializeSignature(q.signature);
    const doc = {
      version: 1,
      hcl_report: b64url(hcl),
      tpm_quote: { signature: hex(sig), message: hex(q.attest), pcrs: [...Array(n).keys()].map((i) => hex(bank.get(i)!)) },
      ...hw,
    };
    const eventLog = await this.readLog();
    const attachments: Record<string, string> = { ak: Buffer.from(serializePublic2b(ak.public)).toString('base64') };
    if (eventLog) attachments.eventlog = Buffer.from(eventLog).toString('base64');
    return { tee: tdx ? 'az-tdx-vtpm' : 'az-snp-vtpm', evidence: Buffer.from(JSON.stringify(doc)).toString('base64'), attachments, ...(eventLog ? { eventLog } : {}) };
  }

  private async readLog(): Promise<Uint8Array | undefined> {
    const path = this.o.eventLogPath;
    if (!path) return undefined;
    const max = this.o.maxEventLogBytes ?? 4 * 1024 * 1024;
    try {
      const b = await readFile(path);
      if (b.length > max) throw new Error(`event log ${path} is larger than ${max} bytes`);
      return new Uint8Array(b);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }
}
