// Child process for the crash test: writes resources as fast as it can and prints one line per COMMITTED write
// (after the store call resolved). The parent SIGKILLs it mid-stream.
import { createHash } from 'node:crypto';
import { Kek, SqliteStore } from '../../src/store/index.js';

const [path, kekHex] = process.argv.slice(2);
const s = SqliteStore.open({ path, kek: Kek.parse(kekHex) });
process.stdout.write('ready\n');
for (let i = 0; ; i++) {
  const p = `crash/key/k${i % 500}`;
  // Values are large and self-describing so a torn write is detectable: value = header + filler + digest.
  const header = Buffer.from(`${p}#${i}#`);
  const filler = Buffer.alloc(4096 + (i % 7) * 1000, i % 251);
  const body = Buffer.concat([header, filler]);
  const value = Buffer.concat([body, createHash('sha256').update(body).digest()]);
  await s.putResource(p, value, i);
  await s.appendAudit({ at: i, actor: 'writer', action: 'resource.put', target: p, result: String(i) });
  process.stdout.write(`${p} ${i}\n`);
}
