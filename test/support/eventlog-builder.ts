/**
 * Builds a TCG crypto-agile measured-boot event log (PC Client PFP spec §10.2: a SHA-1-format Spec ID Event03
 * header, then TCG_PCR_EVENT2 records), SHA-256 bank only, for tests that replay it into a swtpm.
 */
import { createHash } from 'node:crypto';

export interface BuiltEvent {
  pcr: number;
  type: number;
  data: Buffer;
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};

export const sha256 = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();

export function buildEventLog(events: BuiltEvent[]): { log: Buffer; digests: { pcr: number; digest: Buffer }[] } {
  const specId = Buffer.concat([
    Buffer.from('Spec ID Event03\0', 'latin1'),
    u32(0), // platformClass: client
    Buffer.from([0, 2, 0, 2]), // specVersionMinor 0, major 2, errata 0, uintnSize 2 (64-bit)
    u32(1), u16(0x000b), u16(32), // one algorithm: SHA-256, 32 bytes
    Buffer.from([0]), // vendorInfoSize
  ]);
  const parts: Uint8Array[] = [u32(0), u32(0x3), Buffer.alloc(20), u32(specId.length), specId];
  const digests: { pcr: number; digest: Buffer }[] = [];
  for (const e of events) {
    const d = sha256(e.data);
    digests.push({ pcr: e.pcr, digest: d });
    parts.push(u32(e.pcr), u32(e.type), u32(1), u16(0x000b), d, u32(e.data.length), e.data);
  }
  return { log: Buffer.concat(parts), digests };
}
