import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CofferError } from '../tee/common/errors.js';

export class StoreError extends CofferError {}

/**
 * The key-encryption key. It comes from a file or an environment variable and is never written to the store:
 * the store only keeps a key-check value so a wrong KEK is refused at open instead of failing record by record.
 */
export class Kek {
  private constructor(private readonly key: Buffer) {}

  static fromBytes(b: Uint8Array): Kek {
    if (b.length !== 32) throw new StoreError('KEK_INVALID', `the key-encryption key must be 32 bytes, got ${b.length}`);
    return new Kek(Buffer.from(b));
  }

  /** Accepts raw 32 bytes, or 64 hex characters, or base64 of 32 bytes (surrounding whitespace ignored). */
  static parse(data: Uint8Array | string): Kek {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
    if (buf.length === 32 && typeof data !== 'string') return Kek.fromBytes(buf);
    const t = buf.toString('utf8').trim();
    if (/^[0-9a-fA-F]{64}$/.test(t)) return Kek.fromBytes(Buffer.from(t, 'hex'));
    if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) return Kek.fromBytes(Buffer.from(t, t.includes('-') || t.includes('_') ? 'base64url' : 'base64'));
    if (buf.length === 32) return Kek.fromBytes(buf);
    throw new StoreError('KEK_INVALID', 'the key-encryption key must be 32 raw bytes, 64 hex characters or base64 of 32 bytes');
  }

  static fromFile(path: string): Kek {
    let b: Buffer;
    try {
      b = readFileSync(path);
    } catch (e) {
      throw new StoreError('KEK_UNREADABLE', `cannot read the key-encryption key file ${path}: ${(e as Error).message}`);
    }
    return Kek.parse(new Uint8Array(b));
  }

  /** `COFFER_KEK` (hex/base64) wins over a file, so containers can inject it from a Secret. */
  static fromEnvOrFile(env: Record<string, string | undefined>, file?: string): Kek {
    const v = env.COFFER_KEK;
    if (v) return Kek.parse(v);
    if (file) return Kek.fromFile(file);
    throw new StoreError('KEK_MISSING', 'no key-encryption key: set COFFER_KEK or pass a KEK file');
  }

  static generate(): Uint8Array {
    return new Uint8Array(randomBytes(32));
  }

  /** Key-check value: identifies the KEK without revealing it. */
  checkValue(): string {
    return createHmac('sha256', this.key).update('coffer-kek-check-v1').digest('hex').slice(0, 32);
  }

  /** AES-256-GCM, fresh 96-bit nonce per record, AAD binds the ciphertext to its record (no swapping rows). */
  seal(plaintext: Uint8Array, aad: string): { nonce: Buffer; ciphertext: Buffer } {
    const nonce = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, nonce);
    c.setAAD(Buffer.from(aad, 'utf8'));
    const ct = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
    return { nonce, ciphertext: ct };
  }

  open(nonce: Uint8Array, ciphertext: Uint8Array, aad: string): Uint8Array {
    if (nonce.length !== 12 || ciphertext.length < 16) throw new StoreError('RECORD_CORRUPT', `sealed record ${aad} is malformed`);
    try {
      const d = createDecipheriv('aes-256-gcm', this.key, nonce);
      d.setAAD(Buffer.from(aad, 'utf8'));
      d.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
      const out = Buffer.concat([d.update(ciphertext.subarray(0, ciphertext.length - 16)), d.final()]);
      return new Uint8Array(out);
    } catch {
      throw new StoreError('RECORD_CORRUPT', `sealed record ${aad} failed authentication (wrong KEK or tampered data)`);
    }
  }
}
