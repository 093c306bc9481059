import type { Command } from 'commander';
import { CliUsageError, EXIT, type CommandContext } from '../context.js';
import { readUserFile } from '../files.js';
import { addImageSourceOptions, type ImageSourceFlags } from '../image-flags.js';

import { ImageError, type CandidateFailure } from '../../images/errors.js';
import { parseAllDocuments } from 'yaml';

interface ImageVerifyFlags extends ImageSourceFlags {
  policy: string;
  json?: boolean;
}

/**
 * `coffer image verify REF --policy FILE [--json]`: the webhook's image check from the shell. Exit 0 verified,
 * 1 rejected (unsigned, bad signature, identity, repository…), 2 usage or I/O (bad flags or policy, unreadable
 * files, registry unreachable: nothing was decided).
 */
export function registerImage(program: Command, ctx: CommandContext): void {
  const image = program.command('image').description('container image signatures (cosign / Sigstore) against an image policy');
  addImageSourceOptions(
    image
      .command('verify')
      .description('resolve REF to a digest, find its cosign/Sigstore signatures and verify them against the policy')
      .argument('<ref>', 'image reference (registry/repo:tag or @sha256:…)')
      .requiredOption('--policy <file>', 'image policy: an IsolationPolicy with spec.images, or a YAML/JSON {images: …} document')
      .option('--json', 'print the result as JSON'),
  ).action(async (ref: string, flags: ImageVerifyFlags) => {
    // Heavy modules (undici, Sigstore) load only when this command runs.
    const [{ buildImageSource }, { compileImagePolicy, imagePolicyFromDocument }, { verifyImage }] = await Promise.all([
      import('../image-source.js'),
      import('../../images/policy.js'),
      import('../../images/verify-image.js'),
    ]);
    const text = Buffer.from(await readUserFile(flags.policy, 'policy')).toString('utf8');
    const docs = parseAllDocuments(text);
    const values = docs.map((d) => d.toJSON()).filter((v) => v !== null && v !== undefined);
    if (docs.some((d) => d.errors.length > 0) || values.length !== 1) throw new CliUsageError(`${flags.policy}: expected one YAML/JSON document with an image policy`);
    let policy;
    try {
      policy = compileImagePolicy(imagePolicyFromDocument(values[0], flags.policy), flags.policy);
    } catch (e) {
      if (e instanceof ImageError) throw new CliUsageError(e.message);
      throw e;
    }
    if (policy.needsTrustRoot && !flags.trustedRoot && policy.signers.every((s) => s.kind === 'keyless')) throw new CliUsageError('the policy names keyless signers only: give --trusted-root FILE');
    const built = await buildImageSource(flags);
    try {
      const v = await verifyImage(ref, { source: built.source, policy, trustRoot: built.trustRoot });
      if (flags.json) {
        ctx.io.out(`${JSON.stringify({ image: ref, verified: true, digest: v.digest, pinned: v.pinned, signer: v.signature.signer, signature: v.signature.origin, ...(v.signature.identity ? { identity: v.signature.identity } : {}), ...(v.platform ? { platform: v.platform } : {}) }, null, 2)}\n`);
      } else {
        const who = v.signature.identity ? ` (${v.signature.identity.subject} via ${v.signature.identity.issuer})` : '';
        ctx.io.out(`verified: ${ref} → ${v.pinned}\n  signer ${v.signature.signer}${who}, ${v.signature.origin}\n`);
      }
      ctx.setExit(EXIT.OK);
    } catch (e) {
      if (!(e instanceof ImageError)) throw e;
      const unreachable = e.code === 'REGISTRY_UNREACHABLE';
      const failures = (e as ImageError & { failures?: CandidateFailure[] }).failures;
      if (flags.json) ctx.io.out(`${JSON.stringify({ image: ref, verified: false, code: e.code, message: e.message, ...(failures ? { failures } : {}) }, null, 2)}\n`);
      else ctx.io.err(`${unreachable ? 'error' : 'rejected'}: ${ref}: ${e.code}: ${e.message}\n`);
      ctx.setExit(unreachable ? EXIT.USAGE : EXIT.REJECTED);
    } finally {
      await built.close();
    }
  });
}
