import type { RegisterCommand } from '../context.js';
import { registerVerify } from './verify.js';
import { registerAdmit } from './admit.js';
import { registerWebhook } from './webhook.js';
import { registerManifests } from './manifests.js';
import { registerEventlog } from './eventlog.js';
import { registerAttestation, registerKbs, registerUp } from './up.js';
import { registerAdminToken } from './admin-token.js';
import { registerKbsClient } from './kbs-client.js';
import { registerEdgeHub } from './edgehub.js';
import { registerController } from './controller.js';
import { registerAgent } from './agent.js';
import { registerStatus } from './status.js';
import { registerNodeTrust } from './node-trust.js';

/** Every `coffer` subcommand, one module each. */
export const commands: RegisterCommand[] = [
  registerVerify,
  registerAdmit,
  registerWebhook,
  registerManifests,
  registerEventlog,
  registerUp,
  registerAttestation,
  registerKbs,
  registerAdminToken,
  registerKbsClient,
  registerEdgeHub,
  registerController,
  registerAgent,
  registerStatus,
  registerNodeTrust,
];
