/**
 * The `element-error` variant of the WIT contract, as JavaScript errors.
 *
 * A function that returns `result<T, element-error>` returns `T` and throws
 * for the error case. The component bindings take the thrown error's
 * `payload` as the WIT value (`{ tag, val }`), so each helper here builds an
 * `Error` (with a stack, for the unit tests) that carries one.
 */

/** An error the host maps to an HTTP status (400, 401, 501, 500). */
export class ElementError extends Error {
  /**
   * @param {'bad-request' | 'unauthorized' | 'unsupported' | 'internal'} tag
   * @param {string} message
   */
  constructor(tag, message) {
    super(`${tag}: ${message}`);
    this.name = 'ElementError';
    /** The WIT `element-error` value. */
    this.payload = { tag, val: message };
  }
}

/** The payload or configuration is malformed. */
export const badRequest = (message) => new ElementError('bad-request', message);

/** The signature is missing or wrong. */
export const unauthorized = (message) => new ElementError('unauthorized', message);

/** The element does not do what was asked. */
export const unsupported = (message) => new ElementError('unsupported', message);
