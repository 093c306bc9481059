import { TD10_REPORT_LEN, TD15_REPORT_LEN } from '../dcap/constants.js';
import { EvidenceFormatError } from '../common/errors.js';

/**
 * TD report body: TDX 1.0 (584 bytes) and TDX 1.5 (648 bytes, adds TEE_TCB_SVN2 and MRSERVICETD)
 * (DCAP sgx_quote_4.h sgx_report2_body_t, sgx_quote_5.h sgx_report2_body_v1_5_t). Views, not copies.
 */
export interface TdReport {
  teeTcbSvn: Uint8Array;
  mrSeam: Uint8Array;
  mrSignerSeam: Uint8Array;
  seamAttributes: Uint8Array;
  tdAttributes: Uint8Array;
  xfam: Uint8Array;
  mrTd: Uint8Array;
  mrConfigId: Uint8Array;
  mrOwner: Uint8Array;
  mrOwnerConfig: Uint8Array;
  rtmr: [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  reportData: Uint8Array;
  teeTcbSvn2?: Uint8Array;
  mrServiceTd?: Uint8Array;
  /** TD_ATTRIBUTES.TUD.DEBUG (bit 0). */
  debug: boolean;
}

export function parseTdReport(b: Uint8Array): TdReport {
  if (b.length !== TD10_REPORT_LEN && b.length !== TD15_REPORT_LEN) {
    throw new EvidenceFormatError('BAD_LENGTH', `TD report is ${b.length} bytes, expected ${TD10_REPORT_LEN} or ${TD15_REPORT_LEN}`);
  }
  const s = (o: number, n: number) => b.subarray(o, o + n);
  const r: TdReport = {
    teeTcbSvn: s(0, 16),
    mrSeam: s(16, 48),
    mrSignerSeam: s(64, 48),
    seamAttributes: s(112, 8),
    tdAttributes: s(120, 8),
    xfam: s(128, 8),
    mrTd: s(136, 48),
    mrConfigId: s(184, 48),
    mrOwner: s(232, 48),
    mrOwnerConfig: s(280, 48),
    rtmr: [s(328, 48), s(376, 48), s(424, 48), s(472, 48)],
    reportData: s(520, 64),
    debug: (b[120] & 0x01) !== 0,
  };
  if (b.length === TD15_REPORT_LEN) {
    r.teeTcbSvn2 = s(584, 16);
    r.mrServiceTd = s(600, 48);
  }
  return r;
}
