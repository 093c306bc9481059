import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseQuote, serializeQuote, sniffQuote } from '../../../src/tee/dcap/quote.js';
import { EvidenceFormatError } from '../../../src/tee/common/errors.js';
import { haveVectors, readVector } from '../../support/vectors.js';
import { world } from '../../support/dcap-helpers.js';

const REAL = [
  'sgx/dcap-qvl_sgx_quote.bin',
  'sgx/trustee_occlum_quote_debug.dat',
  'tdx/dcap-qvl_tdx_quote_v4.bin',
  'tdx/dcap-qvl_tdx_quote_outdated_v5.bin',
  'tdx/trustee_tdx_quote_4.dat',
  'tdx/trustee_tdx_quote_5.dat',
];

async function samples(): Promise<Uint8Array[]> {
  const w = await world();
  const out = [
    await w.quote({ tee: 'sgx', version: 3 }),
    await w.quote({ tee: 'sgx', version: 4 }),
    await w.quote({ tee: 'tdx', version: 4 }),
    await w.quote({ tee: 'tdx', version: 5 }),
    await w.quote({ tee: 'tdx', version: 5, td15: true }),
  ];
  if (haveVectors) out.push(...REAL.map(readVector));
  return out;
}

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof EvidenceFormatError, `not a typed format error: ${e}`);
    return (e as EvidenceFormatError).code;
  }
  return undefined;
}

test('round-trip: serialize(parse(q)) == q for generated and real quotes', async () => {
  for (const q of await samples()) {
    const p = parseQuote(q);
    assert.deepEqual(Buffer.from(serializeQuote(p)), Buffer.from(q));
    assert.deepEqual(parseQuote(serializeQuote(p)).body, p.body);
  }
});

test('body types and signed ranges follow the header version', async () => {
  const w = await world();
  const v3 = parseQuote(await w.quote({ tee: 'sgx', version: 3 }));
  assert.equal(v3.signedData.length, 48 + 384);
  const v4 = parseQuote(await w.quote({ tee: 'tdx', version: 4 }));
  assert.equal(v4.bodyType, 2);
  assert.equal(v4.signedData.length, 48 + 584);
  const v5 = parseQuote(await w.quote({ tee: 'tdx', version: 5, td15: true }));
  assert.equal(v5.bodyType, 3);
  assert.equal(v5.signedData.length, 48 + 6 + 648);
  assert.equal(sniffQuote(new Uint8Array(10)), undefined);
});

test('unknown version, attestation key type, TEE type, body type and cert data type are typed rejections', async () => {
  const w = await world();
  const q = Buffer.from(await w.quote({ tee: 'tdx', version: 5 }));
  const edit = (f: (b: Buffer) => void) => {
    const b = Buffer.from(q);
    f(b);
    return new Uint8Array(b);
  };
  assert.equal(codeOf(() => parseQuote(edit((b) => b.writeUInt16LE(6, 0)))), 'UNSUPPORTED_QUOTE_VERSION');
  assert.equal(codeOf(() => parseQuote(edit((b) => b.writeUInt16LE(3, 2)))), 'UNSUPPORTED_AK_TYPE');
  assert.equal(codeOf(() => parseQuote(edit((b) => b.writeUInt32LE(0x82, 4)))), 'UNSUPPORTED_TEE_TYPE');
  assert.equal(codeOf(() => parseQuote(edit((b) => b.writeUInt16LE(4, 48)))), 'UNSUPPORTED_BODY_TYPE');
  assert.equal(codeOf(() => parseQuote(edit((b) => b.writeUInt16LE(1, 48)))), 'BODY_TYPE_MISMATCH');
  assert.equal(codeOf(() => parseQuote(edit((b) => b.writeUInt32LE(585, 50)))), 'BAD_LENGTH');
  const p = parseQuote(q);
  const outer = 48 + 6 + 584 + 4 + 128;
  assert.equal(codeOf(() => parseQuote(edit((b) => b.writeUInt16LE(5, outer)))), 'UNSUPPORTED_CERT_DATA_TYPE');
  const inner = serializeQuote({ ...p, certType: 4 });
  assert.equal(codeOf(() => parseQuote(inner)), 'UNSUPPORTED_CERT_DATA_TYPE');
});

test('truncated at every length or length fields edited: typed format errors; trailing bytes are counted', async () => {
  for (const q of await samples()) {
    // Cutting into trailing zero padding (dcap-qvl's TDX v4 sample has 70 bytes) is not a truncation.
    const end = q.length - parseQuote(q).trailingBytes;
    for (let n = 0; n < end; n += 97) assert.ok(codeOf(() => parseQuote(q.subarray(0, n))), `truncated to ${n}`);
    assert.ok(codeOf(() => parseQuote(q.subarray(0, end - 1))));
    // Bytes after the signature data are ignored like Intel's QVL does; non-zero ones are flagged for a warning.
    const padded = parseQuote(new Uint8Array([...q, 0x01]));
    assert.equal(padded.trailingBytes, parseQuote(q).trailingBytes + 1);
    assert.equal(padded.trailingNonZero, true);
    const zeroPadded = parseQuote(new Uint8Array([...q, 0, 0, 0]));
    assert.equal(zeroPadded.trailingBytes, parseQuote(q).trailingBytes + 3);
    assert.equal(zeroPadded.trailingNonZero, false);
    const p = parseQuote(q);
    const sigLenOff = p.signedData.length;
    const b = Buffer.from(q);
    b.writeUInt32LE(b.readUInt32LE(sigLenOff) + 1, sigLenOff);
    assert.ok(codeOf(() => parseQuote(new Uint8Array(b))));
    b.writeUInt32LE(b.readUInt32LE(sigLenOff) - 2, sigLenOff);
    assert.ok(codeOf(() => parseQuote(new Uint8Array(b))));
  }
});
