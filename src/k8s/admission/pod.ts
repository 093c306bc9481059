/** The parts of core/v1 Pod the webhook reads or writes (everything else passes through untouched). */
export interface ResourceRequirements {
  limits?: Record<string, string | number>;
  requests?: Record<string, string | number>;
}

export interface Container {
  name: string;
  image?: string;
  resources?: ResourceRequirements;
  securityContext?: { privileged?: boolean; [k: string]: unknown };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; [k: string]: unknown }[];
  env?: { name: string; value?: string; [k: string]: unknown }[];
  restartPolicy?: string;
  [k: string]: unknown;
}

export interface Pod {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; generateName?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; [k: string]: unknown };
  spec?: {
    containers?: Container[];
    initContainers?: Container[];
    ephemeralContainers?: Container[];
    runtimeClassName?: string;
    overhead?: Record<string, string>;
    nodeSelector?: Record<string, string>;
    hostNetwork?: boolean;
    hostPID?: boolean;
    hostIPC?: boolean;
    volumes?: { name: string; hostPath?: { path: string; type?: string }; [k: string]: unknown }[];
    tolerations?: { key?: string; operator?: string; value?: string; effect?: string; tolerationSeconds?: number }[];
    affinity?: Record<string, unknown>;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}
