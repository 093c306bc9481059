import { randomUUID } from 'node:crypto';
import { Option, type Command } from 'commander';
import { stringify } from 'yaml';
import { CliUsageError, EXIT, type CommandContext } from '../context.js';
import { readUserFile } from '../files.js';
import { decideAdmission } from '../../k8s/admission/engine.js';
import { applyPatch } from '../../k8s/admission/json-patch.js';
import { loadPolicies, loadProfiles, namespaceLabels, parseNamespaces, parsePod, type NamedText } from '../../k8s/admission/inputs.js';
import { responseFor, reviewOf } from '../../k8s/admission/review.js';
import { K8sInputError } from '../../k8s/errors.js';
import { verifyPodImages } from '../../k8s/admission/images.js';
import { addImageSourceOptions, type ImageSourceFlags } from '../image-flags.js';

interface AdmitFlags extends ImageSourceFlags {
  policy: string[];
  namespace?: string;
  profiles: string[];
  output: 'pod' | 'review';
}

async function readText(path: string, what: string): Promise<NamedText> {
  return { name: path, text: Buffer.from(await readUserFile(path, what)).toString('utf8') };
}

/** Input problems (bad YAML, invalid policy) are usage errors: exit 2, never a silent allow. */
function asUsage<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof K8sInputError) throw new CliUsageError(e.message);
    throw e;
  }
}

export function registerAdmit(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('admit')
    .description('run the isolation-policy admission offline on a Pod manifest (like kyverno apply / gator test)')
    .argument('<pod>', 'Pod manifest (YAML or JSON)')
    .requiredOption('--policy <file...>', 'IsolationPolicy manifests (several documents per file allowed)')
    .option('--namespace <file>', "Namespace manifest whose labels the policies' selectors see")
    .option('--profiles <file...>', 'RuntimeProfile manifests (override the built-in profiles by name)', [])
    .addOption(new Option('--output <format>', 'mutated pod YAML or the AdmissionReview response JSON').choices(['pod', 'review']).default('pod'));
  // Policies with spec.images: images are verified from local OCI layouts (--oci-layout, offline) or registries.
  addImageSourceOptions(cmd)
    .action(async (podFile: string, flags: AdmitFlags) => {
      const podText = await readText(podFile, 'pod');
      const policyTexts = await Promise.all(flags.policy.map((f) => readText(f, 'policy')));
      const profileTexts = await Promise.all(flags.profiles.map((f) => readText(f, 'profiles')));
      const nsText = flags.namespace ? await readText(flags.namespace, 'namespace') : undefined;

      const pod = asUsage(() => parsePod(podText.text, podText.name));
      const policies = asUsage(() => loadPolicies(policyTexts));
      const profiles = asUsage(() => loadProfiles(profileTexts));
      const nsList = nsText ? asUsage(() => parseNamespaces(nsText.text, nsText.name)) : [];
      if (nsList.length > 1) throw new CliUsageError(`${nsText!.name}: expected one Namespace, found ${nsList.length}`);
      const ns = nsList[0];
      const podNs = pod.metadata?.namespace;
      if (ns && podNs && podNs !== ns.metadata.name) {
        throw new CliUsageError(`pod is in namespace "${podNs}" but --namespace describes "${ns.metadata.name}"`);
      }
      const labels = namespaceLabels(ns, podNs ?? 'default');

      let images;
      if (policies.some((p) => p.spec.images !== undefined)) {
        // Loaded only when a policy asks for image signatures (keeps `coffer admit` light otherwise).
        const [{ buildImageSource }, { ImageVerifier }] = await Promise.all([import('../image-source.js'), import('../../images/verifier.js')]);
        const built = await buildImageSource(flags);
        try {
          images = await verifyPodImages(pod, labels, policies, new ImageVerifier({ source: built.source, trustRoot: built.trustRoot }));
        } finally {
          await built.close();
        }
      }
      const d = decideAdmission({ pod, namespaceLabels: labels, policies, profiles, images });
      for (const w of d.warnings) ctx.io.err(`warning: ${w}\n`);
      if (flags.output === 'review') {
        ctx.io.out(`${JSON.stringify(reviewOf(responseFor(randomUUID(), d, true)), null, 2)}\n`);
      } else if (d.allowed) {
        ctx.io.out(stringify(applyPatch(pod, d.patch)));
      }
      if (!d.allowed) {
        ctx.io.err(`denied: ${d.reason}\n`);
        ctx.setExit(EXIT.REJECTED);
      }
    });
}
