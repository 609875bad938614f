/**
 * The {{title}} element plugin (`{{name}}`).
 *
 * A starting point: webhooks carry `x-signature: base64(HMAC-SHA256(secret,
 * body))` and a JSON body `{"id", "type", "action", "date"}`, mapped into
 * one normalized event. Replace the signature scheme and the mapping with
 * your vendor's.
 *
 * componentize-js builds this module into a component of the
 * `element-plugin` world (`wit/element.wit`): the `element` export is the
 * `plugboard:element/element` interface, and `plugboard:element/host` the
 * host's import. WIT records are objects with camelCase fields, variants
 * `{ tag, val }`, `list<u8>` a Uint8Array; a `result` error is thrown as an
 * Error whose `payload` is the `element-error` value.
 */

import { base64Decode, constantTimeEq, hmacSha256, log } from 'plugboard:element/host@0.2.0';

const SECRET_KEY = '{{name}}.webhook.secret';
const SIGNATURE_HEADER = 'x-signature';
const EVENT_TYPES = { created: 'created', updated: 'updated', deleted: 'deleted' };
// Made once: they hold nothing between calls, and the engine interprets
// every line that runs per call (plugboard's docs/plugins.md, "Size and
// speed by language").
const ENCODER = new TextEncoder();
const DECODER = new TextDecoder();

/** An `element-error` to throw: bad-request, unauthorized, unsupported or internal. */
function elementError(tag, message) {
  return Object.assign(new Error(message), { payload: { tag, val: message } });
}

/**
 * Runs an export's body. An exception that is not an element error (a
 * crash: a TypeError, a bug) is logged at error level with its stack before
 * it aborts the call, so the host shows it in the call's error.
 */
function logUncaught(body) {
  try {
    return body();
  } catch (error) {
    if (error?.payload === undefined) {
      log('error', `uncaught: ${error?.stack ?? error}`);
    }
    throw error;
  }
}

export const element = {
  describe() {
    return {
      key: '{{name}}',
      aliases: [],
      name: '{{title}}',
      version: '0.1.0',
      modes: { webhooks: true, polling: false },
      configKeys: [
        { name: SECRET_KEY, required: true, secret: true, description: 'The secret the vendor signs webhooks with.' },
      ],
      fetchHosts: [],
      fetchHostConfigKeys: [],
      // A polling element names the resources an instance polls when it
      // names none, as JSON text of an event.poller.configuration object.
      defaultPollConfiguration: undefined,
      // True while the element keeps nothing between calls (no global that a
      // call changes): the host may then reuse a warm instance, which makes
      // calls many times cheaper. See docs/plugins.md.
      stateless: true,
    };
  },

  webhook(config, request) {
    return logUncaught(() => acceptWebhook(config, request));
  },

  preparePoll() {
    throw elementError('unsupported', '{{name}} receives webhooks and does not poll');
  },

  mapPoll() {
    throw elementError('unsupported', '{{name}} receives webhooks and does not poll');
  },
};

/**
 * The value of the header named `name` (the host gives inbound names in
 * lower case). Lookups here are plain loops: the element runs in an
 * interpreter, where a callback per entry, and destructuring an entry
 * (which runs the iterator protocol), add work to every call.
 */
function lookup(headers, name) {
  for (let i = 0; i < headers.length; i++) {
    if (headers[i].name === name) {
      return headers[i].value;
    }
  }
  return undefined;
}

/** The value of configuration key `key`, unless empty. */
function configValue(config, key) {
  for (let i = 0; i < config.length; i++) {
    const entry = config[i];
    if (entry[0] === key && entry[1] !== '') {
      return entry[1];
    }
  }
  return undefined;
}

/** Checks the signature header against the HMAC of the exact body bytes, computed and compared (in constant time) by the host. */
function verify(secret, request) {
  const header = lookup(request.headers, SIGNATURE_HEADER);
  if (header === undefined) {
    throw elementError('unauthorized', `missing ${SIGNATURE_HEADER} header`);
  }
  let presented;
  try {
    presented = base64Decode(header.trim());
  } catch (error) {
    throw elementError('unauthorized', `${SIGNATURE_HEADER} is not base64`);
  }
  const expected = hmacSha256(ENCODER.encode(secret), request.body);
  if (!constantTimeEq(expected, presented)) {
    throw elementError('unauthorized', `${SIGNATURE_HEADER} does not match`);
  }
}

/** Verifies a webhook and maps it into one event. */
function acceptWebhook(config, request) {
  const secret = configValue(config, SECRET_KEY);
  if (secret === undefined) {
    throw elementError('bad-request', `configuration \`${SECRET_KEY}\` is missing`);
  }
  verify(secret, request);

  let payload;
  try {
    payload = JSON.parse(DECODER.decode(request.body));
  } catch (error) {
    throw elementError('bad-request', `body is not valid JSON: ${error.message}`);
  }
  if (payload === null || typeof payload !== 'object') {
    throw elementError('bad-request', 'body is not a JSON object');
  }
  const text = (value) => (value === undefined || value === null ? '' : String(value));
  return {
    tag: 'accepted',
    val: {
      messageId: undefined,
      events: [
        {
          eventType: EVENT_TYPES[payload.action] ?? 'unknown',
          objectType: text(payload.type),
          objectId: text(payload.id),
          date: text(payload.date), // RFC 3339, or empty for the time of receipt
          raw: JSON.stringify(payload),
        },
      ],
      raw: undefined,
    },
  };
}
