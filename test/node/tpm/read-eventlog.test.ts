import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vectorsSkip, readVector, vectorsDir } from '../../support/vectors.js';
import { readEventLog } from '../../../src/node/tpm/client.js';

test('readEventLog: the securityfs file when present, undefined when absent', { skip: vectorsSkip }, async () => {
  assert.deepEqual(await readEventLog(join(vectorsDir, 'tpm', 'go-tpm-tools_debian-10.bin')), readVector('tpm/go-tpm-tools_debian-10.bin'));
  assert.equal(await readEventLog(join(tmpdir(), 'definitely-not-here', 'binary_bios_measurements')), undefined);
});
