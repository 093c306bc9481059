import { CliUsageError, EXIT, type CommandContext } from '../context.js';
import { readCappedUserFile } from '../files.js';
import { CofferError, type ErrorReport, toErrorReport, UsageError } from '../../tee/common/errors.js';
import { createVerifierRegistry, type VerifierRegistry } from '../../tee/index.js';
import type { TeeType } from '../../tee/common/claims.js';
import { fromHex } from '../../tee/common/hex.js';
import { readFileCappedSync, MAX_COLLATERAL_FILE_BYTES } from '../../tee/common/read-capped.js';
import { verifyEvidenceWith, type VerificationResult } from '../../tee/verify-evidence.js';
import type { EvidenceInput, TeeVerifier, VerifyOptions } from '../../tee/common/verifier.js';
import { appraise } from '../../policy/appraise.js';
import type { AppraisalPolicy } from '../../policy/types.js';
import type { VerifyFlags } from './verify.js';

/** Input caps: evidence (Azure JSON evidence carries event logs: a few MB at most), policies, small attachments. */
export const MAX_EVIDENCE_BYTES = 16 * 1024 * 1024;
export const MAX_POLICY_BYTES = 1024 * 1024;
const MAX_SMALL_FILE_BYTES = 1024 * 1024;
/** Output is written in chunks of about this size rather than one write per file. */
const FLUSH_BYTES = 64 * 1024;

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
    // The CLI's caller is the operator: an AK given with --ak is their own pin (the warning still says so).
    const a = appraise(r.claims, policy, { callerPinsKeys: true });
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

/** An evidence file that could not be read (or is over the cap): its own result line, exit status 2. */
type Read = { ok: true; bytes: Uint8Array } | { ok: false; error: ErrorReport };

function readEvidence(file: string): Read {
  try {
    return { ok: true, bytes: readFileCappedSync(file, MAX_EVIDENCE_BYTES, 'evidence file') };
  } catch (e) {
    if (e instanceof CofferError) return { ok: false, error: toErrorReport(e) };
    return { ok: false, error: { code: 'IO_ERROR', message: `cannot read evidence '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` } };
  }
}

/**
 * Collateral is opened once per verifier that needs it (its shape depends on the TEE: a mixed batch of SGX and
 * SNP evidence opens it both ways), on the first file of that TEE, so a garbage first file changes nothing.
 * Malformed collateral rejects the files of that TEE (exit 1); an unreadable or oversized one is an I/O error.
 */
class CollateralOptions {
  private readonly byTee = new Map<TeeType, Promise<VerifyOptions | ErrorReport>>();
  constructor(
    private readonly path: string | undefined,
    private readonly base: VerifyOptions,
  ) {}

  for(v: TeeVerifier): Promise<VerifyOptions | ErrorReport> {
    let p = this.byTee.get(v.tee);
    if (!p) {
      p = this.open(v);
      this.byTee.set(v.tee, p);
    }
    return p;
  }

  private async open(v: TeeVerifier): Promise<VerifyOptions | ErrorReport> {
    const opts: VerifyOptions = Object.assign({}, this.base, { tee: v.tee });
    if (!this.path) return opts;
    if (!v.openCollateral) throw new CliUsageError(`--collateral is not used by the ${v.tee} verifier`);
    try {
      return Object.assign(opts, await v.openCollateral(this.path));
    } catch (e) {
      if (e instanceof UsageError) throw new CliUsageError(e.message);
      return toErrorReport(e);
    }
  }
}

function isErrorReport(x: VerifyOptions | ErrorReport): x is ErrorReport {
  return typeof (x as ErrorReport).code === 'string' && typeof (x as ErrorReport).message === 'string';
}

async function verifyOne(
  registry: VerifierRegistry,
  collateral: CollateralOptions,
  tee: TeeType | 'auto',
  input: EvidenceInput,
): Promise<VerificationResult> {
  let v: TeeVerifier;
  try {
    v = tee === 'auto' ? registry.detect(input) : registry.get(tee);
  } catch (e) {
    return { verified: false, advisories: [], errors: [toErrorReport(e)] };
  }
  const opts = await collateral.for(v);
  if (isErrorReport(opts)) return { verified: false, tee: v.tee, advisories: [], errors: [opts] };
  return verifyEvidenceWith(registry, input, opts);
}

export async function runVerify(files: string[], flags: VerifyFlags, ctx: CommandContext): Promise<void> {
  const at = parseAt(flags.at);
  const nonce = parseNonce(flags.nonce);
  let policy: AppraisalPolicy = {};
  if (flags.policy) {
    const bytes = await readCappedUserFile(flags.policy, 'policy', MAX_POLICY_BYTES);
    const { parsePolicy } = await import('../../policy/load.js'); // YAML: loaded only for --policy
    try {
      policy = parsePolicy(Buffer.from(bytes).toString('utf8'));
    } catch (e) {
      throw new CliUsageError((e as Error).message);
    }
  }
  const base: VerifyOptions = { at: at ?? new Date(), nonce };
  if (flags.trustAnchor && flags.trustAnchor.length > 0) {
    base.trustAnchors = await Promise.all(flags.trustAnchor.map((f) => readCappedUserFile(f, 'trust anchor', MAX_SMALL_FILE_BYTES)));
  }
  if (flags.collateral) {
    // A directory or a file; what is inside is checked (and capped) by the verifier that opens it.
    try {
      await import('node:fs/promises').then((fs) => fs.stat(flags.collateral!));
    } catch (e) {
      throw new CliUsageError(`cannot read collateral '${flags.collateral}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  const attachments: Record<string, Uint8Array> = {};
  for (const name of ATTACHMENTS) {
    const p = flags[name];
    if (p) attachments[name] = await readCappedUserFile(p, name, name === 'eventlog' ? MAX_EVIDENCE_BYTES : MAX_COLLATERAL_FILE_BYTES);
  }
  const registry = createVerifierRegistry();
  const collateral = new CollateralOptions(flags.collateral, base);

  // Files are read synchronously, one at a time: from the page cache open+fstat+read+close cost a few µs, far less
  // CPU than the thread-pool round trips of asynchronous reads, and verification is CPU-bound on this thread anyway.
  let out = '';
  let allVerified = true;
  let ioFailed = false;
  for (let i = 0; i < files.length; i++) {
    const read = readEvidence(files[i]);
    let line: VerifyLine;
    if (!read.ok) {
      ioFailed = true;
      line = { file: files[i], verified: false, tee: null, tcbStatus: null, advisories: [], claims: null, errors: [read.error] };
    } else {
      const r = await verifyOne(registry, collateral, flags.tee, { evidence: read.bytes, attachments });
      line = toLine(files[i], r, policy);
    }
    allVerified &&= line.verified;
    out += flags.json ? `${JSON.stringify(line)}\n` : human(line);
    if (out.length >= FLUSH_BYTES) {
      ctx.io.out(out);
      out = '';
    }
  }
  if (out.length > 0) ctx.io.out(out);
  ctx.setExit(ioFailed ? EXIT.USAGE : allVerified ? EXIT.OK : EXIT.REJECTED);
}
