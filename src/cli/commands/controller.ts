import type { Command } from 'commander';
import { CliUsageError, type CommandContext } from '../context.js';
import { CONTROLLERS } from '../../k8s/controllers/index.js';
import type { RunningController } from '../../k8s/controllers/types.js';

interface ControllerFlags {
  kubeconfig?: string;
  controllers: string;
  autonomousNamespaces?: string;
}

export function registerController(program: Command, ctx: CommandContext): void {
  program
    .command('controller')
    .description(`Coffer's Kubernetes controllers (${CONTROLLERS.map((c) => c.name).join(', ')})`)
    .option('--kubeconfig <file>', 'kubeconfig (default: in-cluster service account, then ~/.kube/config)')
    .option('--controllers <list>', `comma-separated controllers to run: ${CONTROLLERS.map((c) => `${c.name} (${c.description})`).join('; ')}`, CONTROLLERS.map((c) => c.name).join(','))
    .option('--autonomous-namespaces <list>', 'autonomy: namespaces whose pods are autonomous on every node (IsolationPolicy autonomy: true)')
    .action(async (flags: ControllerFlags) => {
      const wanted = flags.controllers.split(',').map((s) => s.trim()).filter(Boolean);
      const unknown = wanted.filter((w) => !CONTROLLERS.some((c) => c.name === w));
      if (unknown.length) throw new CliUsageError(`--controllers: unknown controller(s) ${unknown.join(', ')}; known: ${CONTROLLERS.map((c) => c.name).join(', ')}`);
      if (wanted.length === 0) throw new CliUsageError('--controllers: name at least one controller');
      const { KubeConfig } = await import('@kubernetes/client-node');
      const kc = new KubeConfig();
      try {
        if (flags.kubeconfig) kc.loadFromFile(flags.kubeconfig);
        else kc.loadFromDefault();
      } catch (e) {
        throw new CliUsageError(`kubeconfig could not be loaded: ${(e as Error).message}`);
      }
      if (!kc.getCurrentCluster()) throw new CliUsageError('kubeconfig has no current cluster');
      const log = (event: string, detail: Record<string, unknown>) => ctx.io.err(JSON.stringify({ time: new Date().toISOString(), component: 'controller', event, ...detail }) + '\n');
      const options: Record<string, Record<string, unknown>> = {
        autonomy: { autonomousNamespaces: flags.autonomousNamespaces?.split(',').map((s) => s.trim()).filter(Boolean) ?? [] },
      };
      const running: RunningController[] = [];
      for (const entry of CONTROLLERS.filter((c) => wanted.includes(c.name))) {
        const factory = await entry.load();
        running.push(await factory.start({ kubeConfig: kc, log }, options[entry.name] ?? {}));
      }
      ctx.io.out(JSON.stringify({ event: 'running', controllers: running.map((r) => r.name) }) + '\n');
      const shutdown = () => void Promise.all(running.map((r) => r.stop())).then(() => process.exit(0));
      process.once('SIGTERM', shutdown);
      process.once('SIGINT', shutdown);
      ctx.keepRunning();
    });
}
