// One instance: its summary (with its vendor subscription and a button
// that runs it again), the events switch and a test notification with
// what the receiver answered, rotation of the signature
// key, the configuration form (the element's describe() keys and the event
// settings: delivery order and rate limit too; only what changed is sent,
// with PATCH, an emptied field as null,
// which removes the key) and deletion behind a confirmation dialog.
// Secrets come back from the API redacted: their fields start empty and
// are sent only when something is typed.
'use strict';

(() => {
  const { api, el, when, showError, webhookUrl, copy, announce } = pb;
  const id = decodeURIComponent(location.pathname.split('/').pop());
  const path = `/instances/${encodeURIComponent(id)}`;
  const $ = (name) => document.getElementById(name);
  const REDACTED = '********';
  const SIGNATURE_KEY = 'event.notification.signature.key';
  const GRACE = "the host's key grace period (key_grace_secs, 24 hours unless configured otherwise)";
  /** Configuration keys this page edits with dedicated controls. */
  const EVENT_KEYS = {
    callback: 'event.notification.callback.url',
    format: 'event.notification.format',
    vendorType: 'event.vendor.type',
    interval: 'event.poller.refresh_interval',
    poller: 'event.poller.configuration',
    objects: 'event.objects',
    types: 'event.types',
    ordered: 'event.notification.ordered',
    rateLimit: 'event.notification.rate_limit',
  };
  const DEDICATED = new Set([...Object.values(EVENT_KEYS), 'event.notification.enabled', SIGNATURE_KEY]);
  const edit = $('edit');
  let instance = null;
  let element = null;
  /** What each form field showed when the instance was last loaded, by field id. */
  let baseline = {};

  const config = () => instance.configuration || {};
  /** A secret value as the API shows it: the placeholder, or an object of
   *  placeholders (the extra delivery headers: names shown, values not). */
  const redacted = (v) => v === REDACTED
    || (v !== null && typeof v === 'object' && Object.values(v).length > 0
      && Object.values(v).every((x) => x === REDACTED));
  const hasKey = () => config()[SIGNATURE_KEY] !== undefined && config()[SIGNATURE_KEY] !== null;
  const polled = () => config()[EVENT_KEYS.vendorType] === 'polling';

  function item(term, ...value) {
    return [el('dt', {}, term), el('dd', {}, ...value)];
  }

  function webhookItem() {
    if (polled()) return item('Vendor webhook URL', el('span', { class: 'hint' }, 'None: plugboard polls this vendor.'));
    const url = webhookUrl(instance);
    const button = el('button', { type: 'button', class: 'small' }, 'Copy');
    button.addEventListener('click', () => copy(url, button));
    return item('Vendor webhook URL', el('code', { id: 'webhook-url' }, url), ' ', button);
  }

  const SUBSCRIPTION_WORDS = {
    subscribed: 'Subscribed',
    failed: 'Failed',
    not_subscribed: 'Not subscribed',
    unsupported: 'Not supported by the element',
  };

  /** The vendor subscription: its state, its message, and "Subscribe again". */
  function subscriptionItem() {
    const sub = instance.subscription || { status: 'unsupported' };
    const parts = [el('span', { id: 'subscription-status', class: `status status-${sub.status}` }, SUBSCRIPTION_WORDS[sub.status] || sub.status)];
    if (sub.callbackUrl) parts.push(el('span', { class: 'hint' }, ` at ${sub.callbackUrl}`));
    if (sub.message) parts.push(el('p', { id: 'subscription-message', class: 'hint' }, sub.message));
    if (sub.status !== 'unsupported') {
      const button = el('button', { type: 'button', class: 'small', id: 'resubscribe' }, 'Subscribe again');
      const error = el('p', { id: 'resubscribe-error', class: 'error', role: 'alert', hidden: true });
      button.addEventListener('click', () => resubscribe(button, error));
      parts.push(' ', button, error);
    }
    return item('Vendor subscription', ...parts);
  }

  async function resubscribe(button, error) {
    button.disabled = true;
    try {
      await api('POST', `${path}/subscription`);
      instance = await api('GET', path);
      renderSummary();
      announce('Subscription run again');
    } catch (err) {
      try {
        instance = await api('GET', path);
        renderSummary();
      } catch {
        // keep what is shown
      }
      const shown = document.getElementById('resubscribe-error') || error;
      showError(shown, err);
    } finally {
      button.disabled = false;
    }
  }

  function renderSummary() {
    $('instance-heading').textContent = `Instance ${instance.id}: ${instance.name}`;
    document.title = `Instance ${instance.id} · plugboard`;
    $('instance-events').href = `/console/events?instance=${instance.id}`;
    $('summary').replaceChildren(
      ...item('Element', instance.element.key, element ? '' : el('span', { class: 'hint' }, ' (not loaded)')),
      ...webhookItem(),
      ...subscriptionItem(),
      ...item('Tags', (instance.tags || []).map((t) => el('span', { class: 'tag' }, t))),
      ...item('Delivery', instance.deliveryPaused
        ? `paused: ${instance.deliveryPaused} (switching events on again resumes it)`
        : 'running'),
      ...item('Created', when(instance.createdDate)),
      ...item('Updated', when(instance.updatedDate)));
  }

  function renderEvents() {
    $('events-switch').checked = instance.eventsEnabled;
    $('events-state').textContent = instance.eventsEnabled
      ? `On: notifications go to ${config()[EVENT_KEYS.callback] || '—'}.`
      : 'Off: the vendor\'s webhooks for this instance are refused and it is not polled.';
  }

  function renderKey() {
    $('key-state').textContent = hasKey()
      ? 'Set. Every notification is signed with it (the key itself is never shown again).'
      : 'Not set: notifications go out unsigned.';
    $('rotate-open').textContent = hasKey() ? 'Rotate signature key' : 'Set a signature key';
    $('rotate-grace').textContent = hasKey()
      ? `The current key keeps signing, next to the new one, for ${GRACE}, so your receiver can switch over.`
      : 'Notifications are signed with it from the next delivery on.';
  }

  /** The element's keys (required first) and any other stored key, as fields. */
  function elementKeys() {
    const declared = element ? [...element.configKeys].sort((a, b) => Number(b.required) - Number(a.required)) : [];
    const names = new Set(declared.map((k) => k.name));
    const others = Object.keys(config())
      .filter((k) => !names.has(k) && !DEDICATED.has(k))
      .sort()
      .map((name) => ({ name, required: false, secret: redacted(config()[name]), description: 'Not declared by the element.' }));
    return [...declared, ...others];
  }

  function renderForm() {
    const keys = elementKeys();
    $('element-legend').textContent = element ? `${element.name} configuration` : `${instance.element.key} configuration`;
    $('element-keys').replaceChildren(...keys.map((key, i) => forms.keyField(key, i, {
      value: config()[key.name],
      secretSet: config()[key.name] !== undefined && config()[key.name] !== null,
    })));
    const type = config()[EVENT_KEYS.vendorType] === 'polling' ? 'polling' : 'webhooks';
    forms.vendorTypes($('vendor-type'), element ? element.modes || [] : [type], type);
    $('name').value = instance.name;
    $('tags').value = (instance.tags || []).join(', ');
    $('callback-url').value = forms.text(config()[EVENT_KEYS.callback]);
    $('format').value = config()[EVENT_KEYS.format] || 'cloudelements';
    $('event-objects').value = listText(config()[EVENT_KEYS.objects]);
    $('event-types').value = listText(config()[EVENT_KEYS.types]);
    $('ordered').value = String(config()[EVENT_KEYS.ordered]) === 'true' ? 'true' : '';
    $('rate-limit').value = forms.text(config()[EVENT_KEYS.rateLimit]);
    $('refresh-interval').value = forms.text(config()[EVENT_KEYS.interval]);
    $('poller-configuration').value = forms.text(config()[EVENT_KEYS.poller]);
    baseline = {};
    for (const field of fields()) baseline[field.id] = current(field);
    syncPolling();
  }

  /** An event filter key as its field shows it: a stored list comma-separated. */
  function listText(value) {
    return Array.isArray(value) ? value.join(', ') : forms.text(value);
  }

  function syncPolling() {
    const mode = edit.querySelector('input[name="vendor-type"]:checked');
    $('polling-settings').hidden = !mode || mode.value !== 'polling';
  }

  /** Every input that maps to one configuration key, named in its data-key. */
  function fields() {
    return [...edit.querySelectorAll('[data-key]')];
  }

  function current(field) {
    return field.value.trim();
  }

  /** The PATCH body for what the form changed, or null when nothing did. */
  function changes() {
    const configuration = {};
    for (const field of fields()) {
      const value = current(field);
      if (field.dataset.secret) {
        if (value) configuration[field.dataset.key] = value;
      } else if (value !== baseline[field.id]) {
        configuration[field.dataset.key] = value === '' ? null : parsed(field, value);
      }
    }
    const mode = edit.querySelector('input[name="vendor-type"]:checked');
    const type = config()[EVENT_KEYS.vendorType] === 'polling' ? 'polling' : 'webhooks';
    if (mode && mode.value !== type) configuration[EVENT_KEYS.vendorType] = mode.value;
    const body = {};
    if (Object.keys(configuration).length) body.configuration = configuration;
    const name = $('name').value.trim();
    if (name && name !== instance.name) body.name = name;
    const tags = $('tags').value.split(',').map((t) => t.trim()).filter(Boolean);
    if (tags.join(',') !== (instance.tags || []).join(',')) body.tags = tags;
    return Object.keys(body).length ? body : null;
  }

  /** The poller configuration as JSON when it parses (the API names the field when it does not). */
  function parsed(field, value) {
    if (field.dataset.key !== EVENT_KEYS.poller) return value;
    try {
      return JSON.parse(value);
    } catch {
      return value;
    }
  }

  function render() {
    renderSummary();
    renderEvents();
    renderKey();
    renderForm();
    $('instance').hidden = false;
  }

  async function save(event) {
    event.preventDefault();
    forms.clearErrors(edit, $('edit-error'));
    const saved = $('edit-saved');
    const body = changes();
    if (!body) {
      saved.textContent = 'Nothing changed.';
      return;
    }
    const button = edit.querySelector('button[type="submit"]');
    button.disabled = true;
    saved.textContent = '';
    try {
      instance = await api('PATCH', path, body);
      render();
      saved.textContent = `Saved at ${new Date().toLocaleTimeString()}.`;
    } catch (err) {
      forms.showFieldError(edit, $('edit-error'), err, (target) => {
        if (target.closest('#polling-settings')) $('polling-settings').hidden = false;
      });
    } finally {
      button.disabled = false;
    }
  }

  /** Sends a test notification and says what the receiver answered. */
  async function sendTest() {
    const button = $('test-send');
    const result = $('test-result');
    button.disabled = true;
    result.hidden = true;
    result.className = '';
    try {
      const t = await api('POST', `${path}/test-notification`);
      const said = t.statusCode ? `answered ${t.statusCode}` : `did not answer (${t.error})`;
      const body = t.responseBody ? `: “${t.responseBody}”` : '';
      result.textContent = `${t.delivered ? 'Delivered' : 'Not delivered'}: ${t.url} ${said} in ${t.latencyMs} ms${body} (test event ${t.eventId}).`;
      result.className = t.delivered ? 'ok' : 'error';
    } catch (err) {
      result.textContent = err.message || String(err);
      result.className = 'error';
    } finally {
      result.hidden = false;
      button.disabled = false;
    }
  }

  async function switchEvents() {
    const toggle = $('events-switch');
    const wanted = toggle.checked;
    toggle.disabled = true;
    showError($('events-error'), null);
    forms.clearErrors(edit, $('edit-error'));
    try {
      instance = await api('PUT', `${path}/events/enabled`, { enabled: wanted });
      renderSummary();
      renderEvents();
      announce(`Events turned ${wanted ? 'on' : 'off'}`);
    } catch (err) {
      toggle.checked = !wanted;
      const inForm = err.field && edit.querySelector(`[data-field="${CSS.escape(err.field)}"]`);
      showError($('events-error'), inForm
        ? new Error(`Events stay ${wanted ? 'off' : 'on'}: ${err.message}. Fix it in the configuration below and save first.`)
        : err);
    } finally {
      toggle.disabled = false;
    }
  }

  /** A strong random key: 32 bytes from the browser's generator, as a Standard Webhooks whsec_ secret. */
  function generatedKey() {
    const bytes = crypto.getRandomValues(new Uint8Array(32));
    return `whsec_${btoa(String.fromCharCode(...bytes))}`;
  }

  function openRotation(open) {
    $('rotate').hidden = !open;
    $('rotate-open').hidden = open;
    $('typed-key').value = '';
    forms.clearErrors($('rotate'), $('rotate-error'));
    syncKeySource();
    if (open) $('rotate').querySelector('input[name="key-source"]:checked').focus();
  }

  function syncKeySource() {
    const typed = $('rotate').querySelector('input[name="key-source"]:checked').value === 'typed';
    $('typed-key-field').hidden = !typed;
  }

  async function rotate(event) {
    event.preventDefault();
    const form = $('rotate');
    forms.clearErrors(form, $('rotate-error'));
    const typed = form.querySelector('input[name="key-source"]:checked').value === 'typed';
    const key = typed ? $('typed-key').value.trim() : generatedKey();
    if (!key) {
      forms.showFieldError(form, $('rotate-error'), {
        field: `configuration.${SIGNATURE_KEY}`,
        message: 'Type a key, or choose to generate one.',
      });
      return;
    }
    const hadKey = hasKey();
    $('rotate-submit').disabled = true;
    try {
      instance = await api('PATCH', path, { configuration: { [SIGNATURE_KEY]: key } });
    } catch (err) {
      forms.showFieldError(form, $('rotate-error'), err);
      return;
    } finally {
      $('rotate-submit').disabled = false;
    }
    openRotation(false);
    renderSummary();
    renderKey();
    $('new-key').value = key;
    $('rotated-grace').textContent = hadKey
      ? `The previous key keeps signing too, for ${GRACE}: until then each notification carries both signatures, the new one first. Give this key to your receiver now; it is not shown again.`
      : 'Every notification is signed with it from now on. Give it to your receiver now; it is not shown again.';
    $('rotated').hidden = false;
    $('rotated').focus();
    announce('Signature key replaced');
  }

  function closeRotated() {
    $('new-key').value = '';
    $('rotated').hidden = true;
    $('rotate-open').focus();
  }

  function confirmDelete() {
    $('confirm-delete-heading').textContent = `Delete instance ${instance.id}?`;
    $('confirm-delete-text').textContent = `"${instance.name}" (${instance.element.key}), its event log and its undelivered notifications will be deleted, and its webhook URL stops working.`;
    $('delete-confirm').textContent = `Delete instance ${instance.id}`;
    showError($('delete-error'), null);
    $('confirm-delete').showModal();
  }

  async function deleteInstance() {
    $('delete-confirm').disabled = true;
    try {
      const answer = await api('DELETE', path);
      const left = answer && answer.unsubscribed === false ? `&left=${encodeURIComponent(answer.leftAtVendor)}` : '';
      location.assign(`/console/instances?deleted=${encodeURIComponent(instance.id)}${left}`);
    } catch (err) {
      showError($('delete-error'), err);
    } finally {
      $('delete-confirm').disabled = false;
    }
  }

  async function start() {
    try {
      instance = await api('GET', path);
    } catch (err) {
      showError($('load-error'), err);
      return;
    }
    try {
      element = (await forms.elements()).get(instance.element.key) || null;
    } catch (err) {
      showError($('load-error'), err);
    }
    render();
  }

  edit.addEventListener('submit', save);
  $('vendor-type').addEventListener('change', syncPolling);
  $('events-switch').addEventListener('change', switchEvents);
  $('test-send').addEventListener('click', sendTest);
  $('rotate-open').addEventListener('click', () => openRotation(true));
  $('rotate-cancel').addEventListener('click', () => {
    openRotation(false);
    $('rotate-open').focus();
  });
  $('rotate').addEventListener('change', syncKeySource);
  $('rotate').addEventListener('submit', rotate);
  $('copy-key').addEventListener('click', (e) => copy($('new-key').value, e.currentTarget));
  $('rotated-done').addEventListener('click', closeRotated);
  $('delete-open').addEventListener('click', confirmDelete);
  $('delete-confirm').addEventListener('click', deleteInstance);
  start();
})();
