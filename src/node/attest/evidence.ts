/**
 * Evidence sources for node attestation: a TPM quote (through Coffer's TPM client: /dev/tpmrm0, or swtpm in tests)
 * over the configured PCRs with the measured-boot event log, or a TEE report through configfs-tsm (TDX, SNP).
 * Each takes the report data the service's binding rule demands and returns the /v1/attest fields.
 */
import { readFile } from 'node:fs/promises';
import { TPM_ALG } from '../../tee/tpm/abi/constants.js';
import { selection, serializePcrsSerialized } from '../../tee/tpm/abi/pcrs.js';
import { serializePublic2b, type TpmtPublic } from '../../tee/tpm/abi/public.js';
import { TPM_RH, type TpmClient } from '../tpm/client.js';
import type { TsmReportClient } from '../quote/tsm-report.js';

export interface NodeEvidence {
  tee: string;
  evidence: string;
  attachments?: Record<string, string>;
  /** The raw event log, for the controller's event-level appraisal (also an attachment for the service). */
  eventLog?: Uint8Array;
}

export interface EvidenceSource {
  /** Bytes of report data this source binds (TPM extraData: SHA-256 → 32; TDX/SNP REPORTDATA: 64). */
  readonly reportDataBytes: 32 | 64;
  collect(reportData: Uint8Array): Promise<NodeEvidence>;
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

export interface TpmSourceOptions {
  /** SHA-256 PCRs to quote (default 0-7: firmware, boot loader, Secure Boot policy). */
  pcrs?: number[];
  /** Measured-boot event log (default the kernel's securityfs file); absent file → quote without a log. */
  eventLogPath?: string;
  ak?: 'rsa' | 'ecc';
  /** A primary template for the AK instead of the enrolled one (the quote helper's workload AK). */
  akTemplate?: TpmtPublic;
  /** The log could be large; bounded like the controller's limit. */
  maxEventLogBytes?: number;
}

/** TPM quote with the enrolled AK (the deterministic endorsement-hierarchy primary enrolAk registered). */
export class TpmEvidenceSource implements EvidenceSource {
  readonly reportDataBytes = 32;
  constructor(
    private readonly client: TpmClient,
    private readonly o: TpmSourceOptions = {},
  ) {}

  async collect(reportData: Uint8Array): Promise<NodeEvidence> {
    const sel = selection([[TPM_ALG.SHA256, this.o.pcrs ?? [0, 1, 2, 3, 4, 5, 6, 7]]]);
    const ak = this.o.akTemplate ? await this.client.createPrimary(TPM_RH.ENDORSEMENT, this.o.akTemplate) : await this.client.createAk(this.o.ak ?? 'ecc');
    try {
      const q = await this.client.quote(ak.handle, reportData, sel);
      // PCRs read after the quote; if one was extended in between the service's digest check refuses the pair
      // (the next interval retries) — never a wrong value accepted.
      const values = await this.client.pcrRead(sel);
      const eventLog = await this.readLog();
      return {
        tee: 'tpm',
        evidence: b64(q.attest),
        attachments: { signature: b64(q.signatureBytes), ak: b64(serializePublic2b(ak.public)), pcrs: b64(serializePcrsSerialized(sel, values)), ...(eventLog ? { eventlog: b64(eventLog) } : {}) },
        ...(eventLog ? { eventLog } : {}),
      };
    } finally {
      await this.client.flush(ak.handle);
    }
  }

  private async readLog(): Promise<Uint8Array | undefined> {
    const path = this.o.eventLogPath ?? '/sys/kernel/security/tpm0/binary_bios_measurements';
    try {
      const b = await readFile(path);
      if (b.length > (this.o.maxEventLogBytes ?? 4 * 1024 * 1024)) throw new Error(`event log ${path} is larger than ${this.o.maxEventLogBytes ?? 4 * 1024 * 1024} bytes`);
      return new Uint8Array(b);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }
}

/** A TDX or SNP report through configfs-tsm; the provider names the TEE. */
export class TsmEvidenceSource implements EvidenceSource {
  readonly reportDataBytes = 64;
  constructor(private readonly tsm: TsmReportClient) {}

  async collect(reportData: Uint8Array): Promise<NodeEvidence> {
    const r = await this.tsm.report(Buffer.from(reportData));
    const tee = r.provider.startsWith('tdx') ? 'tdx' : r.provider.startsWith('sev') ? 'snp' : undefined;
    if (!tee) throw new Error(`configfs-tsm provider '${r.provider}' is not a TEE Coffer attests nodes with`);
    // SNP: the auxblob is the host's certificate table (VCEK chain), which the SNP verifier reads as `certs`.
    return { tee, evidence: b64(r.outblob), ...(tee === 'snp' && r.auxblob ? { attachments: { certs: b64(r.auxblob) } } : {}) };
  }
}
