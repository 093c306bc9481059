// Usage errors of the node-trust commands are one line and exit 2, before any network or TPM access.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cli } from '../support/cli.js';

test('agent attest, controller node-trust and node-trust learn refuse bad flags with exit 2', async () => {
  const cases: [string[], RegExp][] = [
    [['agent', 'attest', '--attestation-url', 'http://127.0.0.1:1', '--controller-url', 'http://127.0.0.1:2'], /--node-name \(or \$NODE_NAME\) must be a valid Node name/],
    [['agent', 'attest', '--attestation-url', 'ftp://x', '--controller-url', 'http://127.0.0.1:2', '--node-name', 'n1'], /--attestation-url must be http\(s\)/],
    [['agent', 'attest', '--attestation-url', 'http://127.0.0.1:1', '--controller-url', 'http://127.0.0.1:2', '--node-name', 'n1', '--pcrs', '0,24'], /--pcrs must be/],
    [['agent', 'attest', '--attestation-url', 'http://127.0.0.1:1', '--controller-url', 'http://127.0.0.1:2', '--node-name', 'n1', '--attest-interval', '10ms'], /at least 1s/],
    [['agent', 'attest', '--attestation-url', 'http://127.0.0.1:1', '--controller-url', 'http://127.0.0.1:2', '--node-name', 'n1', '--evidence', 'sgx'], /--evidence must be 'auto', 'tpm', 'tsm' or 'az-vtpm'/],
    [['controller', '--controllers', 'node-trust', '--kubeconfig', '/dev/null'], /node-trust needs --attestation-url/],
    [['controller', '--controllers', 'node-trust', '--attestation-url', 'http://127.0.0.1:1', '--node-trust-listen', 'nope', '--kubeconfig', '/dev/null'], /--node-trust-listen 'nope' must be host:port/],
    [['controller', '--leader-elect=true', '--lease-duration', '5s', '--renew-deadline', '10s', '--kubeconfig', '/dev/null'], /--lease-duration > --renew-deadline > --retry-period/],
    [['node-trust', 'learn', 'n1', '--controller-url', 'http://127.0.0.1:1', '--pcrs', 'x'], /--pcrs must be PCR indexes/],
    [['node-trust', 'learn', 'n1', '--controller-url', 'http://127.0.0.1:1', '--event-log', '/nonexistent/log'], /cannot read --event-log/],
    [['status', '--kubeconfig', '/nonexistent/kubeconfig'], /cannot read --kubeconfig '\/nonexistent\/kubeconfig': no such file/],
  ];
  for (const [args, re] of cases) {
    const r = await cli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, re, args.join(' '));
  }
  // Nothing listening at the controller: learn reports it and exits 1.
  const down = await cli(['node-trust', 'learn', 'n1', '--controller-url', 'http://127.0.0.1:1']);
  assert.equal(down.code, 1);
  assert.match(down.err, /node-trust learn/);
});
