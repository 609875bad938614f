/**
 * The GitHub element: who it is, and what it makes of a webhook delivery.
 *
 * Order matters: the signature is checked over the exact body bytes before
 * anything else is read, so an unsigned or forged request learns nothing.
 * A `ping` (sent when a webhook is created) is answered directly and stores
 * nothing; every other delivery is accepted, with `X-GitHub-Delivery` as the
 * message id the host de-duplicates on.
 */

import { badRequest } from './errors.js';
import { mapEvent } from './events.js';
import { SIGNATURE_HEADER, verifySignature } from './signature.js';

/** Kept across calls: a decoder used without `stream` holds no state between them. */
const DECODER = new TextDecoder('utf-8', { fatal: true });

/** The plugin version `describe` reports; keep in step with package.json. */
export const VERSION = '0.1.0';

/** The configuration key of the webhook secret. */
export const SECRET_KEY = 'github.webhook.secret';

/** The WIT `element-info` of the GitHub element. */
export function describe() {
  return {
    key: 'github',
    aliases: [],
    name: 'GitHub',
    version: VERSION,
    modes: { webhooks: true, polling: false },
    configKeys: [
      {
        name: SECRET_KEY,
        required: true,
        secret: true,
        description:
          'The secret set on the GitHub webhook; each delivery must carry a matching X-Hub-Signature-256.',
      },
    ],
    fetchHosts: [],
    fetchHostConfigKeys: [],
    defaultPollConfiguration: undefined,
    // Nothing is kept between calls: the host may reuse a warm instance.
    stateless: true,
  };
}

/**
 * Verifies and maps one webhook delivery.
 *
 * @param {object} host the `plugboard:element/host` import (or a fake)
 * @param {Array<[string, string]>} config the instance configuration
 * @param {object} request the WIT `http-request`
 * @returns {object} the WIT `webhook-outcome`
 */
export function webhook(host, config, request) {
  const secret = configValue(config, SECRET_KEY);
  if (secret === undefined) {
    throw badRequest(`configuration \`${SECRET_KEY}\` is missing`);
  }
  verifySignature(host, secret, request.body, header(request, SIGNATURE_HEADER));

  const event = header(request, 'x-github-event');
  if (event === undefined || event === '') {
    throw badRequest('missing X-GitHub-Event header');
  }
  const { payload, text, fromForm } = parsePayload(request);
  if (event === 'ping') {
    return { tag: 'respond', val: pong() };
  }
  return {
    tag: 'accepted',
    val: {
      messageId: header(request, 'x-github-delivery') || undefined,
      events: mapEvent(event, payload),
      // A form-encoded delivery's body is not JSON: notifications carry its payload.
      raw: fromForm ? text : undefined,
    },
  };
}

/**
 * The JSON payload: the body itself (`application/json`, GitHub's default)
 * or its `payload` field (`application/x-www-form-urlencoded`).
 */
function parsePayload(request) {
  let body;
  try {
    body = DECODER.decode(request.body);
  } catch {
    throw badRequest('body is not UTF-8');
  }
  const contentType = (header(request, 'content-type') || '').toLowerCase();
  const fromForm = contentType.startsWith('application/x-www-form-urlencoded');
  const text = fromForm ? new URLSearchParams(body).get('payload') : body;
  if (text === null) {
    throw badRequest('form-encoded body has no payload field');
  }
  let payload;
  try {
    payload = JSON.parse(text);
  } catch (error) {
    throw badRequest(`payload is not valid JSON: ${error.message}`);
  }
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    throw badRequest('payload is not a JSON object');
  }
  return { payload, text, fromForm };
}

/** The answer to a `ping`: 200 with a small JSON body. */
function pong() {
  return {
    status: 200,
    headers: [{ name: 'content-type', value: 'application/json' }],
    body: new TextEncoder().encode('{"ok":true}'),
  };
}

/**
 * The value of the first header named `name` (lower-case, as the host gives
 * inbound names), trimmed. A plain loop: the engine interprets this code,
 * and a callback per header costs a call each.
 */
function header(request, name) {
  const headers = request.headers;
  for (let i = 0; i < headers.length; i++) {
    if (headers[i].name === name) {
      return headers[i].value.trim();
    }
  }
  return undefined;
}

/**
 * The value of configuration key `key`, unless blank (kept as is: secrets
 * may hold spaces). A plain loop with indexing: destructuring each entry in
 * a callback runs the iterator protocol per entry in the interpreter.
 */
function configValue(config, key) {
  for (let i = 0; i < config.length; i++) {
    const entry = config[i];
    if (entry[0] === key && entry[1].trim() !== '') {
      return entry[1];
    }
  }
  return undefined;
}
