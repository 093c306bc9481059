import type { Claims } from '../common/claims.js';
import { UsageError, VerificationError } from '../common/errors.js';
import { fromHex } from '../common/hex.js';
import { checkNonce } from '../nonce.js';
import type { EvidenceInput, TeeVerifier, VerifyOptions } from '../common/verifier.js';
import { SnpVerifier } from '../snp/verifier.js';
import { snpOptions } from '../snp/options.js';
import { TdxVerifier } from '../tdx/verifier.js';
import { TpmVerifier } from '../tpm/verifier.js';
import type { AkTrust } from '../tpm/verify/ak-trust.js';
import type { TpmVerifyOptions } from '../tpm/verify/quote.js';
import { parseCompositeEvidence, sniffComposite, type CompositeEvidence } from './abi/evidence.js';
import { parseHclReport, type HclReport, type HclReportType } from './abi/hcl-report.js';
import { parseRuntimeData } from './abi/runtime-data.js';
import { checkAkBound, checkRuntimeDataBinding, checkTdReportConsistency, checkUserData } from './verify/binding.js';
import { compositeClaims } from './claims.js';

/** The HCL requests the report from VMPL 0 (Trustee HCL_VMPL_VALUE): a report from another VMPL is not the HCL's. */
const HCL_VMPL = 0;

export interface AzureVtpmDeps {
  snp?: SnpVerifier;
  tdx?: TdxVerifier;
  tpm?: TpmVerifier;
}

/**
 * Azure confidential VM evidence: an SNP report (az-snp-vtpm) or TD quote (az-tdx-vtpm) whose report data binds
 * the HCL runtime data, whose HCLAkPub signs a vTPM quote. Order, each step a typed rejection:
 *  (a) the hardware report through the SNP / TDX verifier (VCEK chain, signature, TCB; DCAP for TDX), VMPL 0;
 *  (b) report data = H(runtime data) (and, TDX, the HCL's TDREPORT agrees with the quote);
 *  (c) the quote through the TPM verifier with `tee-report` AK trust: the AK must be the bound HCLAkPub;
 *      signature, nonce = extraData;
 *  (d) PCR digest recomputed from the PCR values (required), event log replayed when given;
 *  (e) combined claims.
 * The inner verifiers are shared with the registry's standalone ones so their caches serve both.
 */
export class AzureVtpmVerifier implements TeeVerifier {
  readonly tee: 'az-snp-vtpm' | 'az-tdx-vtpm';
  private readonly snp: SnpVerifier;
  private readonly tdx: TdxVerifier;
  private readonly tpm: TpmVerifier;

  constructor(
    private readonly kind: HclReportType,
    deps: AzureVtpmDeps = {},
  ) {
    this.tee = kind === 'snp' ? 'az-snp-vtpm' : 'az-tdx-vtpm';
    this.snp = deps.snp ?? new SnpVerifier();
    this.tdx = deps.tdx ?? new TdxVerifier();
    this.tpm = deps.tpm ?? new TpmVerifier();
  }

  detect(input: EvidenceInput): boolean {
    return sniffComposite(input.evidence) === this.kind;
  }

  /** The inner TEE's collateral (SNP certificates / DCAP collateral). Bound: the CLI passes it around unbound. */
  readonly openCollateral = (path: string): Promise<Record<string, unknown>> =>
    this.kind === 'snp' ? this.snp.openCollateral(path) : this.tdx.openCollateral(path);

  async verify(input: EvidenceInput, opts: VerifyOptions): Promise<Claims> {
    const at = opts.at;
    if (!(at instanceof Date) || Number.isNaN(at.getTime())) throw new UsageError('AT_REQUIRED', 'opts.at (the verification time) must be a valid Date');
    const ev = parseCompositeEvidence(input.evidence, input.attachments);
    if (ev.kind !== this.kind) {
      throw new UsageError('AZ_KIND_MISMATCH', `the evidence holds a ${ev.kind.toUpperCase()} report; verify it as az-${ev.kind}-vtpm, not ${this.tee}`);
    }
    const hcl = parseHclReport(ev.hcl);

    // (a) the hardware root of trust first: nothing in the runtime data means anything until it is bound.
    const inner = { ...opts, nonce: undefined };
    const hw = this.kind === 'snp' ? await this.verifySnp(ev, hcl, inner) : await this.tdx.verify({ evidence: ev.tdQuote! }, inner);
    // (b) the binding of the runtime data.
    const hwReportData = fromHex(hw.reportData);
    const runtimeDataHash = checkRuntimeDataBinding(hcl, hwReportData, this.kind === 'snp' ? 'SNP' : 'TD quote');
    if (this.kind === 'tdx') checkTdReportConsistency(hcl, hwReportData);
    const rt = parseRuntimeData(hcl.varData);
    if (ev.format === 'trustee-v2') checkUserData(rt.userData, opts.nonce);

    // (c)+(d) the vTPM quote, its AK trusted only as the bound HCLAkPub.
    const akTrust: AkTrust = {
      kind: 'tee-report',
      description: `${this.kind.toUpperCase()} report (HCL runtime data HCLAkPub)`,
      bind: async (ak) => {
        checkAkBound(ak.key, rt.ak);
        return {};
      },
    };
    const tpmOpts: TpmVerifyOptions = { ...(opts.tpm as TpmVerifyOptions | undefined), akTrust, requirePcrs: true };
    const ak = ev.ak ?? new Uint8Array(Buffer.from(JSON.stringify(rt.akJwk)));
    const tpm = await this.tpm.verify(
      { evidence: ev.quote, attachments: { signature: ev.signature, ak, ...(ev.pcrs ? { pcrs: ev.pcrs } : {}), ...(ev.eventlog ? { eventlog: ev.eventlog } : {}) } },
      { at, tpm: tpmOpts },
    );
    // The nonce lives in the quote's extraData, under Coffer's binding rule (the nonce itself, or its
    // SHA-256/384/512 as Trustee-style attesters put a hash of the KBS runtime data there).
    if (opts.nonce) checkNonce(tpm.reportData, opts.nonce);
    // (e)
    return compositeClaims(this.tee, ev, hcl, rt, runtimeDataHash, hw, tpm);
  }

  private async verifySnp(ev: CompositeEvidence, hcl: HclReport, opts: VerifyOptions): Promise<Claims> {
    const so = snpOptions(opts.snp);
    const snp = ev.vcek ? { ...so, certs: [...(so.certs ?? []), ev.vcek] } : so;
    const claims = await this.snp.verify({ evidence: hcl.hwReport }, { ...opts, snp });
    if (claims.svns.vmpl !== HCL_VMPL) {
      throw new VerificationError('AZ_VMPL_INVALID', `the SNP report was issued at VMPL ${claims.svns.vmpl}, not VMPL ${HCL_VMPL} where the HCL runs`);
    }
    return claims;
  }
}
