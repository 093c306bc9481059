/** Node-side TPM access: the command client, its transports, and swtpm's control channel. */
export { TpmClient, readEventLog, TPM_CC, TPM_RH, type LoadedKey, type QuoteResult } from './client.js';
export { SocketTransport, DeviceTransport, swtpmControl, SWTPM_CTRL, type TpmTransport } from './transport.js';
export { TpmResponseError, TpmTransportError, decodeRc } from './rc.js';
export { akTemplate, ekTemplate, workloadAkTemplate } from './templates.js';
export { enrolAk, httpEnrolPost, TpmEnrolError, type EnrolOptions, type EnrolPost, type EnrolResult } from './enrol.js';
