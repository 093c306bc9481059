import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CliUsageError, EXIT, type CommandContext } from '../context.js';

interface LearnFlags {
  controllerUrl: string;
  name?: string;
  pcrs?: string;
  eventLog?: string;
  eventPcrs?: string;
  selector?: string;
}

const list = (flag: string, v: string | undefined): number[] | undefined => {
  if (v === undefined) return undefined;
  const out = v.split(',').map((x) => x.trim());
  if (out.some((p) => !/^\d{1,2}$/.test(p) || Number(p) > 23)) throw new CliUsageError(`${flag} must be PCR indexes 0..23, comma-separated`);
  return out.map(Number);
};

export function registerNodeTrust(program: Command, ctx: CommandContext): void {
  const nt = program.command('node-trust').description('Node trust tools (the controller is `coffer controller`)');
  nt.command('learn')
    .argument('<node>', 'the golden node')
    .description("Prints a NodeTrustPolicy (JSON, apply with kubectl) whose reference values are the golden node's, from the node-trust controller's newest verified report; with --event-log, event-level references checked by replay against the attested PCRs")
    .requiredOption('--controller-url <url>', "the node-trust controller's report endpoint base URL")
    .option('--name <name>', 'policy name (default: learned-<node>)')
    .option('--pcrs <list>', 'only these SHA-256 PCRs as reference values (default: all in the token)')
    .option('--event-log <file>', "the golden node's measured-boot event log (binary_bios_measurements)")
    .option('--event-pcrs <list>', 'PCRs whose events the policy names (default: the attested ones of 0-7)')
    .option('--selector <k=v,...>', 'nodeSelector matchLabels for the policy')
    .action(async (node: string, f: LearnFlags) => {
      const { learnPolicy } = await import('../../k8s/node-trust-learn.js');
      let sel: Record<string, string> | undefined;
      if (f.selector) {
        sel = {};
        for (const kv of f.selector.split(',')) {
          const i = kv.indexOf('=');
          if (i <= 0) throw new CliUsageError(`--selector '${kv}' must be key=value`);
          sel[kv.slice(0, i)] = kv.slice(i + 1);
        }
      }
      let log: Uint8Array | undefined;
      if (f.eventLog) {
        try {
          log = new Uint8Array(readFileSync(f.eventLog));
        } catch (e) {
          throw new CliUsageError(`cannot read --event-log ${f.eventLog}: ${(e as Error).message}`);
        }
      }
      const pcrs = list('--pcrs', f.pcrs);
      const eventPcrs = list('--event-pcrs', f.eventPcrs);
      if (!/^https?:\/\/\S+$/.test(f.controllerUrl)) throw new CliUsageError(`--controller-url '${f.controllerUrl}' is not an http(s) URL`);
      let res: Response;
      try {
        res = await fetch(`${f.controllerUrl.replace(/\/$/, '')}/v1/node-trust/nodes/${encodeURIComponent(node)}`, { signal: AbortSignal.timeout(15_000) });
      } catch (e) {
        ctx.io.err(`coffer: node-trust learn: ${(e as Error).message}\n`);
        return ctx.setExit(EXIT.REJECTED);
      }
      if (!res.ok) {
        ctx.io.err(`coffer: node-trust learn: HTTP ${res.status}: ${(await res.text()).slice(0, 300)}\n`);
        return ctx.setExit(EXIT.REJECTED);
      }
      try {
        const policy = learnPolicy(f.name ?? `learned-${node}`, (await res.json()) as never, { pcrs, eventLog: log, eventPcrs, nodeSelector: sel });
        ctx.io.out(JSON.stringify(policy, null, 2) + '\n');
        ctx.setExit(EXIT.OK);
      } catch (e) {
        ctx.io.err(`coffer: node-trust learn: ${(e as Error).message}\n`);
        ctx.setExit(EXIT.REJECTED);
      }
    });
  for (const c of nt.commands) c.exitOverride().configureOutput({ writeOut: (s) => ctx.io.out(s), writeErr: (s) => ctx.io.err(s) });
}
