import { CofferError } from '../../tee/common/errors.js';

/** TPM_RC names (TPM 2.0 Library Part 2 §6.6), for error messages that name what the TPM said. */
const VER1: Record<number, string> = {
  0x000: 'INITIALIZE', 0x001: 'FAILURE', 0x003: 'SEQUENCE', 0x00b: 'PRIVATE', 0x019: 'HMAC', 0x020: 'DISABLED',
  0x021: 'EXCLUSIVE', 0x024: 'AUTH_TYPE', 0x025: 'AUTH_MISSING', 0x026: 'POLICY', 0x027: 'PCR', 0x028: 'PCR_CHANGED',
  0x02d: 'UPGRADE', 0x02e: 'TOO_MANY_CONTEXTS', 0x02f: 'AUTH_UNAVAILABLE', 0x030: 'REBOOT', 0x031: 'UNBALANCED',
  0x042: 'COMMAND_SIZE', 0x043: 'COMMAND_CODE', 0x044: 'AUTHSIZE', 0x045: 'AUTH_CONTEXT', 0x046: 'NV_RANGE',
  0x047: 'NV_SIZE', 0x048: 'NV_LOCKED', 0x049: 'NV_AUTHORIZATION', 0x04a: 'NV_UNINITIALIZED', 0x04b: 'NV_SPACE',
  0x04c: 'NV_DEFINED', 0x050: 'BAD_CONTEXT', 0x051: 'CPHASH', 0x052: 'PARENT', 0x053: 'NEEDS_TEST', 0x054: 'NO_RESULT',
  0x055: 'SENSITIVE',
};
const FMT1: Record<number, string> = {
  0x01: 'ASYMMETRIC', 0x02: 'ATTRIBUTES', 0x03: 'HASH', 0x04: 'VALUE', 0x05: 'HIERARCHY', 0x07: 'KEY_SIZE', 0x08: 'MGF',
  0x09: 'MODE', 0x0a: 'TYPE', 0x0b: 'HANDLE', 0x0c: 'KDF', 0x0d: 'RANGE', 0x0e: 'AUTH_FAIL', 0x0f: 'NONCE', 0x10: 'PP',
  0x12: 'SCHEME', 0x15: 'SIZE', 0x16: 'SYMMETRIC', 0x17: 'TAG', 0x18: 'SELECTOR', 0x1a: 'INSUFFICIENT',
  0x1b: 'SIGNATURE', 0x1c: 'KEY', 0x1d: 'POLICY_FAIL', 0x1f: 'INTEGRITY', 0x20: 'TICKET', 0x21: 'RESERVED_BITS',
  0x22: 'BAD_AUTH', 0x23: 'EXPIRED', 0x24: 'POLICY_CC', 0x25: 'BINDING', 0x26: 'CURVE', 0x27: 'ECC_POINT',
};
const WARN: Record<number, string> = {
  0x001: 'CONTEXT_GAP', 0x002: 'OBJECT_MEMORY', 0x003: 'SESSION_MEMORY', 0x004: 'MEMORY', 0x005: 'SESSION_HANDLES',
  0x006: 'OBJECT_HANDLES', 0x007: 'LOCALITY', 0x008: 'YIELDED', 0x009: 'CANCELED', 0x00a: 'TESTING',
  0x020: 'NV_RATE', 0x021: 'LOCKOUT', 0x022: 'RETRY', 0x023: 'NV_UNAVAILABLE',
};

export interface DecodedRc {
  rc: number;
  /** e.g. TPM_RC_VALUE. */
  name: string;
  /** e.g. "parameter 1", "handle 2", "session 1". */
  where?: string;
}

export function decodeRc(rc: number): DecodedRc {
  if (rc & 0x80) {
    const n = rc & 0x3f;
    const num = (rc >> 8) & 0xf;
    const where = rc & 0x40 ? `parameter ${num}` : num & 0x8 ? `session ${num & 0x7}` : num ? `handle ${num & 0x7}` : undefined;
    return { rc, name: `TPM_RC_${FMT1[n] ?? `FMT1_0x${n.toString(16)}`}`, where };
  }
  if ((rc & 0x900) === 0x900) return { rc, name: `TPM_RC_${WARN[rc & 0x7f] ?? `WARN_0x${(rc & 0x7f).toString(16)}`}` };
  if (rc & 0x100) return { rc, name: `TPM_RC_${VER1[rc & 0x7f] ?? `VER1_0x${(rc & 0x7f).toString(16)}`}` };
  return { rc, name: `TPM_RC_0x${rc.toString(16)}` };
}

/** The TPM answered with a non-success response code. `code` is stable; `rcName` says which TPM_RC. */
export class TpmResponseError extends CofferError {
  readonly rc: number;
  readonly rcName: string;
  constructor(command: string, rc: number) {
    const d = decodeRc(rc);
    super('TPM_COMMAND_FAILED', `${command} failed: ${d.name} (0x${rc.toString(16).padStart(3, '0')})${d.where ? ` on ${d.where}` : ''}`);
    this.rc = rc;
    this.rcName = d.name;
  }
}

/** The conversation with the TPM broke: connection, short or inconsistent response. */
export class TpmTransportError extends CofferError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TPM_TRANSPORT', message, options);
  }
}
