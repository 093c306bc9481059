/**
 * Responses the hub builds from its cache: LIST/GET bodies with the kind, apiVersion and resourceVersion a server
 * would send, Tables for kubectl, and the Status objects for refused requests. Pure string/JSON builders.
 */
import { failureStatus, type K8sStatus } from '../k8s/status.js';
import { toTable, type IncludeObject } from '../k8s/table.js';
import type { FieldSelector, LabelSelector } from '../k8s/selectors.js';
import type { CacheEntry, Collection, PersistedItems } from './object-cache.js';

export interface ListRequest {
  namespace: string | undefined;
  labels: LabelSelector;
  fields: FieldSelector;
  limit: number;
  continueToken: string | undefined;
}

export function autonomousWriteRefused(verb: string, what: string): K8sStatus {
  return failureStatus(
    'ServiceUnavailable',
    `the node is autonomous: the cloud API server is unreachable, so the edge hub refuses ${verb} of ${what} until the link returns`,
    { retryAfterSeconds: 10 },
  );
}

export function notCachedStatus(component: string, what: string): K8sStatus {
  return failureStatus('ServiceUnavailable', `the node is autonomous: the cloud API server is unreachable and the edge hub holds no cached ${what} for component "${component}"`, { retryAfterSeconds: 10 });
}

/** The object as GET returns it: TypeMeta first, then the stored fields. */
export function objectJson(c: Collection, e: CacheEntry): string {
  const head = `{"kind":${JSON.stringify(c.meta.kind)},"apiVersion":${JSON.stringify(c.meta.apiVersion)}`;
  const json = c.bytesOf(e).toString('utf8');
  return json.length > 2 ? `${head},${json.slice(1)}` : `${head}}`;
}

interface Token {
  v: string;
  rv: string;
  start: string;
}

export function decodeHubContinue(s: string): Token | undefined {
  try {
    const t = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
    return typeof t.start === 'string' && typeof t.rv === 'string' ? t : undefined;
  } catch {
    return undefined;
  }
}

/** A byte range of a persisted cache file, streamed through a small reusable buffer instead of read whole. */
export interface FileRange {
  file: PersistedItems;
  off: number;
  len: number;
}
export type BodyPart = string | Buffer | FileRange;

export interface BuiltList {
  /**
   * The body in pieces (envelope, groups of items), produced lazily as the socket drains, so at most one group
   * (~256 items) is in flight and a 17 MiB LIST never exists as one buffer.
   */
  parts: Iterable<BodyPart>;
  contentType: string;
}

const GROUP = 256;
const COMMA = Buffer.from(',');

export function buildList(c: Collection, r: ListRequest, table: boolean, include: IncludeObject, now = Date.now()): BuiltList {
  let after = '';
  if (r.continueToken) {
    const t = decodeHubContinue(r.continueToken);
    if (t) after = t.start;
  }
  let sel = c.selectEntries(r.namespace, r.labels, r.fields, after);
  const meta: Record<string, unknown> = { resourceVersion: c.rv };
  if (r.limit > 0 && sel.length > r.limit) {
    const remaining = sel.length - r.limit;
    sel = sel.slice(0, r.limit);
    meta.continue = Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv: c.rv, start: c.keyOf(sel[sel.length - 1].namespace, sel[sel.length - 1].name) })).toString('base64url');
    if (r.labels.length === 0 && r.fields.length === 0) meta.remainingItemCount = remaining;
  }
  if (table) {
    const bytes = c.bytesReader();
    const objs = sel.map((s) => ({ kind: c.meta.kind, apiVersion: c.meta.apiVersion, ...JSON.parse(bytes(s).toString('utf8')) }));
    return { parts: [JSON.stringify(toTable(c.meta.kind, objs, meta as any, include, now))], contentType: 'application/json;as=Table;v=v1;g=meta.k8s.io' };
  }
  const head = `{"kind":${JSON.stringify(c.meta.kind + 'List')},"apiVersion":${JSON.stringify(c.meta.apiVersion)},"metadata":${JSON.stringify(meta)},"items":[`;
  function* parts(): Generator<BodyPart> {
    // The files the items live in stay open until the body is sent (or the client is gone: sendParts returns the
    // generator, which runs the finally).
    const files = new Set<PersistedItems>();
    for (const e of sel) if (!e.raw && e.loc) files.add(e.loc.file);
    const unpin = [...files].map((f) => f.pin());
    try {
      yield head;
      for (let i = 0; i < sel.length; i += GROUP) {
        const end = Math.min(sel.length, i + GROUP);
        if (i > 0) yield COMMA;
        // Cache files and spooled LIST bodies hold items in key order joined by commas: a run of adjacent entries
        // is one read.
        const first = sel[i].loc;
        const last = sel[end - 1].loc;
        let contiguous = first !== undefined && last !== undefined;
        for (let j = i; contiguous && j < end; j++) {
          const e = sel[j];
          if (e.raw || !e.loc || e.loc.file !== first!.file) contiguous = false;
          else if (j > i && e.loc.off !== sel[j - 1].loc!.off + sel[j - 1].loc!.len + 1) contiguous = false;
        }
        if (contiguous) {
          yield { file: first!.file, off: first!.off, len: last!.off + last!.len - first!.off };
          continue;
        }
        const group: Buffer[] = [];
        for (let j = i; j < end; j++) {
          if (j > i) group.push(COMMA);
          group.push(c.bytesOf(sel[j]));
        }
        yield Buffer.concat(group);
      }
      yield ']}';
    } finally {
      for (const u of unpin) u();
    }
  }
  return { parts: parts(), contentType: 'application/json' };
}
