/** Child process of bench/stats.ts: a fake CRI server with N pods (so its CPU is not the agent's). argv: SOCK N */
import { startFakeCri, type FakePod } from '../test/support/fake-cri.js';

const [sock, n] = [process.argv[2]!, Number(process.argv[3])];
const pods: FakePod[] = Array.from({ length: n }, (_, i) => ({
  id: `p${String(i).padStart(60, '0')}`,
  name: `web-${i}`,
  namespace: `ns-${i % 20}`,
  uid: `uid-${i}`,
  handler: i % 3 === 0 ? 'kata-qemu' : 'runc',
  pid: Number(process.env.NET_PID ?? process.pid),
  labels: { app: 'web', 'io.kubernetes.pod.name': `web-${i}` },
  annotations: {},
  containers: [{ id: `c${String(i).padStart(63, '0')}`, name: 'app', cgroupsPath: `/kubepods/pod-${i}/c${i}`, cpuNs: i * 1e6, workingSet: i * 1e5 }],
}));
await startFakeCri(sock, pods);
process.stdout.write('ready\n');
process.on('SIGTERM', () => process.exit(0));
