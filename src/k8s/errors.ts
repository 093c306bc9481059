import { CofferError } from '../tee/common/errors.js';

/** A Kubernetes object Coffer was given (policy, profile, pod, review) is malformed; the message names the field. */
export class K8sInputError extends CofferError {
  constructor(message: string, code = 'K8S_INPUT_INVALID') {
    super(code, message);
  }
}
