import { Option, type Command } from 'commander';
import { CliUsageError, EXIT, type CommandContext } from '../context.js';
import { readUserFile, statUserPath } from '../files.js';
import { type ErrorReport, toErrorReport, UsageError } from '../../tee/common/errors.js';
import { createVerifierRegistry } from '../../tee/index.js';
import { TEE_TYPES, type TeeType } from '../../tee/common/claims.js';
import { fromHex } from '../../tee/common/hex.js';
import { verifyEvidenceWith, type VerificationResult } from '../../tee/verify-evidence.js';
import type { VerifyOptions } from '../../tee/common/verifier.js';
import { appraise } from '../../policy/appraise.js';
import { parsePolicy } from '../../policy/load.js';
import type { AppraisalPolicy } from '../../policy/types.js';

interface VerifyFlags {
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
}

/** Attachment flags: evidence that travels beside the main file (TPM quotes, composite evidence). */
const ATTACHMENTS = ['signature', 'ak', 'pcrs', 'eventlog', 'quote', 'tdQuote'] as const;

/** One line of `coffer verify --json` (contract: field names are stable). */
export interface VerifyLine {
  file: string;
  verified: boolean;
  tee: string | null;
  tcbStatus: string | null;
  advisories: string[];
  claims: Record<string, unknown> | null;
  errors: { code: string; message: string }[];
  appraisal?: { status: string; failures: { rule: string; code: string; message: string }[] };
}

function parseAt(at: string | undefined): Date | undefined {
  if (at === undefined) return undefined;
  const d = new Date(at);
  if (Number.isNaN(d.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(at)) throw new CliUsageError(`--at '${at}' is not an ISO-8601 date`);
  return d;
}

function parseNonce(n: string | undefined): Uint8Array | undefined {
  if (n === undefined) return undefined;
  try {
    const b = fromHex(n);
    if (b.length === 0) throw new TypeError('empty');
    return b;
  } catch {
    throw new CliUsageError(`--nonce '${n}' is not a non-empty hex string`);
  }
}

function toLine(file: string, r: VerificationResult, policy: AppraisalPolicy): VerifyLine {
  const line: VerifyLine = {
    file,
    verified: r.verified,
    tee: r.tee ?? null,
    tcbStatus: r.tcbStatus ?? null,
    advisories: r.advisories,
    claims: (r.claims as unknown as Record<string, unknown>) ?? null,
    errors: [...r.errors],
  };
  if (r.verified && r.claims) {
    const a = appraise(r.claims, policy);
    line.appraisal = { status: a.status, failures: a.failures };
    if (a.failures.length > 0) {
      line.verified = false;
      line.errors.push(...a.failures.map((f) => ({ code: f.code, message: `policy rule ${f.rule}: ${f.message}` })));
    }
  }
  return line;
}

function human(line: VerifyLine): string {
  if (line.verified) {
    const adv = line.advisories.length ? `, advisories ${line.advisories.join(' ')}` : '';
    const tcb = line.tcbStatus ? `, TCB ${line.tcbStatus}` : '';
    const warnings = (line.claims?.warnings as string[] | undefined) ?? [];
    const notes = (line.claims?.notes as string[] | undefined) ?? [];
    return `OK       ${line.file}: verified ${line.tee}${tcb}${adv}\n${warnings.map((w) => `  warning: ${w}\n`).join('')}${notes.map((w) => `  note: ${w}\n`).join('')}`;
  }
  const why = line.errors.map((e) => `  ${e.code}: ${e.message}`).join('\n');
  return `REJECTED ${line.file}${line.tee ? ` (${line.tee})` : ''}\n${why}\n`;
}

export function registerVerify(program: Command, ctx: CommandContext): void {
  program
    .command('verify')
    .description('verify TEE evidence offline: signatures, certificate chains, revocation, TCB status, policy')
    .argument('<file...>', 'evidence files (quotes, reports)')
    .addOption(new Option('--tee <type>', 'which TEE produced the evidence').choices(['auto', ...TEE_TYPES]).default('auto'))
    .option('--collateral <path>', 'collateral file or directory (Intel PCS items, AMD certificates)')
    .option('--at <iso8601>', 'verification time (default: now)')
    .option('--policy <file>', 'appraisal policy (YAML or JSON)')
    .option('--nonce <hex>', 'report data must start with this nonce or its SHA-256/384/512')
    .option('--json', 'one JSON object per file')
    .option('--trust-anchor <file>', 'replace the pinned vendor root certificates (private PKI, tests); repeatable', collect, [])
    .option('--signature <file>', 'TPM: quote signature (tpm2_quote -s)')
    .option('--ak <file>', 'TPM: attestation key public (PEM or TPM2B_PUBLIC)')
    .option('--pcrs <file>', 'TPM: PCR values (tpm2_quote -o)')
    .option('--eventlog <file>', 'TPM: TCG event log to replay against the quoted PCRs')
    .option('--quote <file>', 'Azure vTPM (evidence = HCL report): the vTPM quote, TPMS_ATTEST (tpm2_quote -m)')
    .option('--td-quote <file>', 'Azure TDX vTPM (evidence = HCL report): the TD quote')
    .action(async (files: string[], flags: VerifyFlags) => {
      const at = parseAt(flags.at);
      const nonce = parseNonce(flags.nonce);
      const policy = flags.policy ? parsePolicyFile(await readUserFile(flags.policy, 'policy')) : {};
      const registry = createVerifierRegistry();
      const base: VerifyOptions = { tee: flags.tee, at, nonce };
      if (flags.trustAnchor && flags.trustAnchor.length > 0) {
        base.trustAnchors = await Promise.all(flags.trustAnchor.map((f) => readUserFile(f, 'trust anchor')));
      }
      // Malformed collateral rejects every file (exit 1); an unreadable path is an I/O error (exit 2).
      let collateralError: ErrorReport | undefined;
      if (flags.collateral) {
        try {
          await statUserPath(flags.collateral, 'collateral');
          // Collateral shape depends on the TEE: detect from the first file, then open the collateral once.
          const v =
            flags.tee === 'auto'
              ? registry.detect({ evidence: await readUserFile(files[0], 'evidence') })
              : registry.get(flags.tee);
          Object.assign(base, await openCollateral(v.openCollateral, flags.collateral, v.tee));
        } catch (e) {
          if (e instanceof CliUsageError || e instanceof UsageError) throw e;
          collateralError = toErrorReport(e);
        }
      }
      const attachments: Record<string, Uint8Array> = {};
      for (const name of ATTACHMENTS) {
        const p = flags[name];
        if (p) attachments[name] = await readUserFile(p, name);
      }
      const lines: VerifyLine[] = [];
      for (const file of files) {
        const evidence = await readUserFile(file, 'evidence');
        const r: VerificationResult = collateralError
          ? { verified: false, advisories: [], errors: [collateralError] }
          : await verifyEvidenceWith(registry, { evidence, attachments }, base);
        lines.push(toLine(file, r, policy));
      }
      for (const line of lines) ctx.io.out(flags.json ? `${JSON.stringify(line)}\n` : human(line));
      ctx.setExit(lines.every((l) => l.verified) ? EXIT.OK : EXIT.REJECTED);
    });
}

function parsePolicyFile(bytes: Uint8Array): AppraisalPolicy {
  try {
    return parsePolicy(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw new CliUsageError((e as Error).message);
  }
}

async function openCollateral(
  open: ((path: string) => Promise<Record<string, unknown>>) | undefined,
  path: string,
  tee: string,
): Promise<Record<string, unknown>> {
  if (!open) throw new CliUsageError(`--collateral is not used by the ${tee} verifier`);
  return open(path);
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
