import type { RegisterCommand } from '../context.js';

/**
 * Long-running node agents that, when started by name, load only their own command module instead of every
 * command's dependencies (the Kubernetes client, kubernetes-models, the TEE verifiers...): loading those made an
 * idle `coffer edgehub` take ~230 MB of RSS under tsx, on a node where it should stay small.
 */
export const standaloneCommands: Record<string, () => Promise<RegisterCommand>> = {
  edgehub: async () => (await import('./edgehub.js')).registerEdgeHub,
};
