// The web console in a real browser: headless Debian chromium driven by
// playwright-core, against a running plugboard host with real plugins, a
// fake ConnectWise and a notification receiver (all started by the Rust
// end-to-end test tests/e2e/console.rs, which passes their addresses in
// the environment). The tests run in order and share one browser page,
// like a person working through the console.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; run this through tests/e2e/console.rs`);
  return value;
}

const base = env('PLUGBOARD_URL');
const user = env('PLUGBOARD_USER_SECRET');
const organization = env('PLUGBOARD_ORGANIZATION_SECRET');
const pluginDir = env('PLUGBOARD_PLUGIN_DIR');
const extraPlugin = env('PLUGBOARD_EXTRA_PLUGIN');
const cwServerUrl = env('CW_SERVER_URL');
const cwKeyUrl = env('CW_KEY_URL');
const cwSigningKey = env('CW_SIGNING_KEY');
const receiverUrl = env('RECEIVER_URL');
const deadUrl = env('DEAD_CALLBACK_URL');
const shots = env('SCREENSHOT_DIR');
const rotatedKeysFile = env('ROTATED_KEYS_FILE');
const probePlugin = env('PROBE_PLUGIN');
const probeBrokenPlugin = env('PROBE_BROKEN_PLUGIN');
const authorization = `User ${user}, Organization ${organization}`;

const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
];

let browser;
let page;
const pageErrors = [];
const state = {};

/** Polls `check` until it returns a truthy value, or fails after `ms`. */
async function eventually(what, check, ms = 30000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Saves a screenshot of the whole page, or with `{ fullPage: false }` of what the window shows. */
async function shot(name, { fullPage = true } = {}) {
  await page.screenshot({ path: path.join(shots, `console-${name}.png`), fullPage });
}

/** A management API call made outside the browser, with the header. */
async function api(method, route, body) {
  const res = await fetch(`${base}${route}`, {
    method,
    headers: { authorization, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

/** A ConnectWise callback body, signed as ConnectWise signs it. */
function connectWiseCallback(messageId, action, type, id) {
  const entity = { id, summary: 'Printer on fire', _info: { lastUpdated: '2024-05-01T12:34:56Z' } };
  const body = Buffer.from(JSON.stringify({
    MessageId: messageId, FromUrl: 'https://api-na.myconnectwise.net', CompanyId: 'acme', MemberId: 'jdoe',
    Action: action, Type: type, ID: id, CallbackObjectRecId: 12, Entity: JSON.stringify(entity),
    Metadata: { key_url: cwKeyUrl },
  }));
  const key = crypto.createHash('sha256').update(cwSigningKey).digest();
  const signature = crypto.createHmac('sha256', key).update(body).digest('base64');
  return { body, signature };
}

/** The same component with a custom section appended: another file, same behaviour. */
function withCustomSection(wasm) {
  const name = Buffer.from('plugboard-console-test');
  const payload = Buffer.concat([Buffer.from([name.length]), name, Buffer.from([1])]);
  return Buffer.concat([wasm, Buffer.from([0, payload.length]), payload]);
}

const webhookPath = (element, id) => `/events/${element}/${Buffer.from(String(id)).toString('base64')}`;

/** Sends a signed ConnectWise callback for ticket `id` to the ConnectWise instance; resolves to the answer. */
async function sendTicket(messageId, id) {
  const { body, signature } = connectWiseCallback(messageId, 'added', 'ticket', id);
  return fetch(`${base}${webhookPath('connectwise', state.instance)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-content-signature': signature },
    body,
  });
}

/** Sends ticket `id` and waits until the receiver acknowledged its notification. */
async function deliverTicket(messageId, id) {
  const res = await sendTicket(messageId, id);
  assert.equal(res.status, 200, await res.text());
  await eventually(`ticket ${id} to be delivered`, async () => {
    const { json } = await api('GET', `/instances/${state.instance}/events?pageSize=20`);
    return json.events.some((e) => e.status === 'NOTIFIED' && e.events?.[0]?.objectId === String(id));
  });
}

before(async () => {
  fs.mkdirSync(shots, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_FLAGS,
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  page = await context.newPage();
  page.setDefaultTimeout(30000);
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.text().includes('status of 40')) pageErrors.push(msg.text());
  });
});

after(async () => {
  await browser?.close();
});

test('signs in with the management secrets, and only with them', async () => {
  await page.goto(`${base}/console`);
  assert.match(page.url(), /\/console\/login$/);
  await shot('login');
  await page.getByLabel('User secret').fill(user);
  await page.getByLabel('Organization secret').fill('wrong');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'not the management credentials' }).waitFor();

  await page.getByLabel('User secret').fill(user);
  await page.getByLabel('Organization secret').fill(organization);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/console/instances`);
  await page.getByRole('heading', { name: 'Instances' }).waitFor();
  await page.getByText('No instances yet').waitFor();

  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'plugboard_console');
  assert.ok(session, 'session cookie set');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  assert.equal(await page.evaluate(() => document.cookie), '', 'the cookie is out of reach of scripts');

  // The session reads the API; changing state also needs the console header.
  const statuses = await page.evaluate(async () => {
    const read = await fetch('/instances');
    const write = await fetch('/instances', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    return [read.status, write.status];
  });
  assert.deepEqual(statuses, [200, 401]);
  assert.equal((await fetch(`${base}/instances`)).status, 401, 'no cookie, no header: refused');
});

test('creates a ConnectWise instance through the form, after a validation error', async () => {
  await page.getByRole('link', { name: 'New instance' }).click();
  await page.getByRole('heading', { name: 'New instance' }).waitFor();
  await page.getByLabel('Element', { exact: true }).selectOption('connectwise');
  await page.getByLabel('Instance name').fill('ACME helpdesk');

  // Required keys are shown first; optional ones only on demand.
  const labels = await page.locator('#element-keys .field:not([hidden]) label').allTextContents();
  assert.deepEqual(labels, [
    'helpdesk.connectwise.server.url (required)',
    'helpdesk.connectwise.company (required)',
  ]);
  assert.equal(await page.getByLabel('helpdesk.connectwise.public.key').isVisible(), false);
  await page.getByLabel('helpdesk.connectwise.server.url').fill(cwServerUrl);
  await page.getByLabel('helpdesk.connectwise.company').fill('acme');

  const signingHint = page.locator('#signing-hint');
  assert.equal(await signingHint.isVisible(), false, 'no signing hint while events are off');
  await page.getByRole('switch', { name: 'Events Enabled' }).check();
  assert.equal(await page.getByRole('radio', { name: /Webhooks/ }).isChecked(), true);
  // Switched on, the form points at the signature key among the optional fields.
  await signingHint.waitFor();
  assert.match(await signingHint.textContent(), /unsigned unless you add a\s+Callback Notification Signature Key/);
  assert.equal(await page.getByLabel('Callback Notification Signature Key').isVisible(), false);
  await page.getByLabel('Event Notification Callback URL').fill('ftp://example.com/hook');
  await page.getByLabel('Element instance tags').fill('acme, helpdesk');
  await page.getByRole('button', { name: 'Create Instance' }).click();

  // The server's 400 names the field; the message sits beside it, and focus moves there.
  const callback = page.getByLabel('Event Notification Callback URL');
  await page.locator('#callback-url-error').filter({ hasText: 'must be an http or https URL' }).waitFor();
  assert.equal(await callback.getAttribute('aria-invalid'), 'true');
  assert.match(await callback.getAttribute('aria-describedby'), /callback-url-error/);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'callback-url');
  await shot('new-instance');
  await signingHint.getByRole('button', { name: 'Add a signature key' }).click();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'signature-key');
  assert.equal(await signingHint.isVisible(), false);
  assert.equal(await page.getByRole('button', { name: 'Hide optional fields' }).getAttribute('aria-expanded'), 'true');
  await page.getByLabel('Callback Notification Signature Key').fill('callback-secret');
  assert.equal(await page.getByLabel('helpdesk.connectwise.private.key').getAttribute('type'), 'password');
  await page.getByLabel('helpdesk.connectwise.public.key').fill('public-123');
  await page.getByLabel('helpdesk.connectwise.private.key').fill('private-456');

  // Polling asks for its own settings, validated the same way.
  await callback.fill(receiverUrl);
  await page.getByRole('radio', { name: /Polling/ }).check();
  await page.getByLabel('Event poller refresh interval (minutes)').fill('5');
  await page.getByLabel('Event poller configuration (JSON)').fill('{"tickets": ');
  await page.getByRole('button', { name: 'Create Instance' }).click();
  await page.locator('#poller-configuration-error').waitFor();
  assert.equal(await page.locator('#callback-url-error').count(), 0, 'the fixed field lost its error');
  await page.getByRole('radio', { name: /Webhooks/ }).check();
  assert.equal(await page.getByLabel('Event poller configuration (JSON)').isVisible(), false);

  await page.getByRole('button', { name: 'Create Instance' }).click();
  const created = page.getByRole('heading', { name: /Instance \d+ created/ });
  await created.waitFor();
  state.instance = Number((await created.textContent()).match(/Instance (\d+)/)[1]);
  const webhookUrl = `${base}${webhookPath('connectwise', state.instance)}`;
  assert.equal(await page.getByLabel('Vendor webhook URL').inputValue(), webhookUrl);
  assert.ok((await page.getByLabel('Instance token').inputValue()).length >= 32);
  await page.locator('#copy-webhook').click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), webhookUrl);
  await shot('instance-created');

  const { json } = await api('GET', `/instances/${state.instance}`);
  assert.equal(json.name, 'ACME helpdesk');
  assert.deepEqual(json.tags, ['acme', 'helpdesk']);
  assert.equal(json.eventsEnabled, true);
  assert.equal(json.configuration['helpdesk.connectwise.private.key'], '********');

  await page.getByRole('link', { name: 'All instances' }).click();
  const row = page.locator(`tr[data-instance="${state.instance}"]`);
  await row.waitFor();
  assert.match(await row.textContent(), /ACME helpdesk.*connectwise.*acme.*helpdesk.*On/);
  assert.ok((await row.textContent()).includes(webhookUrl));
  await shot('instances');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
});

test('shows plugins dropped, replaced and broken without reloading the page', async () => {
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Plugins' }).click();
  await page.locator('tr[data-file="connectwise.wasm"]').filter({ hasText: 'ConnectWise Manage' }).waitFor();
  await page.evaluate(() => { window.stillTheSamePage = true; });

  // The replicas section: on SQLite this process alone, holding every
  // poll partition and the maintenance job.
  const replicas = page.locator('#replicas tbody tr');
  await replicas.filter({ hasText: '(this one)' }).waitFor();
  assert.equal(await replicas.count(), 1);
  assert.match(await replicas.textContent(), /256.*0–255.*maintenance/s);

  // Dropped: a new element appears once it compiled (a large component: allow time).
  const github = path.join(pluginDir, 'github.wasm');
  fs.copyFileSync(extraPlugin, `${github}.tmp`);
  fs.renameSync(`${github}.tmp`, github);

  // Replaced: the same element from a different file, by atomic rename. It
  // compiles after the large github component on a busy machine: allow time.
  const probe = path.join(pluginDir, 'probe.wasm');
  const probeRow = page.locator('tr[data-file="probe.wasm"]');
  const hashBefore = await probeRow.locator('code[title]').getAttribute('title');
  fs.writeFileSync(`${probe}.tmp`, withCustomSection(fs.readFileSync(probe)));
  fs.renameSync(`${probe}.tmp`, probe);
  await eventually('the replaced probe to load', async () =>
    (await probeRow.locator('code[title]').getAttribute('title')) !== hashBefore, 120000);

  // Broken: reported with its error.
  fs.writeFileSync(path.join(pluginDir, 'broken.wasm'), 'this is not a component');
  const broken = page.locator('tr[data-file="broken.wasm"]');
  await broken.filter({ hasText: 'not loaded' }).waitFor({ timeout: 60000 });
  assert.ok(await broken.locator('.error').count() > 0, 'the load error is shown');

  const githubRow = page.locator('tr[data-file="github.wasm"]');
  await githubRow.filter({ hasText: '(github)' }).waitFor({ timeout: 120000 });
  assert.match(await githubRow.textContent(), /webhooks/);
  assert.equal(await page.evaluate(() => window.stillTheSamePage), true, 'no page reload');
  await shot('plugins');
});

test('follows a signed webhook to its delivery, and redelivers it', async () => {
  const res = await sendTicket('msg-console-1', 101);
  assert.equal(res.status, 200, await res.text());

  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Events' }).click();
  const row = page.locator('#events tbody tr').first();
  await eventually('the event to be delivered', async () => /NOTIFIED/.test(await row.textContent()));
  assert.match(await row.textContent(), /connectwise.*CREATED ticket 101/);
  await shot('events');

  await page.getByLabel('Status').selectOption('FAILED');
  await page.getByText('No events match.').waitFor();
  assert.match(page.url(), /status=FAILED/);
  await page.getByLabel('Status').selectOption('');

  // Searching by what the events are about: the object id and type are
  // sent to the API and kept in the address.
  const objectId = page.getByLabel('Object id');
  await objectId.fill('999');
  await objectId.press('Enter');
  await page.getByText('No events match.').waitFor();
  assert.match(page.url(), /objectId=999/);
  await objectId.fill('101');
  await objectId.press('Enter');
  await eventually('the event of ticket 101', async () => /CREATED ticket 101/.test(await row.textContent()));
  const objectType = page.getByLabel('Object type');
  await objectType.fill('contact');
  await objectType.press('Enter');
  await page.getByText('No events match.').waitFor();
  await page.getByLabel('Event type').selectOption('CREATED');
  await objectType.fill('ticket');
  await objectType.press('Enter');
  await eventually('the event of ticket 101 again', async () => /CREATED ticket 101/.test(await row.textContent()));
  assert.match(page.url(), /objectType=ticket/);
  assert.match(page.url(), /eventType=CREATED/);
  for (const field of [objectId, objectType]) {
    await field.fill('');
    await field.press('Enter');
  }
  await page.getByLabel('Event type').selectOption('');
  await row.getByRole('link', { name: 'CREATED ticket 101' }).click();

  await page.getByRole('heading', { name: /^Event / }).waitFor();
  const normalized = page.locator('#normalized tbody tr');
  await normalized.first().waitFor();
  assert.match(await normalized.first().textContent(), /CREATED.*ticket.*101/);
  const raw = JSON.parse(await page.locator('#raw').textContent());
  assert.equal(raw.MessageId, 'msg-console-1');
  const attempts = page.locator('#attempts tbody tr');
  await eventually('one attempt', async () => (await attempts.count()) === 1);
  assert.match(await attempts.first().textContent(), /200.*\d+ ms/);

  await page.getByRole('button', { name: 'Redeliver' }).click();
  await page.locator('#redeliver-result').filter({ hasText: 'Queued for redelivery' }).waitFor();
  await eventually('a second attempt', async () => (await attempts.count()) === 2);
  assert.match(await attempts.nth(1).textContent(), /200/);
  await page.locator('#summary').filter({ hasText: 'NOTIFIED' }).waitFor();
  await shot('event');
});

test('redelivers every dead-lettered event of an instance', async () => {
  const { status, json } = await api('POST', '/instances', {
    element: { key: 'probe' },
    name: 'Gone receiver',
    configuration: { 'event.notification.enabled': true, 'event.notification.callback.url': deadUrl },
  });
  assert.equal(status, 200, JSON.stringify(json));
  state.goneInstance = json.id;
  const res = await fetch(`${base}${webhookPath('probe', json.id)}`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-probe-id': 'obj-1' }, body: '{"n":1}',
  });
  assert.equal(res.status, 200);

  await page.goto(`${base}/console/events?instance=${json.id}&status=FAILED`);
  // The instance list is fetched after the page loads; the link's instance is chosen once it arrives.
  await eventually('the linked instance to be chosen', async () =>
    (await page.getByLabel('Instance').inputValue()) === String(json.id));
  const row = page.locator('#events tbody tr').first();
  await eventually('the event to be dead-lettered', async () => /FAILED/.test(await row.textContent()), 30000);
  const before = (await api('GET', `/instances/events/${await row.getAttribute('data-event')}`)).json;
  assert.equal(before.status, 'FAILED');
  state.goneEvent = before.eventId;
  const result = page.locator('#redeliver-result');
  await page.getByRole('button', { name: 'Redeliver dead-lettered' }).click();
  await result.filter({ hasText: `1 dead-lettered event of instance ${json.id} queued for redelivery.` }).waitFor();
  await shot('events-redelivered');
  await eventually('the redelivery to be attempted', async () => {
    const now = (await api('GET', `/instances/events/${before.eventId}`)).json;
    return now.attemptLog.length > before.attemptLog.length;
  }, 30000);

  // An instance with nothing dead-lettered says so.
  await page.getByLabel('Instance').selectOption(String(state.instance));
  await page.getByRole('button', { name: 'Redeliver dead-lettered' }).click();
  await result.filter({ hasText: `No dead-lettered events of instance ${state.instance} to redeliver.` }).waitFor();
});

test('edits an instance: changed keys saved, emptied ones removed, secrets kept unless typed', async () => {
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Instances' }).click();
  await page.getByRole('link', { name: `Edit instance ${state.instance}` }).click();
  await page.getByRole('heading', { name: `Instance ${state.instance}: ACME helpdesk` }).waitFor();
  const company = page.getByLabel('helpdesk.connectwise.company');
  const clientId = page.getByLabel('helpdesk.connectwise.client.id');
  const privateKey = page.getByLabel('helpdesk.connectwise.private.key');
  const callback = page.getByLabel('Event Notification Callback URL');
  assert.equal(await company.inputValue(), 'acme');
  assert.equal(await clientId.inputValue(), '');
  assert.equal(await privateKey.getAttribute('type'), 'password');
  assert.equal(await privateKey.inputValue(), '', 'a secret is never shown');
  assert.match(await page.locator(`#${await privateKey.getAttribute('id')}-kept`).textContent(), /stays as it is/);
  assert.equal(await callback.inputValue(), receiverUrl);

  await page.getByLabel('Instance name').fill('ACME helpdesk east');
  await company.fill('acme-east');
  await clientId.fill('console-client');
  await callback.fill('ftp://example.com/hook');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.locator('#callback-url-error').filter({ hasText: 'must be an http or https URL' }).waitFor();
  assert.equal(await callback.getAttribute('aria-invalid'), 'true');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'callback-url');
  let { json } = await api('GET', `/instances/${state.instance}`);
  assert.equal(json.configuration['helpdesk.connectwise.company'], 'acme', 'nothing stored from a refused save');

  await callback.fill(receiverUrl);
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.locator('#edit-saved').filter({ hasText: /^Saved at / }).waitFor();
  assert.equal(await page.locator('#callback-url-error').count(), 0);
  await page.getByRole('heading', { name: `Instance ${state.instance}: ACME helpdesk east` }).waitFor();
  ({ json } = await api('GET', `/instances/${state.instance}`));
  assert.equal(json.name, 'ACME helpdesk east');
  assert.equal(json.configuration['helpdesk.connectwise.company'], 'acme-east');
  assert.equal(json.configuration['helpdesk.connectwise.client.id'], 'console-client');
  assert.equal(json.configuration['helpdesk.connectwise.public.key'], '********', 'an untouched secret is kept');
  assert.equal(json.configuration['helpdesk.connectwise.private.key'], '********', 'an untouched secret is kept');
  assert.equal(json.configuration['event.notification.callback.url'], receiverUrl);
  assert.equal(json.configuration['event.notification.signature.key'], '********');
  await shot('instance');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.locator('#edit-saved').filter({ hasText: 'Nothing changed.' }).waitFor();

  // An emptied field removes its key.
  assert.equal(await clientId.inputValue(), 'console-client');
  await clientId.fill('');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.locator('#edit-saved').filter({ hasText: /^Saved at / }).waitFor();
  ({ json } = await api('GET', `/instances/${state.instance}`));
  assert.equal('helpdesk.connectwise.client.id' in json.configuration, false, 'an emptied key is removed');
  assert.equal(json.configuration['helpdesk.connectwise.company'], 'acme-east');

  // Delivery order and rate limit: a bad rate refused beside its field,
  // both saved, shown again, then removed.
  const ordered = page.getByLabel('Delivery order');
  const rate = page.getByLabel(/^Rate limit/);
  assert.equal(await ordered.inputValue(), '');
  await rate.fill('fast');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.locator('#rate-limit-error').filter({ hasText: 'expected a positive number of requests per second' }).waitFor();
  await rate.fill('5');
  await ordered.selectOption('true');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.locator('#edit-saved').filter({ hasText: /^Saved at / }).waitFor();
  ({ json } = await api('GET', `/instances/${state.instance}`));
  assert.equal(json.configuration['event.notification.ordered'], 'true');
  assert.equal(json.configuration['event.notification.rate_limit'], '5');
  assert.equal(await rate.inputValue(), '5');
  assert.equal(await ordered.inputValue(), 'true');
  await rate.fill('');
  await ordered.selectOption('');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.locator('#edit-saved').filter({ hasText: /^Saved at / }).waitFor();
  ({ json } = await api('GET', `/instances/${state.instance}`));
  assert.equal('event.notification.ordered' in json.configuration, false);
  assert.equal('event.notification.rate_limit' in json.configuration, false);
});

test('switches events off and on from the instance page', async () => {
  const toggle = page.getByRole('switch', { name: 'Events Enabled' });
  const eventsState = page.locator('#events-state');
  assert.equal(await toggle.isChecked(), true);
  await toggle.uncheck();
  await eventsState.filter({ hasText: /^Off:/ }).waitFor();
  assert.equal((await api('GET', `/instances/${state.instance}`)).json.eventsEnabled, false);
  assert.equal((await sendTicket('msg-console-off', 150)).status, 409, 'webhooks refused while events are off');

  await toggle.check();
  await eventsState.filter({ hasText: `On: notifications go to ${receiverUrl}` }).waitFor();
  assert.equal((await api('GET', `/instances/${state.instance}`)).json.eventsEnabled, true);
});

test('sends a test notification and shows what the receiver answered', async () => {
  await page.getByRole('button', { name: 'Send test notification' }).click();
  const result = page.locator('#test-result');
  await result.filter({ hasText: /^Delivered: / }).waitFor();
  const text = await result.textContent();
  assert.ok(text.includes(`${receiverUrl} answered 200 in `), text);
  assert.match(text, /answered 200 in \d+ ms/);
  assert.equal(await result.getAttribute('class'), 'ok');
});

test('shows the vendor subscription, and why it cannot run without a public URL', async () => {
  const status = page.locator('#subscription-status');
  assert.equal(await status.textContent(), 'Not subscribed');
  assert.match(await page.locator('#subscription-message').textContent(), /public URL \(public_url\) is not set/);
  const { json } = await api('GET', `/instances/${state.instance}`);
  assert.equal(json.subscription.status, 'not_subscribed');
  await page.getByRole('button', { name: 'Subscribe again' }).click();
  await page.locator('#resubscribe-error').filter({ hasText: 'PLUGBOARD_PUBLIC_URL' }).waitFor();
  assert.equal(await status.textContent(), 'Not subscribed');
});

test('rotates the signature key: generated or typed, shown once, the next notifications signed with it', async () => {
  assert.match(await page.locator('#key-state').textContent(), /^Set\./);
  await page.getByRole('button', { name: 'Rotate signature key' }).click();
  await page.locator('#rotate-grace').filter({ hasText: 'keeps signing, next to the new one' }).waitFor();
  assert.equal(await page.getByRole('radio', { name: /Generate a strong random key/ }).isChecked(), true);
  await page.getByRole('button', { name: 'Rotate key' }).click();
  await page.getByRole('heading', { name: 'New signature key, shown only once' }).waitFor();
  const generated = await page.getByLabel('New signature key', { exact: true }).inputValue();
  assert.match(generated, /^whsec_[A-Za-z0-9+/]{43}=$/);
  assert.equal(Buffer.from(generated.slice('whsec_'.length), 'base64').length, 32);
  assert.match(await page.locator('#rotated-grace').textContent(), /previous key keeps signing too, for the host's key grace period/);
  await shot('key-rotated', { fullPage: false });
  await page.locator('#copy-key').click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), generated);
  await page.getByRole('button', { name: 'Done' }).click();
  assert.equal(await page.locator('#rotated').isVisible(), false);
  assert.equal(await page.locator('#new-key').inputValue(), '', 'the key is not kept on the page');
  assert.equal((await api('GET', `/instances/${state.instance}`)).json.configuration['event.notification.signature.key'], '********');
  await deliverTicket('msg-console-2', 102);

  // A key of one's own: asked for when empty, then used as typed.
  const typed = 'typed-in-the-console-0123456789';
  await page.getByRole('button', { name: 'Rotate signature key' }).click();
  await page.getByRole('radio', { name: 'Type my own' }).check();
  await page.getByRole('button', { name: 'Rotate key' }).click();
  await page.locator('#typed-key-error').filter({ hasText: 'Type a key' }).waitFor();
  await page.getByLabel('Your new signature key').fill(typed);
  await page.getByRole('button', { name: 'Rotate key' }).click();
  await page.getByRole('heading', { name: 'New signature key, shown only once' }).waitFor();
  assert.equal(await page.getByLabel('New signature key', { exact: true }).inputValue(), typed);
  await page.getByRole('button', { name: 'Done' }).click();
  await deliverTicket('msg-console-3', 103);
  // The Rust side checks the receiver saw each notification signed with these, newest first.
  fs.writeFileSync(rotatedKeysFile, JSON.stringify([generated, typed]));
});

test('deletes an instance only after confirmation', async () => {
  const id = state.goneInstance;
  await page.goto(`${base}/console/instances/${id}`);
  await page.getByRole('heading', { name: `Instance ${id}: Gone receiver` }).waitFor();
  const dialog = page.getByRole('dialog');
  await page.getByRole('button', { name: 'Delete instance…' }).click();
  await dialog.waitFor();
  assert.match(await dialog.textContent(), /"Gone receiver" \(probe\), its event log/);
  await shot('delete-confirm', { fullPage: false });
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await dialog.waitFor({ state: 'hidden' });
  assert.equal((await api('GET', `/instances/${id}`)).status, 200, 'cancel keeps it');

  await page.getByRole('button', { name: 'Delete instance…' }).click();
  await dialog.getByRole('button', { name: `Delete instance ${id}` }).click();
  await page.locator('#notice').filter({ hasText: `Instance ${id} deleted.` }).waitFor();
  assert.equal(new URL(page.url()).pathname, '/console/instances');
  await page.locator(`tr[data-instance="${state.instance}"]`).waitFor();
  assert.equal(await page.locator(`tr[data-instance="${id}"]`).count(), 0);
  assert.equal((await api('GET', `/instances/${id}`)).status, 404);
  assert.equal((await api('GET', `/instances/events/${state.goneEvent}`)).status, 404, 'its events went with it');
});

test('serves an icon, at /favicon.ico too', async () => {
  const ico = await fetch(`${base}/favicon.ico`);
  assert.equal(ico.status, 200);
  assert.equal(ico.headers.get('content-type'), 'image/x-icon');
  assert.deepEqual([...Buffer.from(await ico.arrayBuffer()).subarray(0, 4)], [0, 0, 1, 0]);
  const linked = await page.evaluate(async () => {
    const res = await fetch(document.querySelector('link[rel="icon"]').href);
    return [res.status, res.headers.get('content-type')];
  });
  assert.deepEqual(linked, [200, 'image/svg+xml']);
});

test('lists inbound requests and reprocesses a failed one after a fixed plugin is dropped in', async () => {
  const probeFile = path.join(pluginDir, 'probe.wasm');
  const probeHash = async () => (await api('GET', '/plugins')).json.find((p) => p.key === 'probe')?.contentHash;
  /** Drops `wasm` in as the probe and waits until the host serves it. */
  async function dropIn(wasm) {
    const before = await probeHash();
    fs.copyFileSync(wasm, `${probeFile}.partial`);
    fs.renameSync(`${probeFile}.partial`, probeFile);
    await eventually('the probe to be reloaded', async () => {
      const now = await probeHash();
      return now && now !== before;
    }, 60000);
  }
  const created = await api('POST', '/instances', {
    element: { key: 'probe' },
    name: 'inbound probe',
    configuration: { 'event.notification.enabled': true, 'event.notification.callback.url': receiverUrl },
  });
  assert.equal(created.status, 200, JSON.stringify(created.json));
  const id = created.json.id;
  const send = (headers) => fetch(`${base}${webhookPath('probe', id)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: '{"ticket":5}',
  });
  const refused = await send({ 'x-probe-action': 'unauthorized', authorization: 'Bearer console-secret-1' });
  assert.equal(refused.status, 401);
  await dropIn(probeBrokenPlugin);
  const failed = await send({ 'x-probe-id': '5' });
  assert.equal(failed.status, 500, 'the broken release traps');

  await page.goto(`${base}/console/inbound?instance=${id}`);
  const failedRow = page.locator('#inbound tbody tr[data-outcome="failed"]');
  const rejectedRow = page.locator('#inbound tbody tr[data-outcome="rejected"]');
  await failedRow.waitFor();
  await rejectedRow.waitFor();
  assert.match(await rejectedRow.innerText(), /401/);
  assert.match(await failedRow.innerText(), /probe trap requested/);
  const listed = await api('GET', `/instances/${id}/inbound`);
  assert.ok(!JSON.stringify(listed.json).includes('console-secret-1'), 'secrets are not listed');
  await shot('inbound');

  // Still broken: reprocessing keeps it failed, with the new error.
  await failedRow.getByRole('button', { name: 'Reprocess' }).click();
  const result = page.locator('#reprocess-result');
  await result.filter({ hasText: 'still fails' }).waitFor();

  // The fixed plugin is dropped in: reprocessing every failed request of
  // the instance accepts it, and its row links to the resulting event.
  await dropIn(probePlugin);
  await page.getByRole('button', { name: 'Reprocess all failed' }).click();
  await result.filter({ hasText: `1 failed request of instance ${id} reprocessed: 1 accepted` }).waitFor();
  const acceptedRow = page.locator('#inbound tbody tr[data-outcome="accepted"]');
  await acceptedRow.waitFor();
  await shot('inbound-reprocessed');
  await acceptedRow.locator('a[href^="/console/events/"]').click();
  await page.waitForURL(/\/console\/events\/[0-9a-f-]+$/);
  const eventId = page.url().split('/').pop();
  await eventually('the reprocessed event to be delivered', async () =>
    (await api('GET', `/instances/events/${eventId}`)).json.status === 'NOTIFIED');
});

test('signs out', async () => {
  await page.goto(`${base}/console/plugins`);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(`${base}/console/login`);
  const status = await page.evaluate(async () => (await fetch('/plugins')).status);
  assert.equal(status, 401);
  await page.goto(`${base}/console/events`);
  assert.match(page.url(), /\/console\/login$/);
  assert.deepEqual(pageErrors, [], 'no script errors on any page');
});
