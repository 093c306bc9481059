/** TPM 2.0: quote verification (abi → verify), TCG event logs, and the AK trust options. */
export { TpmVerifier } from './verifier.js';
export type { TpmVerifyOptions } from './verify/quote.js';
export type { AkTrust, TrustedAk } from './verify/ak-trust.js';
export { parseEventLog, EventLogError, type EventLog, type TcgEvent } from './eventlog/parse.js';
export { replayEventLog } from './eventlog/replay.js';
export { decodeEvent } from './eventlog/decode.js';
export { verifyEkCertificate, type EkCertificateCheck } from './verify/ek-cert.js';
export { makeCredential, type Credential } from './verify/credential.js';
