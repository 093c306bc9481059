import type { Claims } from '../tee/common/claims.js';
import type { RuleFailure } from './types.js';

/**
 * SEV-SNP rules the generic policy cannot express. The generic keys already cover the rest, by claim name:
 * `measurements.{measurement,hostData,idKeyDigest,authorKeyDigest,familyId,imageId}` (allowed values),
 * `minSvns.{bootloader,tee,snp,microcode,fmc,guestSvn}` (minimum REPORTED_TCB per component), `allowDebug`
 * (policy DEBUG bit, forbidden by default), `platform.{productLine,chipId,signingKey}`.
 */
export type TcbComponent = 'fmc' | 'bootloader' | 'tee' | 'snp' | 'microcode';
export type TcbMinimum = Partial<Record<TcbComponent, number>>;

export interface SnpPolicy {
  /** Highest VMPL accepted (0 = only the most privileged level, as Azure and Trustee require). */
  maxVmpl?: number;
  /** Endorsement keys accepted; absent = both. */
  signingKeys?: ('vcek' | 'vlek')[];
  /** Guest policy MIGRATE_MA (a migration agent may move the guest): rejected unless true. */
  allowMigrateMa?: boolean;
  /** Guest policy SMT: accepted unless false. */
  allowSmt?: boolean;
  /** Require an ID block (non-zero ID_KEY_DIGEST) / an author key (AUTHOR_KEY_EN). */
  requireIdBlock?: boolean;
  requireAuthorKey?: boolean;
  /** Minimum per TCB component of the CURRENT, COMMITTED and LAUNCH TCBs (REPORTED is `minSvns`). */
  minTcb?: { current?: TcbMinimum; committed?: TcbMinimum; launch?: TcbMinimum };
  /** Reject provisional firmware (COMMITTED TCB ≠ CURRENT TCB), as go-sev-guest does by default. */
  forbidProvisionalFirmware?: boolean;
}

const COMPONENTS: TcbComponent[] = ['fmc', 'bootloader', 'tee', 'snp', 'microcode'];
const KEYS = new Set(['maxVmpl', 'signingKeys', 'allowMigrateMa', 'allowSmt', 'requireIdBlock', 'requireAuthorKey', 'minTcb', 'forbidProvisionalFirmware']);

/** The decoded SNP report behind the claims: SNP claims' raw, or `raw.snp` of composite (Azure) claims. */
function snpRaw(claims: Claims): Record<string, unknown> | undefined {
  if (claims.tee === 'snp') return claims.raw;
  const inner = claims.raw.snp;
  return typeof inner === 'object' && inner !== null ? (inner as Record<string, unknown>) : undefined;
}

const obj = (v: unknown): Record<string, unknown> | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;

export function appraiseSnp(claims: Claims, p: SnpPolicy): RuleFailure[] {
  const raw = snpRaw(claims);
  if (!raw) return [];
  const out: RuleFailure[] = [];
  const fail = (rule: string, code: string, message: string) => out.push({ rule: `snp.${rule}`, code, message });
  const policy = obj(raw.policy) ?? {};

  if (p.maxVmpl !== undefined) {
    const v = raw.vmpl;
    if (typeof v !== 'number') fail('maxVmpl', 'SNP_CLAIM_MISSING', 'the SNP claims carry no VMPL');
    else if (v > p.maxVmpl) fail('maxVmpl', 'VMPL_TOO_HIGH', `the report was requested at VMPL ${v}, above the maximum ${p.maxVmpl}`);
  }
  if (p.signingKeys && !p.signingKeys.includes(raw.signingKey as 'vcek')) {
    fail('signingKeys', 'SIGNING_KEY_NOT_ALLOWED', `the report is signed by a ${String(raw.signingKey).toUpperCase()}, allowed: ${p.signingKeys.join(', ')}`);
  }
  if (p.allowMigrateMa !== true && policy.migrateMa === true) {
    fail('allowMigrateMa', 'MIGRATE_MA_FORBIDDEN', 'the guest policy allows a migration agent (MIGRATE_MA), which the policy forbids');
  }
  if (p.allowSmt === false && policy.smt === true) fail('allowSmt', 'SMT_FORBIDDEN', 'the guest policy allows SMT, which the policy forbids');
  if (p.requireIdBlock && (typeof raw.idKeyDigest !== 'string' || /^0*$/.test(raw.idKeyDigest))) {
    fail('requireIdBlock', 'ID_BLOCK_MISSING', 'the guest was launched without an ID block (ID_KEY_DIGEST is zero)');
  }
  if (p.requireAuthorKey && raw.authorKeyEn !== true) fail('requireAuthorKey', 'AUTHOR_KEY_MISSING', 'the ID block is not signed by an author key (AUTHOR_KEY_EN clear)');
  for (const which of ['current', 'committed', 'launch'] as const) {
    const min = p.minTcb?.[which];
    if (!min) continue;
    const tcb = obj(raw[`${which}Tcb`]) ?? {};
    for (const c of COMPONENTS) {
      const want = min[c];
      if (want === undefined) continue;
      const got = tcb[c];
      if (typeof got !== 'number') fail(`minTcb.${which}.${c}`, 'SNP_CLAIM_MISSING', `the ${which} TCB has no ${c} component on this product`);
      else if (got < want) fail(`minTcb.${which}.${c}`, 'TCB_TOO_LOW', `${which} TCB ${c} SPL ${got} is below the minimum ${want}`);
    }
  }
  if (p.forbidProvisionalFirmware) {
    const cur = obj(raw.currentTcb)?.raw;
    const com = obj(raw.committedTcb)?.raw;
    if (cur !== com) fail('forbidProvisionalFirmware', 'PROVISIONAL_FIRMWARE', `committed TCB ${String(com)} differs from current TCB ${String(cur)} (provisional firmware)`);
  }
  return out;
}

/** Validates the `snp` section of a policy document; `invalid` builds the caller's error type. */
export function parseSnpPolicy(v: unknown, invalid: (msg: string) => Error): SnpPolicy {
  const o = obj(v);
  if (!o) throw invalid('snp must be a map');
  for (const k of Object.keys(o)) if (!KEYS.has(k)) throw invalid(`unknown key 'snp.${k}' (known: ${[...KEYS].join(', ')})`);
  const bool = (k: string) => {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw invalid(`snp.${k} must be true or false`);
    return o[k] as boolean | undefined;
  };
  const uint = (x: unknown, w: string, max: number) => {
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > max) throw invalid(`${w} must be an integer 0..${max}`);
    return x;
  };
  const p: SnpPolicy = {};
  if (o.maxVmpl !== undefined) p.maxVmpl = uint(o.maxVmpl, 'snp.maxVmpl', 3);
  if (o.signingKeys !== undefined) {
    if (!Array.isArray(o.signingKeys) || !o.signingKeys.every((k) => k === 'vcek' || k === 'vlek')) {
      throw invalid("snp.signingKeys must be a list of 'vcek' / 'vlek'");
    }
    p.signingKeys = o.signingKeys as SnpPolicy['signingKeys'];
  }
  for (const k of ['allowMigrateMa', 'allowSmt', 'requireIdBlock', 'requireAuthorKey', 'forbidProvisionalFirmware'] as const) {
    const b = bool(k);
    if (b !== undefined) p[k] = b;
  }
  if (o.minTcb !== undefined) {
    const m = obj(o.minTcb);
    if (!m) throw invalid('snp.minTcb must be a map of current/committed/launch');
    p.minTcb = {};
    for (const [which, comps] of Object.entries(m)) {
      if (which !== 'current' && which !== 'committed' && which !== 'launch') throw invalid(`unknown key 'snp.minTcb.${which}'`);
      const c = obj(comps);
      if (!c) throw invalid(`snp.minTcb.${which} must be a map`);
      const t: TcbMinimum = {};
      for (const [name, x] of Object.entries(c)) {
        if (!(COMPONENTS as string[]).includes(name)) throw invalid(`unknown TCB component 'snp.minTcb.${which}.${name}'`);
        t[name as TcbComponent] = uint(x, `snp.minTcb.${which}.${name}`, 255);
      }
      p.minTcb[which] = t;
    }
  }
  return p;
}
