import type { ProductLine } from './product.js';

/**
 * TCB_VERSION: a u64 of per-component security patch levels (SPLs). Milan and Genoa put bootloader, TEE, SNP and
 * microcode in bytes 0, 1, 6, 7; Turin adds FMC in byte 0 and shifts bootloader/TEE/SNP to bytes 1, 2, 3
 * (virtee/sev `TcbVersion::from_legacy_bytes` / `from_turin_bytes`). Byte index = byte in little-endian memory.
 */
export type TcbLayout = 'legacy' | 'turin';

export interface TcbVersion {
  /** Present only in the Turin layout. */
  fmc?: number;
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  /** The undecoded value (hex, 16 digits, as the u64 reads), kept so serialisation is exact. */
  raw: string;
}

export function layoutFor(product: ProductLine | undefined): TcbLayout {
  return product === 'Turin' ? 'turin' : 'legacy';
}

export function decodeTcb(v: bigint, layout: TcbLayout): TcbVersion {
  const b = (i: number) => Number((v >> BigInt(8 * i)) & 0xffn);
  const raw = v.toString(16).padStart(16, '0');
  if (layout === 'turin') return { fmc: b(0), bootloader: b(1), tee: b(2), snp: b(3), microcode: b(7), raw };
  return { bootloader: b(0), tee: b(1), snp: b(6), microcode: b(7), raw };
}

/** Builds a TCB_VERSION u64 from components (unnamed bytes zero). Used by test PKIs and by KDS queries. */
export function encodeTcb(t: Omit<TcbVersion, 'raw'>, layout: TcbLayout): bigint {
  const put = (x: number | undefined, i: number) => BigInt((x ?? 0) & 0xff) << BigInt(8 * i);
  if (layout === 'turin') return put(t.fmc, 0) | put(t.bootloader, 1) | put(t.tee, 2) | put(t.snp, 3) | put(t.microcode, 7);
  return put(t.bootloader, 0) | put(t.tee, 1) | put(t.snp, 6) | put(t.microcode, 7);
}

/** Components of a TCB in comparison order, FMC only where the layout has it. */
export function tcbComponents(t: TcbVersion): [name: 'fmc' | 'bootloader' | 'tee' | 'snp' | 'microcode', value: number][] {
  const out: [name: 'fmc' | 'bootloader' | 'tee' | 'snp' | 'microcode', value: number][] = [];
  if (t.fmc !== undefined) out.push(['fmc', t.fmc]);
  out.push(['bootloader', t.bootloader], ['tee', t.tee], ['snp', t.snp], ['microcode', t.microcode]);
  return out;
}
