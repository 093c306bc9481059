import { Option, type Command } from 'commander';
import type { CommandContext } from '../context.js';
import { TEE_TYPES, type TeeType } from '../../tee/common/claims.js';

/**
 * `coffer verify`: the flags live here, the work in verify-run.ts, imported only when the command runs, so that
 * `coffer verify --help` loads no verifier, X.509 or YAML library.
 */
export interface VerifyFlags {
  tee: TeeType | 'auto';
  collateral?: string;
  at?: string;
  policy?: string;
  nonce?: string;
  json?: boolean;
  trustAnchor?: string[];
  signature?: string;
  ak?: string;
  pcrs?: string;
  eventlog?: string;
  quote?: string;
  tdQuote?: string;
  jobs?: string;
}

export function registerVerify(program: Command, ctx: CommandContext): void {
  program
    .command('verify')
    .description('verify TEE evidence offline: signatures, certificate chains, revocation, TCB status, policy')
    .argument('<file...>', 'evidence files (quotes, reports); each gets its own result line, in the order given')
    .addOption(new Option('--tee <type>', 'which TEE produced the evidence').choices(['auto', ...TEE_TYPES]).default('auto'))
    .option('--collateral <path>', 'collateral file or directory (Intel PCS items, AMD certificates)')
    .option('--at <iso8601>', 'verification time (default: now)')
    .option('--policy <file>', 'appraisal policy (YAML or JSON)')
    .option('--nonce <hex>', 'report data must start with this nonce or its SHA-256/384/512')
    .option('--json', 'one JSON object per file')
    .option('--jobs <n>', 'JavaScript threads verifying a large batch (default 1: one thread; on 2+ CPUs its signature checks go to a small signature thread)')
    .option('--trust-anchor <file>', 'replace the pinned vendor root certificates (private PKI, tests); repeatable', collect, [])
    .option('--signature <file>', 'TPM: quote signature (tpm2_quote -s)')
    .option('--ak <file>', 'TPM: attestation key public (PEM or TPM2B_PUBLIC)')
    .option('--pcrs <file>', 'TPM: PCR values (tpm2_quote -o)')
    .option('--eventlog <file>', 'TPM: TCG event log to replay against the quoted PCRs')
    .option('--quote <file>', 'Azure vTPM (evidence = HCL report): the vTPM quote, TPMS_ATTEST (tpm2_quote -m)')
    .option('--td-quote <file>', 'Azure TDX vTPM (evidence = HCL report): the TD quote')
    .action(async (files: string[], flags: VerifyFlags) => {
      const { runVerify } = await import('./verify-run.js');
      await runVerify(files, flags, ctx);
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
