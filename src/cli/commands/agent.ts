import type { Command } from 'commander';
import { CliUsageError, EXIT, type CommandContext } from '../context.js';
import { loadKubeConfig } from '../kubeconfig.js';
import { parseDuration } from '../duration.js';
import { describeFsError } from '../files.js';

interface AgentFlags {
  hostSys: string;
  hostDev: string;
  kubeconfig?: string;
  nodeName?: string;
  interval: string;
  containerdConfig?: string;
  criEndpoint?: string;
  print?: boolean;
}

interface PluginFlags {
  resource: string;
  kubeletDir: string;
  endpoint: string;
  epcMib?: string;
  unitMib: string;
  hostSys: string;
  hostDev: string;
  provision: string;
  healthInterval: string;
}

interface StatsFlags {
  criEndpoint: string;
  listen: string;
  cgroupRoot: string;
  procRoot: string;
  criTimeout: string;
}

interface QuoteFlags {
  socketDir: string;
  socketName: string;
  tsmDir: string;
  tpmDevice?: string;
  swtpm?: string;
  tpmPcrs: string;
  eventLog: string;
}

function parsePcrList(flag: string, v: string): number[] {
  const pcrs = v.split(',').map((x) => x.trim());
  if (pcrs.length === 0 || pcrs.some((p) => !/^\d{1,2}$/.test(p) || Number(p) > 23)) throw new CliUsageError(`${flag} must be a comma-separated list of PCR indexes 0..23`);
  return [...new Set(pcrs.map(Number))].sort((a, b) => a - b);
}

function parseSwtpm(v: string | undefined): { host: string; port: number } | undefined {
  if (v === undefined) return undefined;
  const m = /^(.+):(\d{1,5})$/.exec(v);
  if (!m) throw new CliUsageError('--swtpm must be host:port');
  return { host: m[1], port: Number(m[2]) };
}

/** Opens the TPM: a swtpm data socket (tests) or the character device. */
async function openTpm(swtpm: { host: string; port: number } | undefined, device: string) {
  const { TpmClient, SocketTransport, DeviceTransport } = await import('../../node/tpm/index.js');
  return new TpmClient(swtpm ? await SocketTransport.connect(swtpm.port, swtpm.host) : await DeviceTransport.open(device));
}

const NODE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function positiveInt(flag: string, v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new CliUsageError(`${flag} '${v}' must be a positive integer`);
  return Number(v);
}

function jsonLog(ctx: CommandContext, component: string) {
  return (event: string, detail: Record<string, unknown> = {}) => ctx.io.err(JSON.stringify({ time: new Date().toISOString(), component, event, ...detail }) + '\n');
}

/** Stops the long-running part on SIGTERM/SIGINT (the kubelet's and the DaemonSet's way of ending it). */
function onSignal(stop: () => Promise<void>): void {
  const shutdown = () => void stop().finally(() => process.exit(0));
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

/**
 * Registers a device plugin with the kubelet and serves it until a signal (the SGX EPC and TPM plugins alike): a
 * registration or serve failure is one line and EXIT.REJECTED, a fatal error later (the kubelet's socket gone for good)
 * stops the process so that the DaemonSet restarts it.
 */
async function serveDevicePlugin(
  ctx: CommandContext,
  flags: { kubeletDir: string; endpoint: string; resource: string },
  source: import('../../node/deviceplugin/server.js').DeviceSource,
  log: ReturnType<typeof jsonLog>,
  running: Record<string, unknown>,
): Promise<void> {
  const { DevicePluginServer } = await import('../../node/deviceplugin/server.js');
  const { DevicePluginError } = await import('../../node/deviceplugin/errors.js');
  const server = new DevicePluginServer({
    dir: flags.kubeletDir,
    endpoint: flags.endpoint,
    resourceName: flags.resource,
    source,
    log,
    onFatal: (err) => {
      ctx.io.err(`coffer: ${err.message}\n`);
      void server.stop().finally(() => process.exit(EXIT.REJECTED));
    },
  });
  try {
    await server.start();
  } catch (e) {
    await server.stop();
    ctx.io.err(`coffer: ${e instanceof DevicePluginError ? `${e.code}: ` : ''}${(e as Error).message}\n`);
    return ctx.setExit(EXIT.REJECTED);
  }
  log('running', { resource: flags.resource, ...running });
  onSignal(() => server.stop());
  ctx.keepRunning();
}

export function registerAgent(program: Command, ctx: CommandContext): void {
  const agent = program
    .command('agent')
    .description('Node agent: TEE discovery → node labels (subcommands: sgx-device-plugin, tpm-device-plugin, quote-helper, stats, attest)')
        .option('--host-sys <dir>', "where the host's /sys is mounted", '/sys')
    .option('--host-dev <dir>', "where the host's /dev is mounted", '/dev')
    .option('--kubeconfig <file>', 'kubeconfig (default: in-cluster service account, then ~/.kube/config)')
    .option('--node-name <name>', 'this node (default: $NODE_NAME, set from spec.nodeName by the DaemonSet)')
    .option('--interval <duration>', 'how often discovery runs and labels are reconciled', '60s')
    .option('--containerd-config <file>', "host containerd config (imports followed): each runtime handler becomes a coffer.dev/runtime.<handler> label")
    .option('--cri-endpoint <endpoint>', 'without --containerd-config: ask this CRI socket (Status) for the runtime handlers (omit both: runtime labels untouched)')
    .option('--print', 'discover once, print the facts and labels as JSON, and exit (no API access)')
    .action(async (flags: AgentFlags) => {
      const intervalMs = parseDuration('--interval', flags.interval);
      const host = { sys: flags.hostSys, dev: flags.hostDev };
      const { wantedLabels, reconcileNodeLabels } = await import('../../node/discovery/node-labeler.js');
      if (flags.print) {
        const r = await wantedLabels({ host, nodeName: '', containerdConfig: flags.containerdConfig, criEndpoint: flags.criEndpoint });
        ctx.io.out(JSON.stringify(r, null, 2) + '\n');
        if (r.runtimeError) {
          ctx.io.err(`coffer: RUNTIME_DISCOVERY: ${r.runtimeError}\n`);
          return ctx.setExit(EXIT.REJECTED);
        }
        return;
      }
      const nodeName = flags.nodeName ?? process.env.NODE_NAME;
      if (!nodeName) throw new CliUsageError('--node-name or $NODE_NAME is required');
      if (!NODE_NAME.test(nodeName) || nodeName.length > 253) throw new CliUsageError(`node name '${nodeName}' is not a valid Kubernetes name`);
      const { KubeRest } = await import('../../k8s/kube-rest.js');
      const kc = await loadKubeConfig(flags.kubeconfig);
      const rest = await KubeRest.fromKubeConfig(kc, 'coffer-agent/0.1');
      const log = jsonLog(ctx, 'agent');
      const opts = { host, nodeName, containerdConfig: flags.containerdConfig, criEndpoint: flags.criEndpoint };
      let timer: NodeJS.Timeout | undefined;
      let stopped = false;
      const tick = async () => {
        try {
          const r = await reconcileNodeLabels(rest, opts);
          if (r.runtimeError) log('runtime-discovery-failed', { node: nodeName, error: r.runtimeError });
          log(r.patch ? 'labels-updated' : 'labels-unchanged', { node: nodeName, labels: r.labels, ...(r.patch ? { patch: r.patch.metadata.labels } : {}) });
        } catch (e) {
          // Transient API or host read failures: report and retry next interval; stale labels stay until then.
          log('reconcile-failed', { node: nodeName, error: (e as Error).message });
        }
        if (!stopped) timer = setTimeout(() => void tick(), intervalMs);
      };
      await tick();
      onSignal(async () => {
        stopped = true;
        clearTimeout(timer);
        rest.close();
      });
      ctx.keepRunning();
    });

  agent
    .command('sgx-device-plugin')
    .description('Kubelet device plugin (v1beta1) advertising SGX EPC as N devices of --unit-mib MiB and handing out /dev/sgx_enclave, /dev/sgx_provision')
    .requiredOption('--resource <name>', 'extended resource name, e.g. kubernetes.azure.com/sgx_epc_mem_in_MiB')
    .option('--kubelet-dir <dir>', "the kubelet's device-plugin directory (kubelet.sock lives there)", '/var/lib/kubelet/device-plugins')
    .option('--endpoint <file>', 'socket file name of this plugin inside --kubelet-dir', 'coffer-sgx-epc.sock')
    .option('--epc-mib <n>', 'EPC size to advertise (default: sum of sgx_total_bytes over NUMA nodes in --host-sys)')
    .option('--unit-mib <n>', 'MiB per advertised device', '1')
    .option('--provision <bool>', 'also give containers /dev/sgx_provision (in-process DCAP quoting)', 'true')
    .option('--health-interval <duration>', 'how often device presence is re-checked', '5s')
    .configureHelp({ showGlobalOptions: true })
    // --host-sys/--host-dev are the agent's own options (EPC size from sysfs, device health from /dev); commander
    // parses them wherever they appear, so they are read from the merged options.
    .action(async (_flags: PluginFlags, cmd: Command) => {
      const flags = cmd.optsWithGlobals() as PluginFlags;
      const unitMiB = positiveInt('--unit-mib', flags.unitMib);
      if (flags.provision !== 'true' && flags.provision !== 'false') throw new CliUsageError(`--provision '${flags.provision}' must be true or false`);
      const healthIntervalMs = parseDuration('--health-interval', flags.healthInterval);
      const { readEpcByNode } = await import('../../node/discovery/discover.js');
      const { SgxEpcSource } = await import('../../node/deviceplugin/sgx-epc.js');
      const { checkResourceName } = await import('../../node/deviceplugin/server.js');
      const { DevicePluginError } = await import('../../node/deviceplugin/errors.js');
      try {
        checkResourceName(flags.resource);
      } catch (e) {
        throw new CliUsageError(`--resource: ${(e as Error).message}`);
      }
      let epcMiB: number;
      if (flags.epcMib !== undefined) epcMiB = positiveInt('--epc-mib', flags.epcMib);
      else {
        const byNode = await readEpcByNode(flags.hostSys);
        const bytes = Object.values(byNode).reduce((a, b) => a + b, 0);
        if (Object.keys(byNode).length === 0) {
          ctx.io.err(`coffer: NO_EPC: ${flags.hostSys}/devices/system/node/node*/x86/sgx_total_bytes not found (kernel before 6.2 or no SGX); pass --epc-mib\n`);
          return ctx.setExit(EXIT.REJECTED);
        }
        epcMiB = Math.floor(bytes / (1024 * 1024));
      }
      const log = jsonLog(ctx, 'sgx-device-plugin');
      let source: Awaited<ReturnType<typeof SgxEpcSource.create>>;
      try {
        source = await SgxEpcSource.create({ epcMiB, unitMiB, hostDev: flags.hostDev, provision: flags.provision === 'true', healthIntervalMs });
      } catch (e) {
        if (!(e instanceof DevicePluginError)) throw e;
        ctx.io.err(`coffer: ${e.code}: ${e.message}\n`);
        return ctx.setExit(EXIT.REJECTED);
      }
      await serveDevicePlugin(ctx, flags, source, log, { devices: source.devices().length, unitMiB, epcMiB });
    });

  agent
    .command('tpm-device-plugin')
    .description('Kubelet device plugin (v1beta1) sharing the node TPM as --shares units of coffer.dev/tpm: each allocation gets /dev/tpmrm0 (and the event log directory, read-only), so TPM users run unprivileged')
    .option('--resource <name>', 'extended resource name', 'coffer.dev/tpm')
    .option('--kubelet-dir <dir>', "the kubelet's device-plugin directory (kubelet.sock lives there)", '/var/lib/kubelet/device-plugins')
    .option('--endpoint <file>', 'socket file name of this plugin inside --kubelet-dir', 'coffer-tpm.sock')
    .option('--shares <n>', 'how many containers may hold the TPM at once', '4')
    .option('--health-interval <duration>', 'how often device presence is re-checked', '5s')
    .configureHelp({ showGlobalOptions: true })
    // --host-sys/--host-dev are the agent's own options: read from the merged options (as sgx-device-plugin does).
    .action(async (_flags: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals() as { resource: string; kubeletDir: string; endpoint: string; shares: string; healthInterval: string; hostSys: string; hostDev: string };
      const shares = positiveInt('--shares', flags.shares);
      const healthIntervalMs = parseDuration('--health-interval', flags.healthInterval);
      const { TpmDeviceSource } = await import('../../node/deviceplugin/tpm.js');
      const { checkResourceName } = await import('../../node/deviceplugin/server.js');
      const { DevicePluginError } = await import('../../node/deviceplugin/errors.js');
      try {
        checkResourceName(flags.resource);
      } catch (e) {
        throw new CliUsageError(`--resource: ${(e as Error).message}`);
      }
      let source: Awaited<ReturnType<typeof TpmDeviceSource.create>>;
      try {
        source = await TpmDeviceSource.create({ shares, hostDev: flags.hostDev, hostSys: flags.hostSys, healthIntervalMs });
      } catch (e) {
        if (!(e instanceof DevicePluginError)) throw e;
        throw new CliUsageError(`--shares: ${e.message}`);
      }
      const log = jsonLog(ctx, 'tpm-device-plugin');
      await serveDevicePlugin(ctx, flags, source, log, { shares, healthy: source.devices()[0]?.health });
    });

  agent
    .command('quote-helper')
    .description('Quote service for pods: report data → quote via configfs-tsm (TDX/SNP guests) and/or the node TPM (--tpm-device), over HTTP on a unix socket in --socket-dir')
    .requiredOption('--socket-dir <dir>', 'host directory pods mount to reach the socket')
    .option('--socket-name <file>', 'socket file name', 'coffer-quote.sock')
    .option('--tsm-dir <dir>', 'configfs-tsm report directory', '/sys/kernel/config/tsm/report')
    .option('--tpm-device <path>', 'also serve TPM quotes (POST /v1/tpm/quote) from this device, e.g. /dev/tpmrm0')
    .option('--swtpm <host:port>', 'serve TPM quotes from a swtpm data socket instead of a device (tests)')
    .option('--tpm-pcrs <list>', 'SHA-256 PCRs the TPM quotes cover', '0,1,2,3,4,5,6,7')
    .option('--event-log <file>', 'measured-boot event log returned with TPM quotes', '/sys/kernel/security/tpm0/binary_bios_measurements')
    .action(async (flags: QuoteFlags) => {
      if (flags.socketName.includes('/')) throw new CliUsageError('--socket-name must be a file name');
      const pcrs = parsePcrList('--tpm-pcrs', flags.tpmPcrs);
      const swtpm = parseSwtpm(flags.swtpm);
      const { TsmReportClient } = await import('../../node/quote/tsm-report.js');
      const { QuoteServer } = await import('../../node/quote/quote-server.js');
      const client = new TsmReportClient(flags.tsmDir);
      let tpm: import('../../node/quote/tpm-quote.js').TpmQuoter | undefined;
      if (swtpm || flags.tpmDevice) {
        const { TpmQuoter } = await import('../../node/quote/tpm-quote.js');
        const device = flags.tpmDevice ?? '/dev/tpmrm0';
        tpm = new TpmQuoter({ open: () => openTpm(swtpm, device), describe: swtpm ? `swtpm ${flags.swtpm}` : device, pcrs, eventLogPath: flags.eventLog, ak: 'ecc' });
      }
      const tsmOk = await client.available();
      const tpmOk = tpm ? await tpm.available() : false;
      if (!tsmOk && !tpmOk) {
        // Fail closed and say why: SGX quotes need Intel's quoting enclave (aesmd), which a Node program cannot run.
        await tpm?.close();
        ctx.io.err(
          `coffer: TSM_UNAVAILABLE: ${flags.tsmDir} not found: this node is not a TDX or SEV-SNP guest with configfs-tsm (Linux 6.7+, configfs mounted)` +
            (tpm ? ` and ${tpm.description} does not open (TPM_UNAVAILABLE)` : ' and no --tpm-device was given') + '. ' +
            'SGX nodes get quotes from Intel aesmd (on AKS: the confcom addon with the SGX quote helper enabled).\n',
        );
        return ctx.setExit(EXIT.REJECTED);
      }
      const log = jsonLog(ctx, 'quote-helper');
      const server = new QuoteServer({ socketDir: flags.socketDir, socketName: flags.socketName, client, tpm, log });
      try {
        await server.start();
      } catch (e) {
        await tpm?.close();
        // A socket directory that cannot be used is an expected start failure: one line, exit 2.
        throw new CliUsageError(`cannot listen on ${server.socketPath} (--socket-dir): ${describeFsError(e)}`);
      }
      log('providers', { tsm: tsmOk, tpm: tpmOk });
      onSignal(async () => {
        await server.stop();
        await tpm?.close();
      });
      ctx.keepRunning();
    });

  agent
    .command('stats')
    .description('Prometheus exporter of per-pod and per-container CPU, memory, network, block IO and process counts (CRI v1 + cgroups v1/v2)')
    // the agent itself has --cri-endpoint (discovery) and commander gives it the flag wherever it appears: no
    // default here, the value is read from the merged options below
    .option('--cri-endpoint <endpoint>', "the container runtime's CRI socket (default: unix:///run/containerd/containerd.sock)")
    .option('--listen <host:port>', 'where /metrics is served', '127.0.0.1:9464')
    .option('--cgroup-root <dir>', 'cgroup filesystem root (v1 hierarchies or the v2 unified tree)', '/sys/fs/cgroup')
    .option('--proc-root <dir>', "the host's /proc (pod network counters from each sandbox's net/dev)", '/proc')
    .option('--cri-timeout <duration>', 'deadline of each CRI call', '2s')
    .action(async (_flags: StatsFlags, cmd: Command) => {
      const merged = cmd.optsWithGlobals() as Partial<StatsFlags>;
      const flags = { ..._flags, criEndpoint: merged.criEndpoint ?? 'unix:///run/containerd/containerd.sock' };
      const { StatsError } = await import('../../node/stats/errors.js');
      const { CriClient, parseCriEndpoint } = await import('../../node/stats/cri-client.js');
      const { StatsExporter, parseListen } = await import('../../node/stats/exporter.js');
      const { detectCgroupVersion } = await import('../../node/stats/cgroup.js');
      let listen: { host: string; port: number };
      try {
        parseCriEndpoint(flags.criEndpoint);
        listen = parseListen(flags.listen);
      } catch (e) {
        if (e instanceof StatsError) throw new CliUsageError(e.message);
        throw e;
      }
      const timeoutMs = parseDuration('--cri-timeout', flags.criTimeout);
      const log = jsonLog(ctx, 'stats');
      // A scrape of many pods is a burst of short-lived objects (gRPC messages, strings) on a small steady heap:
      // keep V8's young generation at its initial size and collect once 1 s after each scrape, so the idle agent
      // gives the burst's memory back (bench/stats.ts measures the idle RSS). That full GC also compacts: without
      // it the old space kept the burst's half-empty pages (measured: 37 MB held for 18 MB live, ~19 MB of RSS);
      // full GCs are rare here (one per scrape, when idle), so compacting each costs little.
      const v8 = await import('node:v8');
      v8.setFlagsFromString('--semi-space-growth-factor=1');
      v8.setFlagsFromString('--compact-on-every-full-gc');
      const { QuietGc } = await import('../../node/stats/settle.js');
      const settler = new QuietGc();
      const cri = new CriClient(flags.criEndpoint, { timeoutMs });
      const cgroupVersion = detectCgroupVersion(flags.cgroupRoot);
      const exporter = new StatsExporter({ cri, cgroupRoot: flags.cgroupRoot, cgroupVersion, procRoot: flags.procRoot, listen, log, afterScrape: settler.soon });
      let addr;
      try {
        addr = await exporter.start();
      } catch (e) {
        await exporter.stop();
        ctx.io.err(`coffer: ${e instanceof StatsError ? `${e.code}: ` : ''}${(e as Error).message}\n`);
        return ctx.setExit(EXIT.REJECTED);
      }
      log('listening', { address: `${addr.address}:${addr.port}`, cri: flags.criEndpoint, cgroup_version: cgroupVersion, cgroup_root: flags.cgroupRoot });
      onSignal(async () => {
        settler.stop();
        await exporter.stop();
      });
      ctx.keepRunning();
    });

  agent
    .command('attest')
    .description("Node attestation: enrols this node's TPM AK (EK certificate → credential activation), then at start and every --attest-interval: challenge → TPM quote (+ event log), TEE report (configfs-tsm) or Azure-style vTPM-in-CVM evidence (HCL report + vTPM quote) bound to the node name → /v1/attest → EAR token → the node-trust controller")
    .requiredOption('--attestation-url <url>', 'attestation service base URL')
    .requiredOption('--controller-url <url>', "node-trust controller's report endpoint base URL")
    .option('--node-name <name>', 'this node (default: $NODE_NAME, set from spec.nodeName by the DaemonSet)')
    .option('--evidence <kind>', 'auto (az-vtpm when the TPM holds an HCL report, else tsm when configfs-tsm exists, else tpm), tpm (quote over --pcrs + event log), tsm (TDX/SNP report through configfs-tsm) or az-vtpm (HCL report + vTPM quote: az-snp-vtpm / az-tdx-vtpm)', 'auto')
    .option('--tpm-device <path>', 'TPM character device', '/dev/tpmrm0')
    .option('--swtpm <host:port>', 'use a swtpm data socket instead of the device (tests)')
    .option('--pcrs <list>', 'SHA-256 PCRs to quote (az-vtpm: PCRs 0..n-1; all 24 unless given)', '0,1,2,3,4,5,6,7')
    .option('--event-log <file>', 'measured-boot event log', '/sys/kernel/security/tpm0/binary_bios_measurements')
    .option('--ek <kind>', 'EK to enrol with: rsa or ecc', 'rsa')
    .option('--tsm-dir <dir>', 'configfs-tsm report directory', '/sys/kernel/config/tsm/report')
    .option('--vcek <file>', 'az-vtpm: the VCEK (PEM or DER) instead of asking IMDS')
    .option('--imds-url <url>', 'az-vtpm: Azure IMDS base URL (SNP: the VCEK from /metadata/THIM/amd/certification; TDX: the TD quote from /acc/tdquote)', 'http://169.254.169.254')
    .option('--attest-interval <duration>', 'how often the node attests', '60s')
    .action(async (f: { attestationUrl: string; controllerUrl: string; nodeName?: string; evidence: string; tpmDevice: string; swtpm?: string; pcrs: string; eventLog: string; ek: string; tsmDir: string; vcek?: string; imdsUrl: string; attestInterval: string }, cmd: Command) => {
      // `coffer agent` has --node-name too: commander hands the flag to the parent command.
      const nodeName = f.nodeName ?? (cmd.parent?.opts().nodeName as string | undefined) ?? process.env.NODE_NAME;
      if (!nodeName || !NODE_NAME.test(nodeName) || nodeName.length > 253) throw new CliUsageError('--node-name (or $NODE_NAME) must be a valid Node name');
      for (const [flag, u] of [['--attestation-url', f.attestationUrl], ['--controller-url', f.controllerUrl], ['--imds-url', f.imdsUrl]]) {
        let url: URL;
        try {
          url = new URL(u);
        } catch {
          throw new CliUsageError(`${flag} '${u}' is not a URL`);
        }
        if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new CliUsageError(`${flag} must be http(s)`);
      }
      if (!['auto', 'tpm', 'tsm', 'az-vtpm'].includes(f.evidence)) throw new CliUsageError("--evidence must be 'auto', 'tpm', 'tsm' or 'az-vtpm'");
      if (f.ek !== 'rsa' && f.ek !== 'ecc') throw new CliUsageError("--ek must be 'rsa' or 'ecc'");
      const pcrs = parsePcrList('--pcrs', f.pcrs);
      // az-vtpm quotes PCRs 0..n-1 (Trustee's evidence lists them without gaps); Azure's own quotes cover all 24.
      const azPcrs = cmd.getOptionValueSource('pcrs') === 'default' ? 24 : pcrs.length;
      if (f.evidence === 'az-vtpm' && pcrs.some((p, i) => p !== i)) throw new CliUsageError('--pcrs for az-vtpm must be 0..n-1 without gaps');
      const swtpm = parseSwtpm(f.swtpm);
      const intervalMs = parseDuration('--attest-interval', f.attestInterval);
      if (intervalMs < 1000) throw new CliUsageError('--attest-interval must be at least 1s');
      const log = jsonLog(ctx, 'agent-attest');
      const { NodeAttester, runAttestLoop, backoffDelay } = await import('../../node/attest/node-attester.js');
      const { TsmReportClient } = await import('../../node/quote/tsm-report.js');
      const tsm = new TsmReportClient(f.tsmDir);
      // Opening the TPM (and enrolling) is retried with backoff: a DaemonSet pod must never crash-loop.
      type Client = Awaited<ReturnType<typeof openTpm>>;
      const retry = async <T>(what: string, step: () => Promise<T>): Promise<T> => {
        for (let attempt = 0; ; attempt++) {
          try {
            return await step();
          } catch (e) {
            const wait = Math.max(100, backoffDelay(attempt, 1000, intervalMs));
            log(`${what}_failed`, { node: nodeName, error: String((e as Error).message), code: (e as { code?: string }).code, retryInMs: wait });
            await new Promise((r) => setTimeout(r, wait));
          }
        }
      };
      let kind = f.evidence;
      let client: Client | undefined;
      if (kind === 'auto') {
        // Safe autodetection: an HCL report in the TPM's NV is what an Azure-style CVM has (its SNP report is not
        // reachable through configfs-tsm), then configfs-tsm, then a plain TPM. Nothing is trusted by being found:
        // the service verifies whichever evidence arrives. A TPM that fails the probe is retried (it may be a
        // device plugin not ready yet), never silently taken for a plain TPM.
        const { hasHclReport } = await import('../../node/attest/az-vtpm.js');
        kind = await retry('detect', async () => {
          let c: Client;
          try {
            c = await openTpm(swtpm, f.tpmDevice);
          } catch (e) {
            if (await tsm.available()) return 'tsm';
            throw e;
          }
          try {
            if (await hasHclReport(c)) {
              client = c;
              return 'az-vtpm';
            }
            if (await tsm.available()) {
              await c.close();
              return 'tsm';
            }
            client = c;
            return 'tpm';
          } catch (e) {
            await c.close().catch(() => {});
            throw e;
          }
        });
      }
      log('evidence', { kind });
      let source;
      let close = async () => {};
      if (kind === 'tsm') {
        const { TsmEvidenceSource } = await import('../../node/attest/evidence.js');
        source = new TsmEvidenceSource(tsm);
      } else if (kind === 'az-vtpm') {
        const { AzVtpmEvidenceSource, vcekFromFile, vcekFromImds, tdQuoteFromImds } = await import('../../node/attest/az-vtpm.js');
        // The AK is trusted through the HCL report the SNP report binds: no enrolment.
        const c = client ?? (await retry('tpm_open', () => openTpm(swtpm, f.tpmDevice)));
        source = new AzVtpmEvidenceSource(c, { pcrs: azPcrs, vcek: f.vcek ? vcekFromFile(f.vcek) : vcekFromImds(f.imdsUrl), tdQuote: tdQuoteFromImds(f.imdsUrl), eventLogPath: f.eventLog });
        close = () => c.close();
      } else {
        const { enrolAk, httpEnrolPost } = await import('../../node/tpm/index.js');
        const { TpmEvidenceSource } = await import('../../node/attest/evidence.js');
        // Enrolment at start (Keylime's agents register on every start).
        const c = await retry('enrol', async () => {
          const c = client ?? (await openTpm(swtpm, f.tpmDevice));
          client = undefined;
          try {
            const r = await enrolAk(c, { attester: nodeName, ek: f.ek as 'rsa' | 'ecc', ak: 'ecc', post: httpEnrolPost(f.attestationUrl) });
            log('enrolled', { node: nodeName, akId: r.akId, fingerprint: r.fingerprint });
            return c;
          } catch (e) {
            await c.close().catch(() => {});
            throw e;
          }
        });
        source = new TpmEvidenceSource(c, { pcrs, eventLogPath: f.eventLog, ak: 'ecc' });
        close = () => c.close();
      }
      const attester = new NodeAttester({ nodeName, attestationUrl: f.attestationUrl, controllerUrl: f.controllerUrl, source });
      const loop = runAttestLoop(attester, {
        intervalMs,
        onResult: (r) => log('attested', { node: nodeName, status: r.status, tokenId: r.tokenId, expiresAt: r.expiresAt }),
        onError: (e, retryInMs, attempt) => log('attest_failed', { node: nodeName, code: (e as { code?: string }).code, error: e.message, retryInMs, attempt }),
      });
      onSignal(async () => {
        loop.stop();
        await loop.done;
        await close();
      });
      ctx.keepRunning();
    });

  for (const c of agent.commands) c.exitOverride().configureOutput({ writeOut: (s) => ctx.io.out(s), writeErr: (s) => ctx.io.err(s) });
}
