import { EvidenceFormatError } from '../../common/errors.js';
import { ByteReader } from '../../common/reader.js';
import { TPM_ALG, algName, hashAlgById } from '../abi/constants.js';
import { EV } from './types.js';

/** A malformed event log: names the byte offset of the event that failed and why. */
export class EventLogError extends EvidenceFormatError {
  readonly offset: number;
  constructor(offset: number, reason: string) {
    super('EVENTLOG_MALFORMED', `event log is malformed at offset ${offset}: ${reason}`);
    this.offset = offset;
  }
}

export interface SpecIdEvent {
  platformClass: number;
  specVersionMinor: number;
  specVersionMajor: number;
  specErrata: number;
  uintnSize: number;
  algorithms: { algorithmId: number; digestSize: number }[];
  vendorInfo: Uint8Array;
}

export interface TcgEvent {
  /** Position in the log (0 = the first, SHA-1-format, event). */
  seq: number;
  offset: number;
  pcr: number;
  type: number;
  /** Digests by TPM_ALG_ID, in log order. */
  digests: { alg: number; digest: Uint8Array }[];
  data: Uint8Array;
}

export interface EventLog {
  /** crypto-agile when the first event is a Spec ID Event03, else the TPM 1.2 SHA-1 format. */
  format: 'crypto-agile' | 'sha1';
  specId?: SpecIdEvent;
  events: TcgEvent[];
  /** Banks the log carries digests for. */
  banks: number[];
}

const SPEC_ID_SIGNATURE = 'Spec ID Event03\0';
const MAX_EVENT_DATA = 16 * 1024 * 1024;

function readSpecId(data: Uint8Array, offset: number): SpecIdEvent {
  const r = new ByteReader(data, 'TCG_EfiSpecIdEvent');
  r.skip(16, 'signature');
  const platformClass = r.u32le('platformClass');
  const specVersionMinor = r.u8('specVersionMinor');
  const specVersionMajor = r.u8('specVersionMajor');
  const specErrata = r.u8('specErrata');
  const uintnSize = r.u8('uintnSize');
  const n = r.u32le('numberOfAlgorithms');
  if (n === 0 || n > 16) throw new EventLogError(offset, `Spec ID event lists ${n} algorithms (1..16 allowed)`);
  const algorithms: SpecIdEvent['algorithms'] = [];
  for (let i = 0; i < n; i++) {
    const algorithmId = r.u16le('algorithmId');
    const digestSize = r.u16le('digestSize');
    const known = hashAlgById(algorithmId);
    if (known && known.size !== digestSize) {
      throw new EventLogError(offset, `Spec ID event gives ${known.name} a digest size of ${digestSize}, expected ${known.size}`);
    }
    if (digestSize === 0 || digestSize > 64) throw new EventLogError(offset, `Spec ID event digest size ${digestSize} for ${algName(algorithmId)}`);
    algorithms.push({ algorithmId, digestSize });
  }
  const vlen = r.u8('vendorInfoSize');
  const vendorInfo = r.bytes(vlen, 'vendorInfo');
  if (r.remaining !== 0) throw new EventLogError(offset, `Spec ID event has ${r.remaining} bytes after vendorInfo`);
  if (specVersionMajor !== 2) throw new EventLogError(offset, `Spec ID event version ${specVersionMajor}.${specVersionMinor} is not 2.x`);
  return { platformClass, specVersionMinor, specVersionMajor, specErrata, uintnSize, algorithms, vendorInfo };
}

function rewrap(e: unknown, offset: number): never {
  if (e instanceof EventLogError) throw e;
  if (e instanceof EvidenceFormatError) throw new EventLogError(offset, e.message);
  throw e;
}

/**
 * Parses a TCG PC Client event log (binary_bios_measurements): the SHA-1-format first event, then either
 * crypto-agile TCG_PCR_EVENT2 records (when the first event is the Spec ID event) or more SHA-1 records.
 * Structures are little-endian. Every length is checked before use; nothing past the buffer is read.
 */
export function parseEventLog(buf: Uint8Array): EventLog {
  if (buf.length === 0) throw new EventLogError(0, 'the log is empty');
  const r = new ByteReader(buf, 'event log');
  const events: TcgEvent[] = [];
  let specId: SpecIdEvent | undefined;
  let start = 0;
  try {
    const pcr = r.u32le('PCRIndex');
    const type = r.u32le('EventType');
    const digest = r.bytes(20, 'SHA1 digest');
    const size = r.u32le('EventSize');
    if (size > MAX_EVENT_DATA || size > r.remaining) throw new EventLogError(0, `EventSize ${size} runs past the end of the log (${r.remaining} bytes left)`);
    const data = r.bytes(size, 'Event');
    const isSpecId =
      type === EV.NO_ACTION && pcr === 0 && data.length >= 16 && Buffer.from(data.subarray(0, 16)).toString('latin1') === SPEC_ID_SIGNATURE;
    if (isSpecId) specId = readSpecId(data, 0);
    events.push({ seq: 0, offset: 0, pcr, type, digests: [{ alg: TPM_ALG.SHA1, digest }], data });
  } catch (e) {
    rewrap(e, 0);
  }
  const sizes = new Map<number, number>((specId?.algorithms ?? []).map((a) => [a.algorithmId, a.digestSize]));
  while (r.remaining > 0) {
    start = r.offset;
    // Some firmware pads the log area with zeros after the last event: stop there rather than misparse.
    if (buf.subarray(start).every((b) => b === 0)) break;
    try {
      const pcr = r.u32le('PCRIndex');
      const type = r.u32le('EventType');
      let digests: TcgEvent['digests'];
      if (specId) {
        const count = r.u32le('digests.count');
        if (count > 16) throw new EventLogError(start, `event claims ${count} digests`);
        digests = [];
        for (let i = 0; i < count; i++) {
          const alg = r.u16le('hashAlg');
          const n = sizes.get(alg);
          if (n === undefined) throw new EventLogError(start, `digest algorithm ${algName(alg)} is not declared in the Spec ID event`);
          digests.push({ alg, digest: r.bytes(n, `digest ${algName(alg)}`) });
        }
      } else {
        digests = [{ alg: TPM_ALG.SHA1, digest: r.bytes(20, 'SHA1 digest') }];
      }
      const size = r.u32le('EventSize');
      if (size > MAX_EVENT_DATA || size > r.remaining) {
        throw new EventLogError(start, `EventSize ${size} runs past the end of the log (${r.remaining} bytes left)`);
      }
      const data = r.bytes(size, 'Event');
      if (pcr > 0xff && type !== EV.NO_ACTION) throw new EventLogError(start, `PCR index ${pcr} is out of range`);
      events.push({ seq: events.length, offset: start, pcr, type, digests, data });
    } catch (e) {
      rewrap(e, start);
    }
  }
  const banks = specId ? specId.algorithms.map((a) => a.algorithmId) : [TPM_ALG.SHA1];
  return { format: specId ? 'crypto-agile' : 'sha1', specId, events, banks };
}
