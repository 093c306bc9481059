/**
 * Measured-boot events for node trust. The agent sends its event log next to its token; the log itself is not
 * signed, but replayed it must give exactly the PCR values the token attests (quoted and signed by the enrolled
 * AK), so each event it contains is then as trustworthy as the quote. Then a policy can name the events it expects,
 * and a change can be explained as "event #n on PCR p changed" instead of "PCR p differs".
 */
import { createHash } from 'node:crypto';
import { hashAlgByName } from '../../tee/tpm/abi/constants.js';
import { parseEventLog } from '../../tee/tpm/eventlog/parse.js';
import { replayEventLog } from '../../tee/tpm/eventlog/replay.js';
import { eventTypeName } from '../../tee/tpm/eventlog/types.js';
import type { NodeTrustEvent } from '../crds/types.js';

export const EVENT_LOG_MAX_BYTES = 4 * 1024 * 1024;

export class NodeEventLogError extends Error {
  constructor(
    readonly code: 'EVENTLOG_MALFORMED' | 'EVENTLOG_MISMATCH' | 'EVENTLOG_MISSING',
    message: string,
  ) {
    super(message);
    this.name = 'NodeEventLogError';
  }
}

/**
 * The events on `pcrs` in `bank`, after checking that the log replays to the attested PCR values
 * (`measurements` from the verified token: `pcr<bank>_<n>` → hex). A PCR the token does not attest cannot be
 * vouched for: that is an error, not a skip.
 */
export function attestedEvents(log: Uint8Array, measurements: Record<string, string>, pcrs: readonly number[], bank = 'sha256'): NodeTrustEvent[] {
  if (log.length > EVENT_LOG_MAX_BYTES) throw new NodeEventLogError('EVENTLOG_MALFORMED', `event log is ${log.length} bytes, more than ${EVENT_LOG_MAX_BYTES}`);
  const alg = hashAlgByName(bank);
  if (!alg) throw new NodeEventLogError('EVENTLOG_MALFORMED', `unknown bank ${bank}`);
  let parsed;
  try {
    parsed = parseEventLog(log);
  } catch (e) {
    throw new NodeEventLogError('EVENTLOG_MALFORMED', (e as Error).message);
  }
  const replay = replayEventLog(parsed).get(alg.id);
  for (const p of pcrs) {
    const attested = measurements[`pcr${bank}_${p}`];
    if (attested === undefined) throw new NodeEventLogError('EVENTLOG_MISSING', `the token does not attest PCR ${bank}:${p}`);
    const replayed = replay?.get(p);
    const hex = replayed ? Buffer.from(replayed).toString('hex') : '00'.repeat(alg.size);
    if (hex !== attested.toLowerCase()) throw new NodeEventLogError('EVENTLOG_MISMATCH', `the event log does not replay to the attested PCR ${bank}:${p} (log ${hex}, attested ${attested})`);
  }
  const want = new Set(pcrs);
  const out: NodeTrustEvent[] = [];
  for (const ev of parsed.events) {
    if (!want.has(ev.pcr) || ev.type === 0x3 /* EV_NO_ACTION: never extended */) continue;
    const d = ev.digests.find((x) => x.alg === alg.id);
    if (!d) continue;
    out.push({ pcr: ev.pcr, type: eventTypeName(ev.type), digest: Buffer.from(d.digest).toString('hex'), ...describe(ev.data) });
  }
  return out;
}

/**
 * Memo of attestedEvents, keyed by everything its result depends on: the SHA-256 of the log bytes, the bank, and
 * the listed PCRs with the values the token attests for them. Nodes re-send an unchanged boot log every interval
 * (and a fleet shares a few logs): a hit costs one hash instead of a parse and a replay. A changed log or a
 * changed attested PCR value is a different key, so it is always recomputed. Failures are not stored. Bounded.
 */
export class AttestedEventsCache {
  private readonly entries = new Map<string, readonly NodeTrustEvent[]>();
  constructor(private readonly max = 1024) {}

  events(log: Uint8Array, measurements: Record<string, string>, pcrs: readonly number[], bank = 'sha256'): readonly NodeTrustEvent[] {
    if (log.length > EVENT_LOG_MAX_BYTES) return attestedEvents(log, measurements, pcrs, bank); // refuses it
    const values = pcrs.map((p) => `${p}=${measurements[`pcr${bank}_${p}`]?.toLowerCase() ?? '-'}`).join(',');
    const key = `${createHash('sha256').update(log).digest('hex')}\n${bank}\n${values}`;
    const hit = this.entries.get(key);
    if (hit) return hit;
    const out = Object.freeze(attestedEvents(log, measurements, pcrs, bank).map((e) => Object.freeze(e)));
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, out);
    return out;
  }
}

/** Printable event data (EV_EFI_ACTION strings, EV_IPL command lines) as a short label; nothing for binary data. */
function describe(data: Uint8Array): { description?: string } {
  if (data.length === 0 || data.length > 512) return {};
  const s = Buffer.from(data).toString('latin1').replace(/\0+$/, '');
  return /^[\x20-\x7e]+$/.test(s) ? { description: s.slice(0, 256) } : {};
}

/**
 * The first difference between the reference events and the node's, per PCR, as one line each
 * ("PCR 4 event #2 (EV_EFI_BOOT_SERVICES_APPLICATION) digest 1a2b… != reference 3c4d… (shim)"); empty when equal.
 */
export function diffEvents(reference: readonly NodeTrustEvent[], actual: readonly NodeTrustEvent[], pcrs: readonly number[]): string[] {
  const out: string[] = [];
  const short = (h: string) => (h.length > 16 ? `${h.slice(0, 16)}…` : h);
  for (const p of pcrs) {
    const ref = reference.filter((e) => e.pcr === p);
    const got = actual.filter((e) => e.pcr === p);
    for (let i = 0; i < Math.max(ref.length, got.length); i++) {
      const r = ref[i];
      const g = got[i];
      if (r && g && r.digest.toLowerCase() === g.digest && (r.type === undefined || r.type === g.type)) continue;
      if (!g) out.push(`PCR ${p} event #${i} (${r!.type ?? 'event'}${r!.description ? ` ${r!.description}` : ''}) missing from the node's log`);
      else if (!r) out.push(`PCR ${p} event #${i} (${g.type}${g.description ? ` ${g.description}` : ''}, digest ${short(g.digest)}) not in the reference`);
      else out.push(`PCR ${p} event #${i} (${g.type}${g.description ? ` ${g.description}` : ''}) digest ${short(g.digest)} != reference ${short(r.digest.toLowerCase())}${r.description ? ` (${r.description})` : ''}`);
      break; // later events of this PCR follow from the first change; one line per PCR keeps the reason readable
    }
  }
  return out;
}
