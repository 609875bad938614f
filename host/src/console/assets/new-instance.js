// The create-instance form, generated from the chosen element's describe()
// (GET /plugins): required keys first, optional ones on demand, secrets as
// password fields; then the event settings and tags. While events are on
// and the optional fields hidden, a hint beside the callback URL points at
// the signature key among them. The server validates; its 400 names the
// field, and the message is shown beside that field.
'use strict';

(() => {
  const { api, el, showError, webhookUrl, copy, announce } = pb;
  const form = document.getElementById('create');
  const formError = document.getElementById('form-error');
  const select = document.getElementById('element');
  const keysBox = document.getElementById('element-keys');
  const enabled = document.getElementById('events-enabled');
  const eventSettings = document.getElementById('event-settings');
  const vendorType = document.getElementById('vendor-type');
  const polling = document.getElementById('polling-settings');
  const toggleOptional = document.getElementById('toggle-optional');
  const signingHint = document.getElementById('signing-hint');
  const value = (id) => document.getElementById(id).value.trim();
  let elements = new Map();
  let showOptional = false;

  function chooseElement() {
    const element = elements.get(select.value);
    if (!element) return;
    const keys = [...element.configKeys].sort((a, b) => Number(b.required) - Number(a.required));
    keysBox.replaceChildren(...keys.map((key, i) => forms.keyField(key, i, { hidden: !key.required && !showOptional })));
    forms.vendorTypes(vendorType, element.modes || []);
    syncVisibility();
  }

  function syncVisibility() {
    eventSettings.hidden = !enabled.checked;
    const mode = form.querySelector('input[name="vendor-type"]:checked');
    polling.hidden = !mode || mode.value !== 'polling';
    for (const node of form.querySelectorAll('.optional')) node.hidden = !showOptional;
    signingHint.hidden = showOptional;
    toggleOptional.textContent = showOptional ? 'Hide optional fields' : 'Show optional fields';
    toggleOptional.setAttribute('aria-expanded', String(showOptional));
  }

  function revealOptional(target) {
    if (target.closest('.optional')) {
      showOptional = true;
      syncVisibility();
    }
  }

  function configuration() {
    const config = {};
    for (const input of keysBox.querySelectorAll('input[data-key]')) {
      if (input.value.trim() !== '') config[input.dataset.key] = input.value.trim();
    }
    config['event.notification.enabled'] = enabled.checked;
    if (!enabled.checked) return config;
    const mode = form.querySelector('input[name="vendor-type"]:checked');
    if (mode) config['event.vendor.type'] = mode.value;
    if (value('callback-url')) config['event.notification.callback.url'] = value('callback-url');
    if (value('signature-key')) config['event.notification.signature.key'] = value('signature-key');
    if (mode && mode.value === 'polling') {
      if (value('refresh-interval')) config['event.poller.refresh_interval'] = value('refresh-interval');
      const text = value('poller-configuration');
      if (text) {
        try {
          config['event.poller.configuration'] = JSON.parse(text);
        } catch {
          config['event.poller.configuration'] = text;
        }
      }
    }
    return config;
  }

  function created(instance) {
    form.hidden = true;
    const section = document.getElementById('created');
    const webhook = document.getElementById('webhook-url');
    const polled = instance.configuration['event.vendor.type'] === 'polling';
    webhook.value = polled ? 'Not needed: plugboard polls this vendor.' : webhookUrl(instance);
    document.getElementById('instance-token').value = instance.token || '';
    document.getElementById('created-heading').textContent = `Instance ${instance.id} created`;
    document.getElementById('created-events').href = `/console/events?instance=${instance.id}`;
    document.getElementById('created-settings').href = `/console/instances/${instance.id}`;
    section.hidden = false;
    section.focus();
    announce(`Instance ${instance.id} created`);
  }

  async function submit(event) {
    event.preventDefault();
    forms.clearErrors(form, formError);
    const tags = value('tags').split(',').map((t) => t.trim()).filter(Boolean);
    const body = { element: { key: select.value }, configuration: configuration(), tags };
    if (value('name')) body.name = value('name');
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      created(await api('POST', '/instances', body));
    } catch (err) {
      forms.showFieldError(form, formError, err, revealOptional);
    } finally {
      button.disabled = false;
    }
  }

  async function start() {
    try {
      elements = await forms.elements();
    } catch (err) {
      showError(formError, err);
      return;
    }
    if (elements.size === 0) {
      showError(formError, new Error('No element plugin is loaded: drop one into the plugin folder first.'));
      return;
    }
    const sorted = [...elements.values()].sort((a, b) => a.name.localeCompare(b.name));
    select.replaceChildren(...sorted.map((e) => el('option', { value: e.key }, `${e.name} (${e.key})`)));
    const wanted = new URLSearchParams(location.search).get('element');
    if (wanted && elements.has(wanted)) select.value = wanted;
    form.hidden = false;
    chooseElement();
  }

  select.addEventListener('change', chooseElement);
  enabled.addEventListener('change', syncVisibility);
  vendorType.addEventListener('change', syncVisibility);
  toggleOptional.addEventListener('click', () => {
    showOptional = !showOptional;
    syncVisibility();
  });
  document.getElementById('show-signature-key').addEventListener('click', () => {
    showOptional = true;
    syncVisibility();
    document.getElementById('signature-key').focus();
  });
  document.getElementById('copy-webhook').addEventListener('click', (e) => copy(value('webhook-url'), e.currentTarget));
  document.getElementById('copy-token').addEventListener('click', (e) => copy(value('instance-token'), e.currentTarget));
  form.addEventListener('submit', submit);
  start();
})();
