import type { RegisterCommand } from '../context.js';
import { registerVerify } from './verify.js';
import { registerAttestation, registerKbs, registerUp } from './up.js';
import { registerAdminToken } from './admin-token.js';
import { registerKbsClient } from './kbs-client.js';

/** Every `coffer` subcommand, one module each. */
export const commands: RegisterCommand[] = [
  registerVerify,
  registerUp,
  registerAttestation,
  registerKbs,
  registerAdminToken,
  registerKbsClient,
];
