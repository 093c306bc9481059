import type { ControllerFactory } from './types.js';

/**
 * Every controller `coffer controller` can run; add new ones here. Loaded on demand so that other `coffer`
 * commands (the edge hub on a small node) never pay for the Kubernetes client library.
 */
export interface ControllerEntry {
  name: string;
  description: string;
  load(): Promise<ControllerFactory<any>>;
}

export const CONTROLLERS: ControllerEntry[] = [
  {
    name: 'autonomy',
    description: 'pods on nodes annotated coffer.dev/autonomy=true keep unreachable/not-ready tolerations without tolerationSeconds; outages reported on the Node',
    load: async () => (await import('./autonomy.js')).autonomyController,
  },
];
