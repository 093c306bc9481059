import { EvidenceFormatError } from './errors.js';

/**
 * Bounds-checked little-/big-endian reader over evidence bytes. Every read checks the remaining length first
 * and throws EvidenceFormatError(TRUNCATED) naming the field, so parsers never index past the end.
 */
export class ByteReader {
  private pos = 0;
  /** Created on the first 64-bit read: one native BigInt read instead of four BigInt operations. */
  private dv?: DataView;
  constructor(
    readonly buf: Uint8Array,
    private readonly what = 'evidence',
  ) {}

  get offset(): number {
    return this.pos;
  }
  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number, field: string): void {
    if (!Number.isInteger(n) || n < 0 || this.pos + n > this.buf.length) {
      throw new EvidenceFormatError(
        'TRUNCATED',
        `${this.what} is truncated: field ${field} needs ${n} bytes at offset ${this.pos}, ${this.remaining} left`,
      );
    }
  }

  bytes(n: number, field: string): Uint8Array {
    this.need(n, field);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  skip(n: number, field: string): void {
    this.need(n, field);
    this.pos += n;
  }
  u8(field: string): number {
    this.need(1, field);
    return this.buf[this.pos++];
  }
  u16le(field: string): number {
    this.need(2, field);
    const v = this.buf[this.pos] | (this.buf[this.pos + 1] << 8);
    this.pos += 2;
    return v;
  }
  u32le(field: string): number {
    this.need(4, field);
    const b = this.buf;
    const p = this.pos;
    this.pos += 4;
    return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16)) + b[p + 3] * 0x1000000;
  }
  u64le(field: string): bigint {
    this.need(8, field);
    const v = this.view().getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  u16be(field: string): number {
    this.need(2, field);
    const v = (this.buf[this.pos] << 8) | this.buf[this.pos + 1];
    this.pos += 2;
    return v;
  }
  u32be(field: string): number {
    this.need(4, field);
    const b = this.buf;
    const p = this.pos;
    this.pos += 4;
    return b[p] * 0x1000000 + ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]);
  }
  u64be(field: string): bigint {
    this.need(8, field);
    const v = this.view().getBigUint64(this.pos, false);
    this.pos += 8;
    return v;
  }
  private view(): DataView {
    return (this.dv ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength));
  }
  /** Asserts the whole buffer was consumed; trailing bytes are a format error, not silently ignored. */
  end(): void {
    if (this.remaining !== 0) {
      throw new EvidenceFormatError(
        'TRAILING_BYTES',
        `${this.what} has ${this.remaining} unexpected trailing bytes at offset ${this.pos}`,
      );
    }
  }
}
