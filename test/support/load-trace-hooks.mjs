// Loader hooks of test/support/load-trace.mjs: record each resolved ES module URL.
import { appendFileSync } from 'node:fs';

let out;
export function initialize(data) {
  out = data.out;
}
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(out, r.url + '\n');
  return r;
}
