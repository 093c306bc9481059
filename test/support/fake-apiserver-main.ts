/**
 * Child-process entry of the fake kube-apiserver, so tests can SIGSTOP/SIGKILL a real peer process.
 * Flags: --port N --history N --bookmark-ms N --pods N --nodes N --namespaces N --tls-dir DIR (server.crt/key,
 * ca.crt for client auth). Prints one JSON line {"url":...,"pid":...} on stdout once listening.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startFakeApiServer } from './fake-apiserver.js';
import { makeNode, makePod } from './k8s-objects.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    history: { type: 'string', default: '1000' },
    'bookmark-ms': { type: 'string', default: '60000' },
    pods: { type: 'string', default: '0' },
    nodes: { type: 'string', default: '1' },
    namespaces: { type: 'string', default: '1' },
    'tls-dir': { type: 'string' },
  },
});
const nsCount = Number(values.namespaces);
const namespaces = Array.from({ length: nsCount }, (_, i) => `ns-${i}`);
const dir = values['tls-dir'];
const server = await startFakeApiServer({
  port: Number(values.port),
  historySize: Number(values.history),
  bookmarkIntervalMs: Number(values['bookmark-ms']),
  namespaces,
  ...(dir ? { tls: { cert: readFileSync(join(dir, 'server.crt'), 'utf8'), key: readFileSync(join(dir, 'server.key'), 'utf8'), clientCa: readFileSync(join(dir, 'ca.crt'), 'utf8') } } : {}),
});
const nodes = Number(values.nodes);
for (let i = 0; i < nodes; i++) server.put('nodes', makeNode(`node-${i}`));
const pods = Number(values.pods);
for (let i = 0; i < pods; i++) server.put('pods', makePod(namespaces[i % nsCount], `pod-${i}`, `node-${i % Math.max(nodes, 1)}`));
process.stdout.write(JSON.stringify({ url: server.url, pid: process.pid, rv: server.store.rv }) + '\n');
const stop = () => void server.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
