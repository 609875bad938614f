/**
 * GitHub's webhook signature: `X-Hub-Signature-256: sha256=<hex>`, the
 * HMAC-SHA256 of the exact body bytes under the webhook's secret.
 *
 * The HMAC, the decoding of the presented hex digits and the comparison run
 * in the host (`hmac-sha256`, `hex-decode`, `constant-time-eq`): the
 * comparison takes the same time whatever the presented signature is, and
 * the element's own code, which the engine interprets, stays short.
 */

import { unauthorized } from './errors.js';

/** The header that carries the signature (the host lower-cases names). */
export const SIGNATURE_HEADER = 'x-hub-signature-256';

/** Kept across calls: an encoder holds no state between them. */
const ENCODER = new TextEncoder();

/** What the header's value starts with; 64 hex digits follow. */
const PREFIX = 'sha256=';
const FORM_MESSAGE = 'X-Hub-Signature-256 must be "sha256=" and 64 hex digits';

/**
 * Throws `unauthorized` unless `header` is the signature of `body` under
 * `secret`.
 *
 * @param {object} host the `plugboard:element/host` import (or a fake)
 * @param {string} secret the webhook secret
 * @param {Uint8Array} body the exact body bytes
 * @param {string | undefined} header the `X-Hub-Signature-256` value
 */
export function verifySignature(host, secret, body, header) {
  const value = header === undefined ? '' : header.trim();
  if (value === '') {
    throw unauthorized('missing X-Hub-Signature-256 header');
  }
  if (value.length !== PREFIX.length + 64 || !value.startsWith(PREFIX)) {
    throw unauthorized(FORM_MESSAGE);
  }
  // The host's `hex-decode` checks the digits (a regular expression would
  // run in the engine's regexp interpreter, character by character).
  let presented;
  try {
    presented = host.hexDecode(value.slice(PREFIX.length));
  } catch {
    throw unauthorized(FORM_MESSAGE);
  }
  const expected = host.hmacSha256(ENCODER.encode(secret), body);
  if (!host.constantTimeEq(expected, presented)) {
    throw unauthorized('X-Hub-Signature-256 does not match the body');
  }
}
