import { CollateralError } from '../common/errors.js';
import { TCB_STATUSES, type TcbStatus } from '../common/claims.js';

/**
 * Typed TCB info (v2/v3) and QE identity (v2/v3) parsed from the JSON value Intel signs
 * (QVL AttestationParsers/src/Json/TcbInfo.cpp, TcbLevel.cpp, TdxModuleIdentity.cpp; Verifiers/EnclaveIdentityV2.cpp).
 * Levels are sorted the way QVL keeps them (descending); QE identity levels keep JSON order as QVL does.
 */
export interface TcbLevel {
  sgxComponents: number[];
  pceSvn: number;
  tdxComponents?: number[];
  tcbDate: string;
  /** Date.parse(tcbDate), read once at parse time: the evaluation compares dates on every quote. */
  tcbDateMs?: number;
  tcbStatus: TcbStatus;
  advisoryIds: string[];
}

export interface IsvLevel {
  isvSvn: number;
  tcbDate: string;
  /** Date.parse(tcbDate), read once at parse time: the evaluation compares dates on every quote. */
  tcbDateMs?: number;
  tcbStatus: TcbStatus;
  advisoryIds: string[];
}

export interface TdxModuleIdentity {
  id: string;
  mrSigner: Uint8Array;
  attributes: Uint8Array;
  attributesMask: Uint8Array;
  tcbLevels: IsvLevel[];
}

export interface TcbInfo {
  id: 'SGX' | 'TDX';
  version: number;
  issueDate: Date;
  nextUpdate: Date;
  fmspc: string;
  pceId: string;
  tcbType: number;
  tcbEvaluationDataNumber: number;
  tcbLevels: TcbLevel[];
  tdxModule?: { mrSigner: Uint8Array; attributes: Uint8Array; attributesMask: Uint8Array };
  tdxModuleIdentities?: TdxModuleIdentity[];
}

export interface QeIdentity {
  id: 'QE' | 'TD_QE' | 'QVE';
  version: number;
  issueDate: Date;
  nextUpdate: Date;
  tcbEvaluationDataNumber: number;
  miscSelect: Uint8Array;
  miscSelectMask: Uint8Array;
  attributes: Uint8Array;
  attributesMask: Uint8Array;
  mrSigner: Uint8Array;
  isvProdId: number;
  tcbLevels: IsvLevel[];
}

type J = Record<string, unknown>;

function bad(what: string, msg: string): CollateralError {
  return new CollateralError('COLLATERAL_INVALID', `${what} is malformed: ${msg}`);
}

function obj(v: unknown, what: string, field: string): J {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(what, `${field} is not an object`);
  return v as J;
}
function arr(v: unknown, what: string, field: string): unknown[] {
  if (!Array.isArray(v)) throw bad(what, `${field} is not an array`);
  return v;
}
function int(v: unknown, what: string, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw bad(what, `${field} is not a non-negative integer`);
  return v;
}
function str(v: unknown, what: string, field: string): string {
  if (typeof v !== 'string') throw bad(what, `${field} is not a string`);
  return v;
}
function hexBytes(v: unknown, len: number, what: string, field: string): Uint8Array {
  const s = str(v, what, field);
  if (s.length !== len * 2 || !/^[0-9a-fA-F]*$/.test(s)) throw bad(what, `${field} is not ${len} bytes of hex`);
  return new Uint8Array(Buffer.from(s, 'hex'));
}
function date(v: unknown, what: string, field: string): Date {
  const s = str(v, what, field);
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) throw bad(what, `${field} is not a date`);
  return d;
}
function status(v: unknown, what: string, field: string): TcbStatus {
  const s = str(v, what, field);
  if (!(TCB_STATUSES as readonly string[]).includes(s)) throw bad(what, `${field} '${s}' is not a known TCB status`);
  return s as TcbStatus;
}
function advisories(v: unknown, what: string, field: string): string[] {
  if (v === undefined) return [];
  return arr(v, what, field).map((a, i) => str(a, what, `${field}[${i}]`));
}

function parseJson(text: string, what: string): J {
  try {
    return obj(JSON.parse(text), what, 'document');
  } catch (e) {
    if (e instanceof CollateralError) throw e;
    throw bad(what, `not JSON (${(e as Error).message})`);
  }
}

function cmpVec(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

function isvLevels(v: unknown, what: string, field: string): IsvLevel[] {
  return arr(v, what, field).map((l, i) => {
    const lv = obj(l, what, `${field}[${i}]`);
    const tcb = obj(lv.tcb, what, `${field}[${i}].tcb`);
    const tcbDate = str(lv.tcbDate, what, `${field}[${i}].tcbDate`);
    return {
      isvSvn: int(tcb.isvsvn, what, `${field}[${i}].tcb.isvsvn`),
      tcbDate,
      tcbDateMs: Date.parse(tcbDate),
      tcbStatus: status(lv.tcbStatus, what, `${field}[${i}].tcbStatus`),
      advisoryIds: advisories(lv.advisoryIDs, what, `${field}[${i}].advisoryIDs`),
    };
  });
}

export function parseTcbInfo(text: string): TcbInfo {
  const what = 'TCB info';
  const j = parseJson(text, what);
  const version = int(j.version, what, 'version');
  if (version !== 2 && version !== 3) throw bad(what, `version ${version} is not supported (2 or 3)`);
  const id = version === 2 ? 'SGX' : str(j.id, what, 'id');
  if (id !== 'SGX' && id !== 'TDX') throw bad(what, `id '${id}' is neither SGX nor TDX`);
  const tcbType = int(j.tcbType, what, 'tcbType');
  if (tcbType !== 0) throw bad(what, `tcbType ${tcbType} is not supported (0)`);
  const levels = arr(j.tcbLevels, what, 'tcbLevels').map((l, i): TcbLevel => {
    const f = `tcbLevels[${i}]`;
    const lv = obj(l, what, f);
    const tcb = obj(lv.tcb, what, `${f}.tcb`);
    let sgx: number[];
    let tdx: number[] | undefined;
    if (version === 2) {
      sgx = [];
      for (let c = 1; c <= 16; c++) {
        const k = `sgxtcbcomp${String(c).padStart(2, '0')}svn`;
        sgx.push(int(tcb[k], what, `${f}.tcb.${k}`));
      }
    } else {
      const comps = arr(tcb.sgxtcbcomponents, what, `${f}.tcb.sgxtcbcomponents`);
      if (comps.length !== 16) throw bad(what, `${f}.tcb.sgxtcbcomponents has ${comps.length} entries, not 16`);
      sgx = comps.map((c, k) => int(obj(c, what, `${f}.sgx[${k}]`).svn, what, `${f}.tcb.sgxtcbcomponents[${k}].svn`));
      if (id === 'TDX') {
        const t = arr(tcb.tdxtcbcomponents, what, `${f}.tcb.tdxtcbcomponents`);
        if (t.length !== 16) throw bad(what, `${f}.tcb.tdxtcbcomponents has ${t.length} entries, not 16`);
        tdx = t.map((c, k) => int(obj(c, what, `${f}.tdx[${k}]`).svn, what, `${f}.tcb.tdxtcbcomponents[${k}].svn`));
      }
    }
    const tcbDate = str(lv.tcbDate, what, `${f}.tcbDate`);
    return {
      sgxComponents: sgx,
      pceSvn: int(tcb.pcesvn, what, `${f}.tcb.pcesvn`),
      tdxComponents: tdx,
      tcbDate,
      tcbDateMs: Date.parse(tcbDate),
      tcbStatus: status(lv.tcbStatus, what, `${f}.tcbStatus`),
      advisoryIds: advisories(lv.advisoryIDs, what, `${f}.advisoryIDs`),
    };
  });
  if (levels.length === 0) throw bad(what, 'tcbLevels is empty');
  // QVL keeps levels in a std::set ordered descending: SGX components, then PCESVN, then TDX components.
  levels.sort((a, b) => {
    const s = cmpVec(b.sgxComponents, a.sgxComponents);
    if (s !== 0) return s;
    if (a.pceSvn !== b.pceSvn) return b.pceSvn - a.pceSvn;
    return a.tdxComponents && b.tdxComponents ? cmpVec(b.tdxComponents, a.tdxComponents) : 0;
  });
  const info: TcbInfo = {
    id,
    version,
    issueDate: date(j.issueDate, what, 'issueDate'),
    nextUpdate: date(j.nextUpdate, what, 'nextUpdate'),
    fmspc: hexBytes(j.fmspc, 6, what, 'fmspc') && str(j.fmspc, what, 'fmspc').toUpperCase(),
    pceId: hexBytes(j.pceId, 2, what, 'pceId') && str(j.pceId, what, 'pceId').toUpperCase(),
    tcbType,
    tcbEvaluationDataNumber: int(j.tcbEvaluationDataNumber, what, 'tcbEvaluationDataNumber'),
    tcbLevels: levels,
  };
  if (id === 'TDX') {
    const m = obj(j.tdxModule, what, 'tdxModule');
    info.tdxModule = {
      mrSigner: hexBytes(m.mrsigner, 48, what, 'tdxModule.mrsigner'),
      attributes: hexBytes(m.attributes, 8, what, 'tdxModule.attributes'),
      attributesMask: hexBytes(m.attributesMask, 8, what, 'tdxModule.attributesMask'),
    };
    if (j.tdxModuleIdentities !== undefined) {
      info.tdxModuleIdentities = arr(j.tdxModuleIdentities, what, 'tdxModuleIdentities').map((x, i) => {
        const f = `tdxModuleIdentities[${i}]`;
        const m2 = obj(x, what, f);
        const lv = isvLevels(m2.tcbLevels, what, `${f}.tcbLevels`);
        for (const l of lv) {
          if (l.tcbStatus !== 'UpToDate' && l.tcbStatus !== 'OutOfDate' && l.tcbStatus !== 'Revoked') {
            throw bad(what, `${f} level status ${l.tcbStatus} is not allowed for a TDX module`);
          }
        }
        lv.sort((a, b) => b.isvSvn - a.isvSvn);
        return {
          id: str(m2.id, what, `${f}.id`),
          mrSigner: hexBytes(m2.mrsigner, 48, what, `${f}.mrsigner`),
          attributes: hexBytes(m2.attributes, 8, what, `${f}.attributes`),
          attributesMask: hexBytes(m2.attributesMask, 8, what, `${f}.attributesMask`),
          tcbLevels: lv,
        };
      });
    }
  } else if (j.tdxModule !== undefined) {
    throw bad(what, 'an SGX TCB info must not carry tdxModule');
  }
  return info;
}

export function parseQeIdentity(text: string): QeIdentity {
  const what = 'QE identity';
  const j = parseJson(text, what);
  const version = int(j.version, what, 'version');
  if (version !== 2 && version !== 3) throw bad(what, `version ${version} is not supported (2 or 3)`);
  const id = str(j.id, what, 'id');
  if (id !== 'QE' && id !== 'TD_QE' && id !== 'QVE') throw bad(what, `id '${id}' is not QE, TD_QE or QVE`);
  const levels = isvLevels(j.tcbLevels, what, 'tcbLevels');
  if (levels.length === 0) throw bad(what, 'tcbLevels is empty');
  return {
    id,
    version,
    issueDate: date(j.issueDate, what, 'issueDate'),
    nextUpdate: date(j.nextUpdate, what, 'nextUpdate'),
    tcbEvaluationDataNumber: int(j.tcbEvaluationDataNumber, what, 'tcbEvaluationDataNumber'),
    miscSelect: hexBytes(j.miscselect, 4, what, 'miscselect'),
    miscSelectMask: hexBytes(j.miscselectMask, 4, what, 'miscselectMask'),
    attributes: hexBytes(j.attributes, 16, what, 'attributes'),
    attributesMask: hexBytes(j.attributesMask, 16, what, 'attributesMask'),
    mrSigner: hexBytes(j.mrsigner, 32, what, 'mrsigner'),
    isvProdId: int(j.isvprodid, what, 'isvprodid'),
    tcbLevels: levels,
  };
}
