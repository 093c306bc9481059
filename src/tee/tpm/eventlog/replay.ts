import { createHash } from 'node:crypto';
import { hashAlgById } from '../abi/constants.js';
import type { EventLog } from './parse.js';
import { EV } from './types.js';

/** Replayed PCR values per bank; only PCRs the log extends (or initialises) appear. */
export type ReplayedPcrs = Map<number, Map<number, Uint8Array>>;

const STARTUP_LOCALITY = 'StartupLocality\0';

/**
 * Replays the log: PCR_new = H(PCR_old ‖ digest) per bank, starting from zeros. EV_NO_ACTION is never extended;
 * a StartupLocality EV_NO_ACTION on PCR0 sets PCR0's initial value to 0…0‖locality (PFP spec §10.4.5.3).
 * Banks the log declares but node cannot hash are skipped (they cannot be compared anyway).
 */
export function replayEventLog(log: EventLog): ReplayedPcrs {
  const out: ReplayedPcrs = new Map();
  for (const bank of log.banks) {
    const alg = hashAlgById(bank);
    if (!alg) continue;
    const pcrs = new Map<number, Uint8Array>();
    out.set(bank, pcrs);
    for (const ev of log.events) {
      if (ev.type === EV.NO_ACTION) {
        if (
          ev.pcr === 0 &&
          ev.data.length === 17 &&
          Buffer.from(ev.data.subarray(0, 16)).toString('latin1') === STARTUP_LOCALITY &&
          !pcrs.has(0)
        ) {
          const init = new Uint8Array(alg.size);
          init[alg.size - 1] = ev.data[16];
          pcrs.set(0, init);
        }
        continue;
      }
      // The first event of a crypto-agile log is the Spec ID NO_ACTION (handled above); in a SHA-1 log it is real.
      const d = ev.digests.find((x) => x.alg === bank);
      if (!d) continue;
      const prev = pcrs.get(ev.pcr) ?? new Uint8Array(alg.size);
      pcrs.set(ev.pcr, new Uint8Array(createHash(alg.node).update(prev).update(d.digest).digest()));
    }
  }
  return out;
}
