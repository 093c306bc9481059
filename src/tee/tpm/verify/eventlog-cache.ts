import { digestOf } from './pcr-check.js';
import { parseEventLog, type EventLog } from '../eventlog/parse.js';
import { replayEventLog, type ReplayedPcrs } from '../eventlog/replay.js';

/** What replaying an event log gives, independent of any quote: its format, event count and final PCR values. */
export interface ReplayedLog {
  format: EventLog['format'];
  events: number;
  replay: ReplayedPcrs;
}

/**
 * Memo of event-log replays keyed by the SHA-256 of the log's bytes. Parsing and replaying depend on those bytes
 * alone, so a hit equals a recomputation (a fleet re-sends the same boot log every interval: one hash instead of
 * a parse and a hash per event). The comparison with the quoted PCR values is never cached: it is made per quote
 * by the caller. Only logs that parse are stored. Bounded (oldest out first), per verifier instance.
 */
export class EventLogCache {
  private readonly entries = new Map<string, ReplayedLog>();
  constructor(private readonly max = 256) {}

  replay(bytes: Uint8Array): ReplayedLog {
    const key = Buffer.from(digestOf('sha256', bytes)).toString('latin1');
    const hit = this.entries.get(key);
    if (hit) return hit;
    const r = replayLog(bytes);
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, r);
    return r;
  }
}

/** Parse + replay with no cache; throws the parser's typed errors. */
export function replayLog(bytes: Uint8Array): ReplayedLog {
  const log = parseEventLog(bytes);
  return { format: log.format, events: log.events.length, replay: replayEventLog(log) };
}
