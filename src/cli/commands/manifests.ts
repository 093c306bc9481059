import type { Command } from 'commander';
import { CliUsageError, type CommandContext } from '../context.js';
import { readUserFile } from '../files.js';
import { renderManifests } from '../../k8s/manifests/render.js';
import { DEFAULT_VALUES, mergeValues, parseValues, type Values } from '../../k8s/manifests/values.js';
import { K8sInputError } from '../../k8s/errors.js';

export function registerManifests(program: Command, ctx: CommandContext): void {
  program
    .command('manifests')
    .description('print every Kubernetes object Coffer needs (CRDs, RBAC, webhook, controller, attestation, agent), validated')
    .option('--values <file>', 'values YAML (same keys as the Helm chart values.yaml)')
    .option('--namespace <ns>', "Coffer's own namespace (overrides values.namespace)")
    .action(async (flags: { values?: string; namespace?: string }) => {
      try {
        let values: Values = DEFAULT_VALUES;
        if (flags.values) values = parseValues(Buffer.from(await readUserFile(flags.values, 'values')).toString('utf8'), flags.values);
        if (flags.namespace !== undefined) values = mergeValues({ namespace: flags.namespace }, values);
        ctx.io.out(renderManifests(values));
      } catch (e) {
        if (e instanceof K8sInputError) throw new CliUsageError(e.message);
        throw e;
      }
    });
}
