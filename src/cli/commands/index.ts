import type { RegisterCommand } from '../context.js';
import { registerVerify } from './verify.js';
import { registerEdgeHub } from './edgehub.js';
import { registerController } from './controller.js';

/** Every `coffer` subcommand, one module each. */
export const commands: RegisterCommand[] = [
  registerVerify,
  registerEdgeHub,
  registerController,
];
