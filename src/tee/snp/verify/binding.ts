import { VerificationError } from '../../common/errors.js';
import { bytesEqual, toHex } from '../../common/hex.js';
import type { SnpReport } from '../abi/report.js';
import type { VcekExtensions } from '../certs/parse.js';

/**
 * The VCEK/VLEK is derived from (chip, TCB): its SPL extensions must equal the report's REPORTED_TCB component by
 * component (FMC too on Turin), and a VCEK's hwID must equal the report's CHIP_ID (8 bytes on Turin, 64 before).
 */
export function checkTcbBinding(rep: SnpReport, ext: VcekExtensions): void {
  const t = rep.reportedTcb;
  const pairs: [string, number | undefined, number | undefined][] = [
    ['bootloader (blSPL)', t.bootloader, ext.blSPL],
    ['tee (teeSPL)', t.tee, ext.teeSPL],
    ['snp (snpSPL)', t.snp, ext.snpSPL],
    ['microcode (ucodeSPL)', t.microcode, ext.ucodeSPL],
  ];
  if (rep.tcbLayout === 'turin') {
    if (ext.fmcSPL === undefined) throw new VerificationError('TCB_MISMATCH', 'the Turin report has an FMC SPL but the certificate has no fmcSPL extension');
    pairs.unshift(['fmc (fmcSPL)', t.fmc, ext.fmcSPL]);
  } else if (ext.fmcSPL !== undefined) {
    throw new VerificationError('TCB_MISMATCH', `the certificate has an fmcSPL but the report uses the ${rep.product ?? 'Milan/Genoa'} TCB layout`);
  }
  for (const [name, got, want] of pairs) {
    if (got !== want) {
      throw new VerificationError('TCB_MISMATCH', `reported TCB ${name} is ${got}, the certificate was issued for ${want}`);
    }
  }
}

export function isMasked(chipId: Uint8Array): boolean {
  return chipId.every((x) => x === 0);
}

/**
 * VCEK: hwID must equal CHIP_ID; a masked (all-zero) CHIP_ID cannot be bound to a chip-unique key and is rejected.
 * VLEK: the key is issued to a cloud provider, not to a chip (its certificate carries csp_id and no hwID), so there
 * is nothing to compare: the check is skipped, and it is only then that MASK_CHIP_ID (an all-zero CHIP_ID) is fine.
 */
export function checkChipBinding(rep: SnpReport, ext: VcekExtensions, signingKey: 'vcek' | 'vlek'): void {
  if (signingKey === 'vlek') return;
  if (!ext.hwId) throw new VerificationError('CHIP_ID_MISMATCH', 'the VCEK has no hwID to bind the report to a chip');
  if (isMasked(rep.chipId)) {
    throw new VerificationError('CHIP_ID_MISMATCH', 'CHIP_ID is masked (all zero), so the report cannot be bound to the chip-unique VCEK');
  }
  const n = ext.hwId.length;
  const head = rep.chipId.subarray(0, n);
  const tailZero = rep.chipId.subarray(n).every((x) => x === 0);
  if (!bytesEqual(head, ext.hwId) || !tailZero) {
    throw new VerificationError('CHIP_ID_MISMATCH', `report CHIP_ID ${toHex(rep.chipId.subarray(0, Math.max(n, 8)))}… does not match the VCEK hwID ${toHex(ext.hwId)}`);
  }
}
