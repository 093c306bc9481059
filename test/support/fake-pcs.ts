/**
 * Loopback stand-ins for Intel PCS (API v4 paths and issuer-chain headers, URL-encoded PEM) and AMD KDS, serving
 * the project's test-PKI collateral. Only for peers that cannot run here; the wire format follows Intel's PCS API
 * and AMD's KDS spec.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CollateralTweaks, DcapWorld } from './dcap-world.js';
import { SGX_FMSPC, TDX_FMSPC } from './dcap-world.js';

const pem = (der: Uint8Array) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;

export interface FakeUpstream {
  base: string;
  hits: string[];
  stop(): Promise<void>;
}

async function serve(routes: () => Map<string, { body: Uint8Array | string; headers?: Record<string, string> }>): Promise<FakeUpstream> {
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? '');
    const r = routes().get(req.url ?? '');
    if (!r) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/octet-stream', ...r.headers }).end(typeof r.body === 'string' ? r.body : Buffer.from(r.body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    hits,
    stop: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** PCS routes for both TEEs of a DcapWorld; `tweaks` shape the collateral (e.g. a short nextUpdate). */
export async function pcsRoutes(w: DcapWorld, tweaks: CollateralTweaks = {}) {
  const routes = new Map<string, { body: Uint8Array | string; headers?: Record<string, string> }>();
  for (const tee of ['sgx', 'tdx'] as const) {
    const c = await w.collateral(tee, tweaks);
    const signingChain = encodeURIComponent(pem(w.pki.tcbSigner.der) + pem(w.pki.root.der));
    const fmspc = tee === 'sgx' ? SGX_FMSPC : TDX_FMSPC;
    const signed = (member: string, s: { body: Uint8Array; signature: Uint8Array }) =>
      `{"${member}":${Buffer.from(s.body).toString('utf8')},"signature":"${Buffer.from(s.signature).toString('hex')}"}`;
    routes.set(`/${tee}/certification/v4/tcb?fmspc=${fmspc}`, { body: signed('tcbInfo', c.tcbInfo), headers: { 'TCB-Info-Issuer-Chain': signingChain, 'content-type': 'application/json' } });
    routes.set(`/${tee}/certification/v4/qe/identity`, { body: signed('enclaveIdentity', c.qeIdentity), headers: { 'SGX-Enclave-Identity-Issuer-Chain': signingChain, 'content-type': 'application/json' } });
    const ca = tee === 'sgx' ? 'processor' : 'platform';
    const caParty = tee === 'sgx' ? w.pki.processorCa : w.pki.platformCa;
    routes.set(`/sgx/certification/v4/pckcrl?ca=${ca}&encoding=der`, {
      body: c.crls[1],
      headers: { 'SGX-PCK-CRL-Issuer-Chain': encodeURIComponent(pem(caParty.der) + pem(w.pki.root.der)), 'content-type': 'application/pkix-crl' },
    });
    // PCCS form of the Root CA CRL: hex of the DER.
    routes.set('/sgx/certification/v4/rootcacrl', { body: Buffer.from(c.crls[0]).toString('hex') });
  }
  return routes;
}

export async function fakePcs(w: DcapWorld, tweaks: CollateralTweaks = {}): Promise<FakeUpstream & { set(t: CollateralTweaks): Promise<void> }> {
  let routes = await pcsRoutes(w, tweaks);
  const s = await serve(() => routes);
  return { ...s, set: async (t) => void (routes = await pcsRoutes(w, t)) };
}

/** KDS: path (with query) → body. */
export async function fakeKds(routes: Map<string, Uint8Array>): Promise<FakeUpstream> {
  return serve(() => new Map([...routes].map(([k, v]) => [k, { body: v }])));
}
