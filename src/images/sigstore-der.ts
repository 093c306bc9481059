/**
 * @sigstore/core keeps a certificate as a parsed ASN.1 tree and re-encodes it (ASN1Obj.toDER, recursively) each
 * time it compares two certificates, reads a public key or checks a signature over the TBS part: chain building
 * for one Fulcio leaf re-encodes every CA certificate several times and re-verifies the self-signed root. The
 * trees are never mutated after parsing, so each node's encoding is computed once, on first use, and kept on that
 * node; and a CA certificate's signature check against a given issuer (both trusted-root material, fixed at load)
 * is made once. Only the instances passed here change; the library's classes are untouched.
 */

/** The structural part of @sigstore/core's ASN1Obj used here (not a direct dependency). */
interface Asn1Node {
  subs: Asn1Node[];
  toDER(): Buffer;
}

interface CoreCertificate {
  root: Asn1Node;
  verify(issuer?: CoreCertificate): boolean;
}

/** Each node of the certificate's tree encodes once. Call once per freshly parsed certificate. */
export function memoizeEncoding(cert: CoreCertificate): void {
  const stack: Asn1Node[] = [cert.root];
  while (stack.length > 0) {
    const n = stack.pop()!;
    const encode = n.toDER.bind(n);
    let der: Buffer | undefined;
    n.toDER = () => (der ??= encode());
    for (const s of n.subs) stack.push(s);
  }
}

/**
 * For trusted CA certificates only: encodings memoized and `verify(issuer)` answered once per issuer instance
 * (the outcome of a signature check over fixed bytes with a fixed key cannot change). Call once per loaded root.
 */
export function memoizeTrustedCertificate(cert: CoreCertificate): void {
  memoizeEncoding(cert);
  const verify = cert.verify.bind(cert);
  const outcomes = new WeakMap<object, boolean>();
  const self = {};
  cert.verify = (issuer?: CoreCertificate) => {
    const k = issuer ?? self;
    let ok = outcomes.get(k);
    if (ok === undefined) {
      ok = verify(issuer);
      outcomes.set(k, ok);
    }
    return ok;
  };
}
