import { verify as cryptoVerify } from 'node:crypto';
import { CliUsageError } from '../context.js';
import { CofferError, type ErrorReport, toErrorReport, UsageError } from '../../tee/common/errors.js';
import { createVerifierRegistry, type VerifierRegistry } from '../../tee/index.js';
import type { TeeType } from '../../tee/common/claims.js';
import { readFileCappedSync } from '../../tee/common/read-capped.js';
import { verifyEvidenceWith, type VerificationResult } from '../../tee/verify-evidence.js';
import type { AsyncSignatureVerifier, EvidenceInput, TeeVerifier, VerifyOptions } from '../../tee/common/verifier.js';
import { appraise } from '../../policy/appraise.js';
import type { AppraisalPolicy } from '../../policy/types.js';

/**
 * The per-thread half of `coffer verify`: turns a run of evidence files into their result lines. The main thread
 * and every worker of the pool (verify-pool.ts) run one of these; what they share is a VerifySetup, which is plain
 * data (structured-cloneable), so each thread builds its own registry, opens the collateral itself and caches what
 * it verified once. Nothing here prints: the caller writes the text, in input order.
 */

/** Input caps: evidence (Azure JSON evidence carries event logs: a few MB at most). */
export const MAX_EVIDENCE_BYTES = 16 * 1024 * 1024;

/** Everything a thread needs to verify files the way `coffer verify` was asked to; flags already validated. */
export interface VerifySetup {
  tee: TeeType | 'auto';
  json: boolean;
  /** Verification time, ms since the epoch: the same instant for every file and every thread. */
  atMs: number;
  nonce?: Uint8Array;
  policy: AppraisalPolicy;
  trustAnchors?: Uint8Array[];
  collateral?: string;
  attachments: Record<string, Uint8Array>;
  /**
   * Evidence verified at once by this thread, at most (>= 1). Above 1, signatures are verified off this thread (the
   * BatchVerifier's verifySignature) while it parses the next files; 1 is the synchronous, one-at-a-time path.
   */
  inFlight: number;
}

/** node:crypto.verify's callback form: the verify runs on libuv's thread pool, not on the calling thread. */
export const asyncVerify: AsyncSignatureVerifier = (alg, data, key, signature) =>
  new Promise((resolve, reject) => cryptoVerify(alg, data, key, signature, (err, ok) => (err ? reject(err) : resolve(ok))));

/** The result of a run of files: their lines (in order) and what the exit status needs to know. */
export interface ChunkResult {
  text: string;
  /** Some evidence was rejected (exit 1 unless an I/O error makes it 2). */
  rejected: boolean;
  /** Some file could not be read or was over the cap (exit 2). */
  ioFailed: boolean;
}

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
    let text = `OK       ${line.file}: verified ${line.tee}${tcb}${adv}\n`;
    const warnings = line.claims?.warnings as string[] | undefined;
    const notes = line.claims?.notes as string[] | undefined;
    if (warnings) for (const w of warnings) text += `  warning: ${w}\n`;
    if (notes) for (const n of notes) text += `  note: ${n}\n`;
    return text;
  }
  const why = line.errors.map((e) => `  ${e.code}: ${e.message}`).join('\n');
  return `REJECTED ${line.file}${line.tee ? ` (${line.tee})` : ''}\n${why}\n`;
}

/** An evidence file that could not be read (or is over the cap): its own result line, exit status 2. */
type Read = { ok: true; bytes: Uint8Array } | { ok: false; error: ErrorReport };

/** Evidence files up to this size are read with no fstat, into a thread's reused scratch buffer (quotes: a few KB). */
const SCRATCH_BYTES = 64 * 1024;

function readEvidence(file: string, scratch: Uint8Array): Read {
  try {
    return { ok: true, bytes: readFileCappedSync(file, MAX_EVIDENCE_BYTES, 'evidence file', scratch) };
  } catch (e) {
    if (e instanceof CofferError) return { ok: false, error: toErrorReport(e) };
    return { ok: false, error: { code: 'IO_ERROR', message: `cannot read evidence '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` } };
  }
}

function isErrorReport(x: VerifyOptions | ErrorReport): x is ErrorReport {
  return typeof (x as ErrorReport).code === 'string' && typeof (x as ErrorReport).message === 'string';
}

/**
 * Verifies files for one thread. Collateral is opened once per verifier that needs it (its shape depends on the
 * TEE: a mixed batch of SGX and SNP evidence opens it both ways), on the first file of that TEE, so a garbage first
 * file changes nothing. Malformed collateral rejects the files of that TEE (exit 1); an unreadable or oversized
 * one, or --collateral for a verifier that takes none, is a usage error (CliUsageError: the batch stops, exit 2).
 */
export class BatchVerifier {
  private readonly registry: VerifierRegistry = createVerifierRegistry();
  private readonly byTee = new Map<TeeType, Promise<VerifyOptions | ErrorReport>>();
  private readonly base: VerifyOptions;
  private readonly scratch = new Uint8Array(SCRATCH_BYTES);

  /**
   * verifySignature: what verifies signatures when setup.inFlight > 1 (default libuv's pool; the CLI's single thread
   * passes its SignatureWorker's; tests count the calls in flight).
   */
  constructor(
    private readonly setup: VerifySetup,
    verifySignature: AsyncSignatureVerifier = asyncVerify,
  ) {
    this.base = { at: new Date(setup.atMs), nonce: setup.nonce };
    if (setup.trustAnchors && setup.trustAnchors.length > 0) this.base.trustAnchors = setup.trustAnchors;
    if (setup.inFlight > 1) this.base.verifySignature = verifySignature;
  }

  /**
   * Verifies files[from..to); the text is their result lines, in input order. Up to setup.inFlight files are
   * verified at once (their signatures on the injected verifier: libuv's pool, or the signature worker); each file's
   * result is its own line whatever the others'.
   * With `stream`, the lines are handed to stream.write as they are done, in pieces of at least stream.bytes, and the
   * result's text is what is left (the last piece).
   */
  async run(files: readonly string[], from = 0, to = files.length, stream?: { bytes: number; write(text: string): void }): Promise<ChunkResult> {
    let text = '';
    let rejected = false;
    let ioFailed = false;
    const { json, policy } = this.setup;
    const window = Math.max(1, this.setup.inFlight);
    const pending: Promise<VerifyLine>[] = [];
    const emit = (line: VerifyLine): void => {
      if (!line.verified) rejected = true;
      text += json ? `${JSON.stringify(line)}\n` : human(line);
      if (stream && text.length >= stream.bytes) {
        stream.write(text);
        text = '';
      }
    };
    for (let i = from; i < to; i++) {
      const file = files[i]!;
      const read = readEvidence(file, this.scratch);
      let line: Promise<VerifyLine>;
      if (!read.ok) {
        ioFailed = true;
        line = Promise.resolve({ file, verified: false, tee: null, tcbStatus: null, advisories: [], claims: null, errors: [read.error] });
      } else {
        line = this.verifyOne({ evidence: read.bytes, attachments: this.setup.attachments }).then((r) => toLine(file, r, policy));
        // Only a usage error rejects (unusable collateral): awaited in order below; this stops the ones behind it
        // from being reported as unhandled when the batch stops at the first.
        line.catch(() => {});
      }
      pending.push(line);
      if (pending.length >= window) emit(await pending.shift()!);
    }
    while (pending.length > 0) emit(await pending.shift()!);
    return { text, rejected, ioFailed };
  }

  private async verifyOne(input: EvidenceInput): Promise<VerificationResult> {
    let v: TeeVerifier;
    try {
      v = this.setup.tee === 'auto' ? this.registry.detect(input) : this.registry.get(this.setup.tee);
    } catch (e) {
      return { verified: false, advisories: [], errors: [toErrorReport(e)] };
    }
    // The promise is cached: files verified at once open the collateral once.
    let opening = this.byTee.get(v.tee);
    if (!opening) {
      opening = this.open(v);
      this.byTee.set(v.tee, opening);
    }
    const opts = await opening;
    if (isErrorReport(opts)) return { verified: false, tee: v.tee, advisories: [], errors: [opts] };
    return verifyEvidenceWith(this.registry, input, opts);
  }

  private async open(v: TeeVerifier): Promise<VerifyOptions | ErrorReport> {
    const opts: VerifyOptions = Object.assign({}, this.base, { tee: v.tee });
    const path = this.setup.collateral;
    if (!path) return opts;
    if (!v.openCollateral) throw new CliUsageError(`--collateral is not used by the ${v.tee} verifier`);
    try {
      return Object.assign(opts, await v.openCollateral(path));
    } catch (e) {
      if (e instanceof UsageError) throw new CliUsageError(e.message);
      return toErrorReport(e);
    }
  }
}
