import type { Command } from 'commander';
import { EXIT, type CommandContext } from '../context.js';
import { readCappedUserFile } from '../files.js';
import { toErrorReport } from '../../tee/common/errors.js';
import { bytesEqual, toHex } from '../../tee/common/hex.js';
import { createHash } from 'node:crypto';
import { algName, hashAlgById } from '../../tee/tpm/abi/constants.js';
import { EventLogError, parseEventLog, type EventLog } from '../../tee/tpm/eventlog/parse.js';
import { replayEventLog } from '../../tee/tpm/eventlog/replay.js';
import { decodeEvent } from '../../tee/tpm/eventlog/decode.js';
import { eventTypeName } from '../../tee/tpm/eventlog/types.js';

/** Firmware event logs are tens of KB; the kernel's securityfs node is capped well below this too. */
export const MAX_EVENTLOG_BYTES = 16 * 1024 * 1024;

/** One `coffer eventlog --json` document (contract: field names are stable). */
export interface EventLogReport {
  file: string;
  format: EventLog['format'];
  banks: string[];
  events: {
    seq: number;
    offset: number;
    pcr: number;
    type: string;
    digests: Record<string, string>;
    size: number;
    /**
     * Whether every digest is the hash of the event data. Only the digests are bound by the TPM; where this is
     * false the data is a description the firmware chose (normal for images: Authenticode hash) — or a lie.
     */
    digestVerified: boolean;
    decoded?: unknown;
  }[];
  /** Replayed PCR values per bank (only PCRs the log extends). */
  pcrs: Record<string, Record<string, string>>;
}

function bankName(id: number): string {
  return hashAlgById(id)?.name ?? algName(id);
}

export function eventLogReport(file: string, log: EventLog): EventLogReport {
  const pcrs: EventLogReport['pcrs'] = {};
  for (const [bank, values] of replayEventLog(log)) {
    const m: Record<string, string> = {};
    for (const idx of [...values.keys()].sort((a, b) => a - b)) m[String(idx)] = toHex(values.get(idx)!);
    pcrs[bankName(bank)] = m;
  }
  return {
    file,
    format: log.format,
    banks: log.banks.map(bankName),
    events: log.events.map((e) => {
      const decoded = decodeEvent(e.type, e.data);
      return {
        seq: e.seq,
        offset: e.offset,
        pcr: e.pcr,
        type: eventTypeName(e.type),
        digests: Object.fromEntries(e.digests.map((d) => [bankName(d.alg), toHex(d.digest)])),
        size: e.data.length,
        digestVerified: e.digests.every((d) => {
          const h = hashAlgById(d.alg);
          return !!h && bytesEqual(d.digest, createHash(h.node).update(e.data).digest());
        }),
        ...(decoded ? { decoded } : {}),
      };
    }),
    pcrs,
  };
}

function describe(d: unknown): string {
  if (!d || typeof d !== 'object') return '';
  const o = d as Record<string, unknown>;
  switch (o.kind) {
    case 'efi_variable':
      return `${o.unicodeName} {${o.variableName}} (${o.variableDataLength} bytes)`;
    case 'efi_image_load':
      return `image at ${o.imageLocationInMemory}, ${o.imageLengthInMemory} bytes, device path ${String(o.devicePath).length / 2} bytes`;
    case 'separator':
      return o.error ? 'separator (error)' : `separator ${o.value}`;
    case 'startup_locality':
      return `StartupLocality ${o.locality}`;
    default:
      return JSON.stringify((o.text as string | undefined) ?? '').slice(0, 160);
  }
}

function human(r: EventLogReport): string {
  const lines = [`${r.file}: ${r.format} event log, ${r.events.length} events, banks ${r.banks.join(' ')}`];
  for (const e of r.events) {
    const what = e.decoded ? `  ${describe(e.decoded)}` : '';
    lines.push(`#${e.seq} @${e.offset} PCR${e.pcr} ${e.type} (${e.size} bytes${e.digestVerified ? ', digest = H(data)' : ''})${what}`);
    for (const [b, h] of Object.entries(e.digests)) lines.push(`    ${b}: ${h}`);
  }
  lines.push('PCRs after replay:');
  for (const [bank, m] of Object.entries(r.pcrs)) {
    lines.push(`  ${bank}:`);
    for (const [i, h] of Object.entries(m)) lines.push(`    ${i.padStart(2)}: ${h}`);
  }
  return `${lines.join('\n')}\n`;
}

export function registerEventlog(program: Command, ctx: CommandContext): void {
  program
    .command('eventlog')
    .description('parse and replay a TCG event log (binary_bios_measurements): events and PCR values per bank')
    .argument('<file>', 'TCG PC Client event log')
    .option('--json', 'one JSON document')
    .action(async (file: string, flags: { json?: boolean }) => {
      const bytes = await readCappedUserFile(file, 'event log', MAX_EVENTLOG_BYTES);
      try {
        const report = eventLogReport(file, parseEventLog(bytes));
        ctx.io.out(flags.json ? `${JSON.stringify(report)}\n` : human(report));
        ctx.setExit(EXIT.OK);
      } catch (e) {
        const err = toErrorReport(e);
        const offset = e instanceof EventLogError ? e.offset : undefined;
        if (flags.json) ctx.io.out(`${JSON.stringify({ file, error: { ...err, offset } })}\n`);
        else ctx.io.err(`coffer: ${file}: ${err.code}: ${err.message}\n`);
        ctx.setExit(EXIT.REJECTED);
      }
    });
}
