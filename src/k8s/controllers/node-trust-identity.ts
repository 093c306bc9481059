/**
 * Which node a token's evidence really comes from. The node name in a token is the agent's runtime data: whoever
 * controls the attesting software chooses it. What the attestation service vouches for is the key that signed the
 * evidence, and for a TPM AK that was enrolled, the attester name the registry bound it to (the service puts it in
 * the verified claims: `platform.akTrust = enrolled`, `platform.akAttester`). Root on node A (its TPM, its enrolled
 * AK, good PCRs) can otherwise mint a token naming node B and have B trusted.
 *
 * Rules (pure; the token module turns a conflict into TOKEN_NODE_IDENTITY, the appraisal decides on "unbound"):
 *  - an enrolled attester name that differs from the node the token names is a conflict, always;
 *  - an AK trusted by enrolment whose token does not say as whom is a conflict (a foreign or damaged token);
 *  - a `tpm` submod that does not say how its AK was trusted is a conflict (a token from a service that does not
 *    close AK trust: nothing ties it to any node);
 *  - anything else without an enrolled name (a TEE report alone, an Azure vTPM AK bound by the HCL report, an
 *    operator pin) is *unbound*: no registry ties that TEE to a node name. NodeTrustPolicy.requireEnrolledIdentity
 *    (default true) refuses it; a policy may opt out, which is weaker (see README, "Node identity").
 */

/** What the token's verified claims say about the evidence's signing key (annotated evidence `platform`). */
export interface NodeIdentity {
  /** How the service trusted the AK (`platform.akTrust`: enrolled, pinned, tee-report, ...); absent without one. */
  akTrust?: string;
  /** The attester name the enrolment registry bound the AK to (`platform.akAttester`). */
  enrolledAs?: string;
  /** The registry's id of the AK (`platform.akId`), for the operator's messages. */
  akId?: string;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Reads the identity claims of one submod's annotated evidence (nothing is trusted here: the token's signature is). */
export function submodIdentity(annotatedEvidence: Obj): NodeIdentity {
  const p = isObj(annotatedEvidence.platform) ? annotatedEvidence.platform : {};
  const id: NodeIdentity = {};
  const akTrust = str(p.akTrust);
  const enrolledAs = str(p.akAttester);
  const akId = str(p.akId);
  if (akTrust !== undefined) id.akTrust = akTrust;
  if (enrolledAs !== undefined) id.enrolledAs = enrolledAs;
  if (akId !== undefined) id.akId = akId;
  return id;
}

/** Why a submod's identity contradicts the node its runtime data names; undefined when it does not. */
export function identityConflict(tee: string, id: NodeIdentity, node: string): string | undefined {
  const ak = id.akId ? ` (${id.akId})` : '';
  if (id.enrolledAs !== undefined && id.enrolledAs !== node) {
    return `${tee}: the AK that signed the evidence${ak} is enrolled as node ${JSON.stringify(id.enrolledAs)}, but the token names node ${JSON.stringify(node)}: another node's TPM is speaking for this one`;
  }
  if (id.akTrust === 'enrolled' && id.enrolledAs === undefined) return `${tee}: the AK${ak} is enrolled but the token does not name the attester it is enrolled as`;
  if (tee === 'tpm' && id.akTrust === undefined) return `${tee}: the token does not say how the AK was trusted (no platform.akTrust): a token from an older or foreign service binds no node`;
  return undefined;
}

/** True when the enrolment registry binds this submod's key to `node`. */
export function enrolledAs(id: NodeIdentity | undefined, node: string): boolean {
  return id?.akTrust === 'enrolled' && id.enrolledAs === node;
}
