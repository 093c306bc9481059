import type { KubeConfig } from '@kubernetes/client-node';

/** What every controller gets from `coffer controller`. */
export interface ControllerContext {
  kubeConfig: KubeConfig;
  log: (event: string, detail: Record<string, unknown>) => void;
}

export interface RunningController {
  name: string;
  stop(): Promise<void>;
  /** Resolves once the work queue is empty (tests). */
  settled?(): Promise<void>;
}

/** A controller `coffer controller` can run; options come from the command's flags. */
export interface ControllerFactory<O = Record<string, unknown>> {
  name: string;
  description: string;
  start(ctx: ControllerContext, options: O): Promise<RunningController>;
}
