/**
 * Aggregates a V8 sampling heap profile (.heapprofile, e.g. bench:attest with BENCH_PROF=DIR BENCH_HEAP_PROF=1) by
 * allocating function: bytes per `function (file:line)`, top N, divided by COUNT (e.g. the attestations of the
 * profiled phase, which bench:attest prints) to give bytes per operation.
 * Usage: node --import tsx bench/heapprofile-top.ts FILE.heapprofile [N] [COUNT]
 */
import { readFileSync } from 'node:fs';

interface Node { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: Node[] }
const [file, top = '30', count = '1'] = process.argv.slice(2);
if (!file) {
  console.error('usage: heapprofile-top FILE.heapprofile [N] [COUNT]');
  process.exit(2);
}
const { head } = JSON.parse(readFileSync(file, 'utf8')) as { head: Node };
const per = Number(count) || 1;
const self = new Map<string, number>();
let total = 0;
const stack: Node[] = [head];
while (stack.length) {
  const n = stack.pop()!;
  const f = n.callFrame;
  const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*node_modules\//, '~/').replace(/^file:\/\/.*?\/src\//, 'src/')}:${f.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + n.selfSize);
  total += n.selfSize;
  stack.push(...n.children);
}
console.log(`total ${(total / per / 1024).toFixed(1)} KB${per > 1 ? ` per operation (${per})` : ''}`);
for (const [k, v] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(top))) console.log(`${(v / per).toFixed(0).padStart(9)} B  ${k}`);
