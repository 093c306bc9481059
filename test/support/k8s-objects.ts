/** Realistic core/v1 objects for tests and benchmarks (shapes as a kubelet-managed cluster would hold them). */
import type { Obj } from './fake-apiserver-store.js';

export function makePod(namespace: string, name: string, nodeName: string, labels: Record<string, string> = {}): Obj {
  return {
    metadata: { name, namespace, labels: { app: name.replace(/-\d+$/, ''), ...labels }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${name}-rs`, uid: '3d6c1f6e-0000-4000-8000-000000000001', controller: true, blockOwnerDeletion: true }] },
    spec: {
      nodeName,
      restartPolicy: 'Always',
      schedulerName: 'default-scheduler',
      serviceAccountName: 'default',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      containers: [
        {
          name: 'app',
          image: 'registry.example/app:1.0',
          ports: [{ containerPort: 8080, protocol: 'TCP' }],
          resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '128Mi' } },
          env: [{ name: 'MODE', value: 'edge' }],
          volumeMounts: [{ name: 'kube-api-access', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }],
          terminationMessagePath: '/dev/termination-log',
          terminationMessagePolicy: 'File',
          imagePullPolicy: 'IfNotPresent',
        },
      ],
      volumes: [{ name: 'kube-api-access', projected: { sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }] } }],
      tolerations: [
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
        { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
      ],
    },
    status: {
      phase: 'Running',
      podIP: '10.244.1.7',
      hostIP: '192.168.0.10',
      qosClass: 'Burstable',
      startTime: '2026-11-01T00:00:00Z',
      conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: '2026-11-01T00:00:05Z' }],
      containerStatuses: [{ name: 'app', ready: true, restartCount: 0, image: 'registry.example/app:1.0', imageID: 'registry.example/app@sha256:00', started: true, state: { running: { startedAt: '2026-11-01T00:00:04Z' } } }],
    },
  };
}

export function makeNode(name: string, opts: { ready?: boolean; annotations?: Record<string, string>; labels?: Record<string, string> } = {}): Obj {
  return {
    metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', ...(opts.labels ?? {}) }, annotations: opts.annotations ?? {} },
    spec: { podCIDR: '10.244.1.0/24' },
    status: {
      conditions: [{ type: 'Ready', status: opts.ready === false ? 'Unknown' : 'True', reason: 'KubeletReady', lastHeartbeatTime: '2026-11-01T00:00:00Z', lastTransitionTime: '2026-11-01T00:00:00Z' }],
      addresses: [{ type: 'InternalIP', address: '192.168.0.10' }, { type: 'Hostname', address: name }],
      nodeInfo: { kubeletVersion: 'v1.32.0', osImage: 'Debian GNU/Linux 12 (bookworm)', kernelVersion: '6.1.0', containerRuntimeVersion: 'containerd://1.7.0', architecture: 'amd64', operatingSystem: 'linux' },
    },
  };
}
