/**
 * Writes the hub answers itself while the node is autonomous: the kubelet's node-status and kube-node-lease Lease
 * updates, so the kubelet keeps running instead of giving up. Answers are computed from the cache and the request,
 * never stored and never replayed to the server later (the kubelet re-sends real status once the link is back).
 */
import type http from 'node:http';
import { failureStatus } from '../k8s/status.js';
import { applyPatch, patchTypeOf } from '../k8s/patch.js';
import type { Collection } from './object-cache.js';
import type { RequestClass } from './request-class.js';
import { autonomousWriteRefused, objectJson } from './offline-responses.js';
import { jsonDepth, MAX_NESTING_DEPTH } from '../tee/common/nesting.js';

const LOCAL_WRITE_MAX_BYTES = 3 * 1024 * 1024;
import { sendBody, sendStatus } from './http-util.js';

type Obj = Record<string, any>;

/**
 * The kubelet's own heartbeats while autonomous: node status updates and node Lease writes are answered
 * locally (200/201 with the resulting object) so the kubelet keeps running; they are not stored or replayed.
 */
export function acceptLocalWrite(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  rc: RequestClass,
  c: Collection | undefined,
  log: (event: string, detail: Record<string, unknown>) => void,
  nodeName?: string,
): boolean {
  const api = rc.api;
  if (rc.component !== 'kubelet' || !api) return false;
  // With --node-name the hub answers only for its own node's status and Lease (named after the node).
  if (nodeName !== undefined && api.name !== undefined && api.name !== nodeName) return false;
  const nodeStatus = api.group === '' && api.resource === 'nodes' && api.subresource === 'status' && (rc.verb === 'update' || rc.verb === 'patch');
  const lease = api.group === 'coordination.k8s.io' && api.resource === 'leases' && api.namespace === 'kube-node-lease' && (rc.verb === 'create' || rc.verb === 'update' || rc.verb === 'patch');
  if (!nodeStatus && !lease) return false;
  const chunks: Buffer[] = [];
  let size = 0;
  // Bounded like the API server's own limit (3 MiB) and nested at most MAX_NESTING_DEPTH before JSON.parse.
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= LOCAL_WRITE_MAX_BYTES) chunks.push(chunk);
  });
  req.on('end', () => {
    let body: unknown;
    if (size > LOCAL_WRITE_MAX_BYTES) return sendStatus(res, failureStatus('RequestEntityTooLarge', `the request body exceeds ${LOCAL_WRITE_MAX_BYTES} bytes`));
    const text = Buffer.concat(chunks).toString('utf8');
    if (jsonDepth(text, MAX_NESTING_DEPTH) > MAX_NESTING_DEPTH) return sendStatus(res, failureStatus('BadRequest', `the body of the request is nested more than ${MAX_NESTING_DEPTH} levels deep`));
    try {
      body = JSON.parse(text);
    } catch {
      return sendStatus(res, failureStatus('BadRequest', 'the body of the request could not be decoded'));
    }
    if (nodeName !== undefined && api.name === undefined && (body as Obj)?.metadata?.name !== nodeName) {
      return sendStatus(res, autonomousWriteRefused(rc.verb, `${api.resource} "${(body as Obj)?.metadata?.name ?? ''}" (not this node's)`));
    }
    if (rc.verb === 'patch') {
      const type = patchTypeOf(req.headers['content-type']);
      const e = c?.get(api.namespace, api.name!);
      if (!type || !c || !e) return sendStatus(res, autonomousWriteRefused('patch', `${api.resource} "${api.name}" (no cached copy to patch)`));
      try {
        const patched = applyPatch(type, JSON.parse(objectJson(c, e)), body);
        log('local_write_accepted', { verb: 'patch', resource: api.resource, name: api.name });
        return sendBody(res, 200, JSON.stringify(patched), 'application/json');
      } catch (err) {
        return sendStatus(res, failureStatus('BadRequest', (err as Error).message));
      }
    }
    log('local_write_accepted', { verb: rc.verb, resource: api.resource, name: api.name ?? (body as Obj)?.metadata?.name });
    sendBody(res, rc.verb === 'create' ? 201 : 200, JSON.stringify(body), 'application/json');
  });
  return true;
}
