/**
 * The quote helper's TPM provider: a workload's report data (the TPM's qualifyingData, 1..64 bytes) in, a TPM
 * quote over the helper's configured SHA-256 PCRs out, with the AK public, the PCR values and the measured-boot
 * event log: exactly the `tee: tpm` fields of `/v1/attest`. The signer is the workload AK (workloadAkTemplate: a
 * deterministic ECC primary in the endorsement hierarchy, distinct from the node AK the attest agent enrols), so a
 * pod can never obtain node-attestation evidence through this socket; relying parties pin or enrol that AK.
 *
 * One quote at a time: a quote is a sequence (CreatePrimary, Quote, PCR_Read, FlushContext) and the TPM has few
 * transient slots (3 on swtpm), so sequences are queued, not interleaved. Other processes (the attest agent) open
 * /dev/tpmrm0 themselves: the kernel resource manager gives each opener its own virtual handle space and runs one
 * command at a time across all of them, so they need no coordination with this helper.
 */
import type { TpmClient } from '../tpm/client.js';
import { TpmEvidenceSource, type TpmSourceOptions } from '../attest/evidence.js';
import { workloadAkTemplate } from '../tpm/templates.js';

export const TPM_QUALIFYING_DATA_MAX = 64;

export class TpmQuoteError extends Error {
  constructor(
    readonly code: 'TPM_UNAVAILABLE' | 'BAD_REPORT_DATA' | 'TPM_FAILED',
    message: string,
  ) {
    super(message);
    this.name = 'TpmQuoteError';
  }
}

export interface TpmQuoteResult {
  tee: 'tpm';
  /** base64 TPMS_ATTEST, with attachments signature (TPMT_SIGNATURE), ak (TPM2B_PUBLIC), pcrs, eventlog. */
  evidence: string;
  attachments: Record<string, string>;
}

export interface TpmQuoterOptions extends TpmSourceOptions {
  /** Opens the TPM (device or swtpm socket); called lazily and again after a transport failure. */
  open: () => Promise<TpmClient>;
  describe?: string;
}

export class TpmQuoter {
  private client?: TpmClient;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: TpmQuoterOptions) {}

  get description(): string {
    return this.o.describe ?? 'TPM';
  }

  private exclusive<T>(f: () => Promise<T>): Promise<T> {
    const p = this.tail.then(f, f);
    this.tail = p.catch(() => undefined);
    return p;
  }

  private async connect(): Promise<TpmClient> {
    if (this.client) return this.client;
    try {
      this.client = await this.o.open();
    } catch (e) {
      throw new TpmQuoteError('TPM_UNAVAILABLE', `cannot open ${this.description}: ${(e as Error).message}`);
    }
    return this.client;
  }

  /** True when the TPM opens (the health check; it also keeps the connection for the next quote). */
  available(): Promise<boolean> {
    return this.exclusive(() => this.connect().then(() => true, () => false));
  }

  quote(reportData: Uint8Array): Promise<TpmQuoteResult> {
    if (reportData.length < 1 || reportData.length > TPM_QUALIFYING_DATA_MAX) {
      return Promise.reject(new TpmQuoteError('BAD_REPORT_DATA', `TPM report data must be 1..${TPM_QUALIFYING_DATA_MAX} bytes, got ${reportData.length}`));
    }
    return this.exclusive(async () => {
      const client = await this.connect();
      try {
        const ev = await new TpmEvidenceSource(client, { ...this.o, akTemplate: workloadAkTemplate() }).collect(reportData);
        return { tee: 'tpm', evidence: ev.evidence, attachments: ev.attachments ?? {} };
      } catch (e) {
        // The connection may be out of step (a timeout, a TPM reset): reopen on the next request.
        this.client = undefined;
        await client.close().catch(() => undefined);
        throw new TpmQuoteError('TPM_FAILED', `TPM quote failed: ${(e as Error).message}`);
      }
    });
  }

  async close(): Promise<void> {
    await this.exclusive(async () => {
      const c = this.client;
      this.client = undefined;
      await c?.close().catch(() => undefined);
    });
  }
}
