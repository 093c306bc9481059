/**
 * Parses a Kubernetes API path into its parts, the way the apiserver's RequestInfoFactory does:
 * /api/v1[/namespaces/NS]/RESOURCE[/NAME[/SUBRESOURCE]] and /apis/GROUP/VERSION/... .
 * A path like /api/v1/namespaces/NAME is the namespace object itself.
 */
export interface ApiPath {
  group: string;
  version: string;
  resource: string;
  namespace?: string;
  name?: string;
  subresource?: string;
}

export function parseApiPath(pathname: string): ApiPath | undefined {
  const segs = pathname.split('/').filter((s) => s.length > 0).map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (segs[0] === 'api' && segs.length >= 3) {
    group = '';
    version = segs[1];
    rest = segs.slice(2);
  } else if (segs[0] === 'apis' && segs.length >= 4) {
    group = segs[1];
    version = segs[2];
    rest = segs.slice(3);
  } else {
    return undefined;
  }
  const out: ApiPath = { group, version, resource: rest[0] };
  // namespaces/NS/RESOURCE... is a namespaced request; namespaces[/NAME[/SUB]] addresses Namespace objects.
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    out.namespace = rest[1];
    out.resource = rest[2];
    if (rest[3] !== undefined) out.name = rest[3];
    if (rest[4] !== undefined) out.subresource = rest[4];
    if (rest.length > 5) return undefined;
    if (group === '' && (rest[2] === 'status' || rest[2] === 'finalize') && rest.length === 3) {
      return { group, version, resource: 'namespaces', name: rest[1], subresource: rest[2] };
    }
    return out;
  }
  if (rest[1] !== undefined) out.name = rest[1];
  if (rest[2] !== undefined) out.subresource = rest[2];
  if (rest.length > 3) return undefined;
  return out;
}
