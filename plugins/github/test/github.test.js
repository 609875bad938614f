/**
 * Unit tests of the GitHub element's logic under Node.js, with a fake host
 * whose HMAC and comparison are Node's own crypto.
 *
 * Run: `npm test` (in plugins/github).
 */

import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { test } from 'node:test';

import { describe, webhook } from '../src/github.js';
import { eventType } from '../src/events.js';

const SECRET = "It's a Secret to Everybody";

const fakeHost = {
  hmacSha256: (key, message) => new Uint8Array(createHmac('sha256', key).update(message).digest()),
  constantTimeEq: (a, b) => a.length === b.length && timingSafeEqual(a, b),
  // Like the host's `hex-decode`: an error (thrown by the bindings) unless
  // the text is an even number of hex digits.
  hexDecode: (text) => {
    if (!/^(?:[0-9a-fA-F]{2})*$/.test(text)) {
      throw new Error(`not hexadecimal: ${text}`);
    }
    return new Uint8Array(Buffer.from(text, 'hex'));
  },
  log: () => {},
};

const config = [['github.webhook.secret', SECRET]];

function sign(body, secret = SECRET) {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

function request(event, payload, { signature, contentType = 'application/json', body } = {}) {
  const bytes = new TextEncoder().encode(body ?? JSON.stringify(payload));
  const headers = [
    { name: 'content-type', value: contentType },
    { name: 'x-github-event', value: event },
    { name: 'x-github-delivery', value: '72d3162e-cc78-11e3-81ab-4c9367dc0958' },
  ];
  const sig = signature === undefined ? sign(bytes) : signature;
  if (sig !== null) {
    headers.push({ name: 'x-hub-signature-256', value: sig });
  }
  return { method: 'POST', url: '/events/github/MQ==', query: '', headers, body: bytes };
}

function errorTag(fn) {
  try {
    fn();
  } catch (error) {
    return error.payload;
  }
  assert.fail('expected an element error');
}

test('GitHub’s documented test vector verifies', () => {
  // From GitHub's "Validating webhook deliveries": body "Hello, World!".
  const req = request('push', null, {
    body: 'Hello, World!',
    signature: 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17',
  });
  // The signature is right, so the failure is about the (non-JSON) body.
  assert.equal(errorTag(() => webhook(fakeHost, config, req)).tag, 'bad-request');
});

test('describe names the element and its secret', () => {
  const info = describe();
  assert.equal(info.key, 'github');
  assert.deepEqual(info.modes, { webhooks: true, polling: false });
  assert.deepEqual(
    info.configKeys.map((k) => [k.name, k.required, k.secret]),
    [['github.webhook.secret', true, true]],
  );
});

test('an opened issue is created, keyed by its global id', () => {
  const payload = {
    action: 'opened',
    issue: { id: 1296269, number: 7, updated_at: '2024-05-01T12:34:56Z', title: 'Printer on fire' },
    repository: { full_name: 'octo-org/hello' },
  };
  const outcome = webhook(fakeHost, config, request('issues', payload));
  assert.equal(outcome.tag, 'accepted');
  assert.equal(outcome.val.messageId, '72d3162e-cc78-11e3-81ab-4c9367dc0958');
  assert.equal(outcome.val.raw, undefined);
  assert.deepEqual(outcome.val.events, [
    {
      eventType: 'created',
      objectType: 'issue',
      objectId: '1296269',
      date: '2024-05-01T12:34:56Z',
      raw: JSON.stringify(payload.issue),
    },
  ]);
});

test('pull request actions map to updated or deleted', () => {
  const payload = { action: 'closed', pull_request: { id: 42, updated_at: 'yesterday' } };
  const [event] = webhook(fakeHost, config, request('pull_request', payload)).val.events;
  assert.equal(event.eventType, 'updated');
  assert.equal(event.objectType, 'pull_request');
  assert.equal(event.date, '', 'an unparsable date is left to the host');
  for (const [action, expected] of [
    ['opened', 'created'],
    ['edited', 'updated'],
    ['reopened', 'updated'],
    ['deleted', 'deleted'],
    [undefined, 'unknown'],
  ]) {
    assert.equal(eventType(action), expected, String(action));
  }
});

test('a push updates the repository', () => {
  const payload = {
    ref: 'refs/heads/main',
    after: '6113728f27ae82c7b1a177c8d03f9e96e0adf246',
    repository: { full_name: 'octo-org/hello', pushed_at: 1714566896 },
    head_commit: { timestamp: '2024-05-01T14:34:56+02:00' },
  };
  const [event] = webhook(fakeHost, config, request('push', payload)).val.events;
  assert.equal(event.eventType, 'updated');
  assert.equal(event.objectType, 'repository');
  assert.equal(event.objectId, 'octo-org/hello');
  assert.equal(event.date, '2024-05-01T14:34:56+02:00');

  delete payload.head_commit; // a deleted branch has no head commit
  const [deleted] = webhook(fakeHost, config, request('push', payload)).val.events;
  assert.equal(deleted.date, '2024-05-01T12:34:56.000Z');
});

test('a ping is answered and stores nothing; other events map to none', () => {
  const ping = webhook(fakeHost, config, request('ping', { zen: 'Keep it logically awesome.' }));
  assert.equal(ping.tag, 'respond');
  assert.equal(ping.val.status, 200);
  const star = webhook(fakeHost, config, request('star', { action: 'created' }));
  assert.deepEqual(star.val.events, []);
});

test('a form-encoded delivery is read from its payload field', () => {
  const payload = { action: 'deleted', issue: { id: 9 } };
  const body = `payload=${encodeURIComponent(JSON.stringify(payload))}`;
  const req = request('issues', null, { body, contentType: 'application/x-www-form-urlencoded' });
  const outcome = webhook(fakeHost, config, req);
  assert.equal(outcome.val.events[0].eventType, 'deleted');
  assert.equal(outcome.val.raw, JSON.stringify(payload));
});

test('missing, malformed or wrong signatures are unauthorized', () => {
  const payload = { action: 'opened', issue: { id: 1 } };
  const notHex = `sha256=${'g'.repeat(64)}`;
  for (const signature of [null, '', 'sha1=abc', 'sha256=xyz', notHex, sign('other body')]) {
    const error = errorTag(() => webhook(fakeHost, config, request('issues', payload, { signature })));
    assert.equal(error.tag, 'unauthorized', String(signature));
  }
  const wrongSecret = request('issues', payload, { signature: sign(JSON.stringify(payload), 'other') });
  assert.equal(errorTag(() => webhook(fakeHost, config, wrongSecret)).tag, 'unauthorized');
});

test('bad payloads and configuration are bad requests', () => {
  assert.equal(errorTag(() => webhook(fakeHost, config, request('issues', null, { body: '{not json' }))).tag, 'bad-request');
  assert.equal(errorTag(() => webhook(fakeHost, config, request('issues', null, { body: '[1]' }))).tag, 'bad-request');
  assert.equal(errorTag(() => webhook(fakeHost, config, request('issues', { action: 'opened' }))).tag, 'bad-request');
  assert.equal(errorTag(() => webhook(fakeHost, config, request('', {}))).tag, 'bad-request');
  assert.equal(errorTag(() => webhook(fakeHost, [], request('issues', {}))).tag, 'bad-request');
});
