import { K8sInputError } from './errors.js';

/**
 * resource.Quantity (k8s.io/apimachinery/pkg/api/resource): `<number><suffix>` with decimal SI suffixes
 * (n u m k M G T P E), binary ones (Ki … Ei) or an exponent (e3). Held as an exact fraction so rounding
 * (millicores, MiB) never suffers from binary floating point: ceil(0.3 * 1000) must be 300, not 301.
 */
export interface Quantity {
  num: bigint;
  den: bigint;
}

const RE = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$/;
const DEC: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const BIN: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };

export function parseQuantity(text: string | number, where = 'quantity'): Quantity {
  const s = typeof text === 'number' ? String(text) : text;
  const m = typeof s === 'string' ? RE.exec(s.trim()) : null;
  if (!m) throw new K8sInputError(`${where}: '${String(text)}' is not a Kubernetes quantity`, 'K8S_QUANTITY_INVALID');
  const [, sign, digits, suffix = ''] = m;
  const [intPart, frac = ''] = digits.split('.');
  let num = BigInt((intPart || '0') + frac);
  let den = 10n ** BigInt(frac.length);
  if (suffix in BIN) num *= 2n ** BigInt(BIN[suffix]);
  else {
    const exp = suffix in DEC ? DEC[suffix] : Number(suffix.slice(1));
    if (Math.abs(exp) > 64) throw new K8sInputError(`${where}: exponent of '${s}' is out of range`, 'K8S_QUANTITY_INVALID');
    if (exp >= 0) num *= 10n ** BigInt(exp);
    else den *= 10n ** BigInt(-exp);
  }
  if (sign === '-') num = -num;
  return { num, den };
}

function ceilDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b === 0n || a < 0n ? q : q + 1n;
}

/** Rounded up to whole multiples of 1/`per` of the unit: ceilTo(q, 1000n) = millicores. */
export function ceilUnits(q: Quantity, scale: bigint): bigint {
  return ceilDiv(q.num * scale, q.den);
}

export const MiB = 1n << 20n;

/** Memory in MiB, rounded up (a VM cannot get less than asked). */
export function ceilMiB(q: Quantity): bigint {
  return ceilDiv(q.num, q.den * MiB);
}

/** CPU in millicores, rounded up. */
export function ceilMilli(q: Quantity): bigint {
  return ceilUnits(q, 1000n);
}

/** Semantic equality: "1" == "1.0" == "1000m", "2Gi" == "2048Mi" (the API server stores canonical forms). */
export function quantitiesEqual(a: string | number, b: string | number): boolean {
  try {
    const x = parseQuantity(a);
    const y = parseQuantity(b);
    return x.num * y.den === y.num * x.den;
  } catch {
    return false;
  }
}

/** Same keys, semantically equal quantities. */
export function quantityMapsEqual(a: Record<string, string | number> | undefined, b: Record<string, string | number> | undefined): boolean {
  const ka = Object.keys(a ?? {});
  const kb = Object.keys(b ?? {});
  return ka.length === kb.length && ka.every((k) => b !== undefined && Object.hasOwn(b, k) && quantitiesEqual(a![k], b[k]));
}
