import { COFFER_GROUP, COFFER_VERSION, EAR_STATUSES, ENFORCE_MODES, ISOLATION_LEVELS, NODE_TEES, SIZING_MODES, TAINT_EFFECTS } from './types.js';

/** OpenAPI v3 schema fragments (the structural-schema subset apiextensions.k8s.io/v1 accepts). */
type Schema = Record<string, unknown>;

// Label keys: optional DNS-subdomain prefix + '/' + name (63 chars, alphanumeric ends), as apimachinery validates.
const LABEL_KEY = '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$';
const LABEL_VALUE = '^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$';
const DNS_LABEL = '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$';
const DNS_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
// resource.Quantity's serialised form (k8s.io/apimachinery/pkg/api/resource/quantity.go grammar).
const QUANTITY = '^[+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|([eE][-+]?[0-9]+))?$';

const stringMap = (pattern?: string): Schema => ({
  type: 'object',
  additionalProperties: { type: 'string', ...(pattern ? { pattern } : {}), maxLength: 63 },
});

const labelSelector = (description: string): Schema => ({
  type: 'object',
  description,
  properties: {
    matchLabels: {
      ...stringMap(LABEL_VALUE),
      description: 'labels that must all be present with these values',
      // OpenAPI in CRDs has no propertyNames: check the keys with CEL instead.
      'x-kubernetes-validations': [{ rule: `self.all(k, k.matches('${LABEL_KEY.replace(/\\/g, '\\\\')}'))`, message: 'every key must be a valid label key' }],
    },
    matchExpressions: {
      type: 'array',
      maxItems: 32,
      items: {
        type: 'object',
        required: ['key', 'operator'],
        properties: {
          key: { type: 'string', pattern: LABEL_KEY, maxLength: 317 },
          operator: { type: 'string', enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] },
          values: { type: 'array', items: { type: 'string', pattern: LABEL_VALUE, maxLength: 63 }, maxItems: 64 },
        },
        'x-kubernetes-validations': [
          {
            rule: "(self.operator in ['In', 'NotIn']) ? (has(self.values) && size(self.values) > 0) : (!has(self.values) || size(self.values) == 0)",
            message: 'In and NotIn need a non-empty values list; Exists and DoesNotExist take no values',
          },
        ],
      },
    },
  },
  'x-kubernetes-map-type': 'atomic',
});

const quantityMap: Schema = {
  type: 'object',
  // The form controller-gen emits for resource.Quantity (structural: only the bare int-or-string anyOf).
  additionalProperties: { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }], pattern: QUANTITY },
};

// spec.images (src/images/policy.ts checks the same shape, and compiles keys, globs and patterns).
const imagesSchema: Schema = {
  type: 'object',
  description: 'image signature policy: pods run only images from these repositories whose signature verifies for a signer; images are pinned by digest',
  required: ['signers'],
  properties: {
    repositories: {
      type: 'array',
      minItems: 1,
      maxItems: 64,
      items: { type: 'string', minLength: 1, maxLength: 256 },
      description: "globs over registry/path ('*' within a path segment, '**' across segments); absent = any repository",
    },
    platform: { type: 'string', pattern: '^[a-z0-9_]{1,32}/[a-z0-9_]{1,32}(/[a-z0-9_]{1,32})?$', description: 'platform picked from image indexes (default linux/amd64)' },
    signers: {
      type: 'array',
      minItems: 1,
      maxItems: 16,
      description: 'a signature from any one signer admits the image',
      items: {
        type: 'object',
        required: ['name'],
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 63 },
          publicKey: { type: 'string', maxLength: 16384, description: 'cosign public key (PEM): ECDSA P-256, Ed25519 or RSA' },
          keyless: {
            type: 'object',
            description: 'Fulcio certificate identity, verified against the trusted root given to the webhook (--sigstore-trusted-root)',
            properties: {
              issuer: { type: 'string', maxLength: 1024 },
              issuerRegExp: { type: 'string', maxLength: 256 },
              subject: { type: 'string', maxLength: 1024 },
              subjectRegExp: { type: 'string', maxLength: 256 },
              ctlogThreshold: { type: 'integer', minimum: 0, maximum: 4, description: 'SCTs required on the certificate (default 1)' },
            },
            'x-kubernetes-validations': [
              { rule: 'has(self.issuer) != has(self.issuerRegExp)', message: 'exactly one of issuer or issuerRegExp' },
              { rule: 'has(self.subject) != has(self.subjectRegExp)', message: 'exactly one of subject or subjectRegExp' },
            ],
          },
        },
        'x-kubernetes-validations': [{ rule: 'has(self.publicKey) != has(self.keyless)', message: 'exactly one of publicKey or keyless' }],
      },
    },
  },
};

const isolationPolicySchema: Schema = {
  type: 'object',
  required: ['spec'],
  properties: {
    apiVersion: { type: 'string' },
    kind: { type: 'string' },
    metadata: { type: 'object' },
    spec: {
      type: 'object',
      required: ['namespaceSelector', 'isolation'],
      properties: {
        namespaceSelector: labelSelector('namespaces whose pods this policy governs (by namespace labels); {} = all'),
        podSelector: labelSelector('optional: only pods with these labels; absent = every pod of a selected namespace'),
        isolation: {
          type: 'string',
          enum: [...ISOLATION_LEVELS],
          description: 'required isolation; when several policies match a pod the strictest wins',
        },
        runtimeClassName: {
          type: 'string',
          pattern: DNS_SUBDOMAIN,
          maxLength: 253,
          description: 'RuntimeClass (and RuntimeProfile) to run matching pods with; defaulted for sandbox',
        },
        enforce: { type: 'string', enum: [...ENFORCE_MODES], default: 'mutate', description: 'mutate = fix pods; deny = reject pods that ask for weaker isolation or host access' },
        sizing: { type: 'string', enum: [...SIZING_MODES], default: 'none', description: 'aks = size the pod VM as AKS Pod Sandboxing does (1 + CPU limits vCPU, 2 GiB + memory limits)' },
        autonomy: { type: 'boolean', default: false, description: 'edge autonomy: tolerate unreachable/not-ready nodes without a time limit' },
        images: imagesSchema,
      },
      'x-kubernetes-validations': [
        {
          rule: "self.isolation != 'confidential-vm' || has(self.runtimeClassName)",
          message: 'confidential-vm needs an explicit runtimeClassName (the TEE kind, e.g. kata-qemu-tdx or kata-qemu-snp)',
          fieldPath: '.runtimeClassName',
        },
        {
          rule: "self.isolation != 'none' || !has(self.images)",
          message: 'image signature policy applies to sandbox, confidential-vm and enclave policies',
          fieldPath: '.images',
        },
        {
          rule: "self.isolation != 'none' || self.sizing == 'none'",
          message: 'sizing applies to sandboxed pods only; isolation none cannot use sizing aks',
          fieldPath: '.sizing',
        },
      ],
    },
    status: {
      type: 'object',
      properties: {
        observedGeneration: { type: 'integer', format: 'int64' },
        matchedPods: { type: 'integer', format: 'int32', minimum: 0, description: 'pods (not finished) the selectors match' },
        matchedPodNames: { type: 'array', maxItems: 20, items: { type: 'string' }, description: 'the first matched pods as namespace/name, sorted' },
        matchedNamespaces: { type: 'integer', format: 'int32', minimum: 0, description: 'namespaces the namespaceSelector matches' },
        matchedNamespaceNames: { type: 'array', maxItems: 50, items: { type: 'string' }, description: 'the first matched namespaces, sorted' },
        conditions: { type: 'array', items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
      },
    },
  },
};

const runtimeProfileSchema: Schema = {
  type: 'object',
  required: ['spec'],
  properties: {
    apiVersion: { type: 'string' },
    kind: { type: 'string' },
    metadata: { type: 'object' },
    spec: {
      type: 'object',
      required: ['handler', 'isolation'],
      properties: {
        handler: { type: 'string', pattern: DNS_LABEL, maxLength: 63, description: 'CRI handler (RuntimeClass.handler)' },
        isolation: { type: 'string', enum: [...ISOLATION_LEVELS] },
        overhead: {
          type: 'object',
          required: ['podFixed'],
          properties: { podFixed: quantityMap },
          description: 'RuntimeClass.overhead, added to the pod by the webhook so RuntimeClass admission accepts it',
        },
        scheduling: {
          type: 'object',
          properties: {
            nodeSelector: stringMap(LABEL_VALUE),
            tolerations: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  key: { type: 'string' },
                  operator: { type: 'string', enum: ['Exists', 'Equal'] },
                  value: { type: 'string' },
                  effect: { type: 'string', enum: ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] },
                  tolerationSeconds: { type: 'integer', format: 'int64' },
                },
              },
            },
          },
        },
        nodeLabel: {
          type: 'object',
          required: ['key', 'value'],
          properties: { key: { type: 'string', pattern: LABEL_KEY }, value: { type: 'string', pattern: LABEL_VALUE, maxLength: 63 } },
        },
        capacity: {
          type: 'object',
          description: 'largest pod one node of this pool can host; pods sized beyond every profile are denied',
          properties: {
            cpu: { type: 'string', pattern: QUANTITY },
            memory: { type: 'string', pattern: QUANTITY },
          },
        },
        source: { type: 'string', maxLength: 1024 },
      },
    },
  },
};

const HEX = '^([0-9a-fA-F]{2}){1,64}$';

const nodeTrustPolicySchema: Schema = {
  type: 'object',
  required: ['spec'],
  properties: {
    apiVersion: { type: 'string' },
    kind: { type: 'string' },
    metadata: { type: 'object' },
    spec: {
      type: 'object',
      required: ['allowedTees'],
      properties: {
        nodeSelector: labelSelector('nodes this policy governs; empty = every node'),
        allowedTees: { type: 'array', minItems: 1, maxItems: NODE_TEES.length, items: { type: 'string', enum: [...NODE_TEES] } },
        requiredTees: { type: 'array', maxItems: NODE_TEES.length, items: { type: 'string', enum: [...NODE_TEES] } },
        allowedStatuses: { type: 'array', minItems: 1, maxItems: 2, items: { type: 'string', enum: [...EAR_STATUSES] }, default: ['affirming'] },
        allowedTcbStatuses: { type: 'array', maxItems: 8, items: { type: 'string', maxLength: 64 }, default: ['UpToDate'] },
        forbiddenAdvisories: { type: 'array', maxItems: 1024, items: { type: 'string', maxLength: 64 } },
        referenceValues: {
          type: 'object',
          description: 'per TEE: measurement name (pcrsha256_7, measurement, mrtd, ...) -> accepted hex values',
          maxProperties: NODE_TEES.length,
          additionalProperties: {
            type: 'object',
            maxProperties: 128,
            additionalProperties: { type: 'array', minItems: 1, maxItems: 64, items: { type: 'string', pattern: HEX } },
          },
        },
        requireEnrolledIdentity: {
          type: 'boolean',
          default: true,
          description: 'every TEE in the token must be bound to the node name by TPM enrolment; false also trusts TEE-only and Azure vTPM nodes on their self-declared node name (weaker)',
        },
        eventLog: {
          type: 'object',
          required: ['pcrs', 'events'],
          properties: {
            pcrs: { type: 'array', minItems: 1, maxItems: 24, items: { type: 'integer', minimum: 0, maximum: 23 } },
            bank: { type: 'string', enum: ['sha1', 'sha256', 'sha384', 'sha512'], default: 'sha256' },
            events: {
              type: 'array',
              maxItems: 4096,
              items: {
                type: 'object',
                required: ['pcr', 'digest'],
                properties: {
                  pcr: { type: 'integer', minimum: 0, maximum: 23 },
                  type: { type: 'string', maxLength: 64 },
                  digest: { type: 'string', pattern: HEX },
                  description: { type: 'string', maxLength: 256 },
                },
              },
            },
          },
        },
        gracePeriodSeconds: { type: 'integer', minimum: 0, maximum: 86400, default: 0 },
        effect: { type: 'string', enum: [...TAINT_EFFECTS], default: 'NoSchedule' },
      },
    },
  },
};

interface CrdSpecInput {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  schema: Schema;
  columns: { name: string; type: string; jsonPath: string; description?: string; priority?: number }[];
  status: boolean;
}

function crd(c: CrdSpecInput): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${c.plural}.${COFFER_GROUP}`, labels: { 'app.kubernetes.io/part-of': 'coffer' } },
    spec: {
      group: COFFER_GROUP,
      scope: 'Cluster',
      names: { kind: c.kind, listKind: `${c.kind}List`, plural: c.plural, singular: c.singular, shortNames: c.shortNames, categories: ['coffer'] },
      versions: [
        {
          name: COFFER_VERSION,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: c.schema },
          ...(c.status ? { subresources: { status: {} } } : {}),
          additionalPrinterColumns: [...c.columns, { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }],
        },
      ],
    },
  };
}

export function isolationPolicyCrd(): Record<string, unknown> {
  return crd({
    kind: 'IsolationPolicy',
    plural: 'isolationpolicies',
    singular: 'isolationpolicy',
    shortNames: ['isopol', 'ipol'],
    schema: isolationPolicySchema,
    status: true,
    columns: [
      { name: 'Isolation', type: 'string', jsonPath: '.spec.isolation' },
      { name: 'Enforce', type: 'string', jsonPath: '.spec.enforce' },
      { name: 'RuntimeClass', type: 'string', jsonPath: '.spec.runtimeClassName' },
      { name: 'Sizing', type: 'string', jsonPath: '.spec.sizing', priority: 1 },
      { name: 'Autonomy', type: 'boolean', jsonPath: '.spec.autonomy', priority: 1 },
      { name: 'Namespaces', type: 'integer', jsonPath: '.status.matchedNamespaces', priority: 1 },
      { name: 'Pods', type: 'integer', jsonPath: '.status.matchedPods' },
    ],
  });
}

export function runtimeProfileCrd(): Record<string, unknown> {
  return crd({
    kind: 'RuntimeProfile',
    plural: 'runtimeprofiles',
    singular: 'runtimeprofile',
    shortNames: ['rtp'],
    schema: runtimeProfileSchema,
    status: false,
    columns: [
      { name: 'Handler', type: 'string', jsonPath: '.spec.handler' },
      { name: 'Isolation', type: 'string', jsonPath: '.spec.isolation' },
      { name: 'CPU-Overhead', type: 'string', jsonPath: '.spec.overhead.podFixed.cpu' },
      { name: 'Mem-Overhead', type: 'string', jsonPath: '.spec.overhead.podFixed.memory' },
      { name: 'Node-Label', type: 'string', jsonPath: '.spec.nodeLabel.key', priority: 1 },
    ],
  });
}

export function nodeTrustPolicyCrd(): Record<string, unknown> {
  return crd({
    kind: 'NodeTrustPolicy',
    plural: 'nodetrustpolicies',
    singular: 'nodetrustpolicy',
    shortNames: ['ntp', 'ntpol'],
    schema: nodeTrustPolicySchema,
    status: false,
    columns: [
      { name: 'TEEs', type: 'string', jsonPath: '.spec.allowedTees' },
      { name: 'Effect', type: 'string', jsonPath: '.spec.effect' },
      { name: 'Grace', type: 'integer', jsonPath: '.spec.gracePeriodSeconds' },
    ],
  });
}

export function cofferCrds(): Record<string, unknown>[] {
  return [isolationPolicyCrd(), runtimeProfileCrd(), nodeTrustPolicyCrd()];
}

export const SCHEMA_PATTERNS = { LABEL_KEY, LABEL_VALUE, DNS_LABEL, DNS_SUBDOMAIN, QUANTITY };
