// Helpers shared by the two forms that write an instance's configuration
// (the create form and the instance page): one field per configuration key
// of the element's describe(), the vendor type choice, and the API's
// validation error shown beside the field it names (every input carries the
// API's name for it in data-field).
'use strict';

const forms = (() => {
  const { el, showError } = pb;

  /** Text with `backticked` parts shown as code, as element descriptions write them. */
  function withCode(text) {
    return text.split('`').map((part, i) => (i % 2 === 1 ? el('code', {}, part) : part));
  }

  /**
   * A labelled input for one configuration key (`{name, description,
   * required, secret}`). Secrets are password fields and never pre-filled;
   * `options.value` pre-fills any other key; `options.secretSet` says a
   * secret already has a value, kept unless something is typed;
   * `options.hidden` hides an optional key until optional fields are shown.
   */
  function keyField(key, index, options = {}) {
    const id = `key-${index}`;
    const hints = [];
    if (key.secret && options.secretSet) {
      hints.push(el('p', { class: 'hint', id: `${id}-kept` }, 'Set. It stays as it is unless you type a new value.'));
    }
    if (key.description) hints.push(el('p', { class: 'hint', id: `${id}-hint` }, withCode(key.description)));
    const value = !key.secret && options.value !== undefined && options.value !== null ? text(options.value) : null;
    return el('div', { class: key.required ? 'field' : 'field optional', hidden: Boolean(options.hidden) },
      el('label', { for: id }, el('code', {}, key.name), key.required ? el('span', { class: 'required' }, ' (required)') : null),
      el('input', {
        id,
        type: key.secret ? 'password' : 'text',
        autocomplete: key.secret ? 'new-password' : 'off',
        value,
        'data-key': key.name,
        'data-secret': key.secret ? 'true' : null,
        'data-field': `configuration.${key.name}`,
        'aria-required': key.required ? 'true' : null,
        'aria-describedby': hints.length ? hints.map((h) => h.id).join(' ') : null,
      }),
      hints);
  }

  /** A configuration value as a form shows it: strings as they are, anything else as JSON. */
  function text(value) {
    if (value === undefined || value === null) return '';
    return typeof value === 'string' ? value : JSON.stringify(value, null, 2);
  }

  /** Fills `group` with one radio per vendor type the element supports; `current` is checked. */
  function vendorTypes(group, modes, current) {
    const choices = modes.length ? modes : ['webhooks'];
    const checked = choices.includes(current) ? current : choices[0];
    group.replaceChildren(...choices.map((mode) => el('label', { class: 'choice' },
      el('input', { type: 'radio', name: 'vendor-type', value: mode, checked: mode === checked }),
      mode === 'webhooks' ? ' Webhooks (the vendor calls plugboard)' : ' Polling (plugboard calls the vendor)')));
  }

  /** Removes every error `showFieldError` put on `form`, and the general one. */
  function clearErrors(form, general) {
    showError(general, null);
    for (const node of form.querySelectorAll('.field-error')) node.remove();
    for (const node of form.querySelectorAll('[aria-invalid]')) {
      node.removeAttribute('aria-invalid');
      const described = (node.getAttribute('aria-describedby') || '').split(' ').filter((id) => id && !id.endsWith('-error'));
      if (described.length) node.setAttribute('aria-describedby', described.join(' '));
      else node.removeAttribute('aria-describedby');
    }
  }

  /**
   * Shows an API failure beside the field its `field` names and moves focus
   * there; `reveal(target)` is called first so a hidden field can be shown.
   * A failure naming no field of the form goes to `general`.
   */
  function showFieldError(form, general, err, reveal) {
    const target = err.field && [...form.querySelectorAll('[data-field]')].find((n) => n.dataset.field === err.field);
    if (!target) {
      showError(general, err);
      return;
    }
    if (reveal) reveal(target);
    const id = `${target.id}-error`;
    const message = err.message.startsWith(`${err.field}: `) ? err.message.slice(err.field.length + 2) : err.message;
    (target.closest('.field') || target).append(el('p', { class: 'error field-error', id }, message));
    target.setAttribute('aria-invalid', 'true');
    const described = target.getAttribute('aria-describedby');
    target.setAttribute('aria-describedby', described ? `${id} ${described}` : id);
    const focusable = target.matches('input, select, textarea') ? target : target.querySelector('input');
    focusable?.focus();
  }

  /** The loaded element plugins by key, from GET /plugins. */
  async function elements() {
    const plugins = await pb.api('GET', '/plugins');
    return new Map(plugins.filter((p) => p.element).map((p) => [p.element.key, p.element]));
  }

  return { withCode, keyField, text, vendorTypes, clearErrors, showFieldError, elements };
})();
