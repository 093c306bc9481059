import { VerificationError } from '../common/errors.js';
import { canonicalPem, pemBlocks } from './pki.js';

const fail = (code: string, msg: string) => new VerificationError(code, msg);

/**
 * The type-5 certification data: the chain in strict PEM (64-character lines, LF), optionally followed by one NUL,
 * which is what Intel's QE writes. Strict on purpose: this text is covered by no signature, so it must be exactly
 * the canonical encoding of the certificates it carries; any other byte is rejected rather than ignored.
 */
export function strictPemCertificates(data: Uint8Array): { der: Uint8Array }[] {
  const text = Buffer.from(data).toString('latin1');
  const blocks = pemBlocks(text).filter((b) => b.label === 'CERTIFICATE');
  if (blocks.length === 0) throw fail('PCK_CHAIN_INVALID', 'the quote certification data holds no PEM certificate');
  const canonical = blocks.map((b) => canonicalPem(b.der)).join('');
  if (text !== canonical && text !== `${canonical}\0`) {
    throw fail('PCK_CHAIN_INVALID', 'the quote certification data is not exactly a strict-PEM certificate chain');
  }
  return blocks;
}
