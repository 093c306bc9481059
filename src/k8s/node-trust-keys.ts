/**
 * The Node keys that say whether a node is trusted. One source for the writer (the node-trust controller,
 * controllers/node-trust-reconcile.ts) and the guard that lets only it write them (admission/node-guard.ts and the
 * ValidatingAdmissionPolicy in manifests/node-guard.ts): a key added on one side cannot go unprotected on the other.
 */
export const ATTESTED_LABEL = 'coffer.dev/attested';
export const UNTRUSTED_TAINT = 'coffer.dev/untrusted';
/** Annotations under this prefix belong to the node-trust controller. */
export const TRUST_ANNOTATION_PREFIX = 'trust.coffer.dev/';
/**
 * Label and annotation key prefixes only the controller may set, change or remove: what the controller writes
 * (coffer.dev/attested, trust.coffer.dev/*) plus the older coffer.dev/attested* and coffer.dev/trust* spellings,
 * which schedulers and tools may still read.
 */
export const TRUST_KEY_PREFIXES = [ATTESTED_LABEL, 'coffer.dev/trust', TRUST_ANNOTATION_PREFIX] as const;
