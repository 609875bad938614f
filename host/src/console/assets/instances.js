// The instances page: every element instance with its tags, whether its
// events are on, and the URL its vendor calls; events can be switched on
// and off here, and each instance opens for editing. After a deletion
// (?deleted=id) it says which instance went (and, with &left=, what its
// failed vendor unsubscription left at the vendor).
'use strict';

(() => {
  const { api, el, showError, webhookUrl, copy, announce } = pb;
  const table = document.getElementById('instances');
  const body = table.querySelector('tbody');
  const empty = document.getElementById('empty');
  const loadError = document.getElementById('load-error');

  function eventsCell(instance) {
    const state = instance.eventsEnabled ? 'On' : 'Off';
    const paused = instance.deliveryPaused ? el('span', { class: 'hint' }, ' (delivery paused)') : null;
    return el('td', {}, state, paused);
  }

  function webhookCell(instance) {
    const type = instance.configuration['event.vendor.type'];
    if (type === 'polling') return el('td', { class: 'hint' }, 'Polled');
    const url = webhookUrl(instance);
    const button = el('button', {
      type: 'button',
      class: 'small',
      'aria-label': `Copy the webhook URL of instance ${instance.id}`,
    }, 'Copy');
    button.addEventListener('click', () => copy(url, button));
    return el('td', { class: 'url' }, el('code', {}, url), ' ', button);
  }

  function actionsCell(instance) {
    const toggle = el('button', { type: 'button', class: 'small' },
      instance.eventsEnabled ? 'Turn events off' : 'Turn events on');
    toggle.addEventListener('click', async () => {
      try {
        await api('PUT', `/instances/${instance.id}/events/enabled`, { enabled: !instance.eventsEnabled });
        announce(`Events of instance ${instance.id} turned ${instance.eventsEnabled ? 'off' : 'on'}`);
        await load();
      } catch (err) {
        showError(loadError, err);
      }
    });
    return el('td', { class: 'actions' },
      el('a', { href: `/console/instances/${instance.id}`, 'aria-label': `Edit instance ${instance.id}` }, 'Edit'), ' ',
      el('a', { href: `/console/events?instance=${instance.id}` }, 'Events'), ' ', toggle);
  }

  function row(instance) {
    return el('tr', { 'data-instance': instance.id },
      el('td', {}, instance.id),
      el('td', {}, el('a', { href: `/console/instances/${instance.id}` }, instance.name)),
      el('td', {}, instance.element.key),
      el('td', {}, (instance.tags || []).map((t) => el('span', { class: 'tag' }, t))),
      eventsCell(instance),
      webhookCell(instance),
      actionsCell(instance));
  }

  async function load() {
    try {
      const instances = await api('GET', '/instances');
      body.replaceChildren(...instances.map(row));
      table.hidden = instances.length === 0;
      empty.hidden = instances.length !== 0;
      showError(loadError, null);
    } catch (err) {
      showError(loadError, err);
    }
  }

  const deleted = new URLSearchParams(location.search).get('deleted');
  if (deleted) {
    const notice = document.getElementById('notice');
    const left = new URLSearchParams(location.search).get('left');
    notice.textContent = left
      ? `Instance ${deleted} deleted, but removing its webhook at the vendor failed: ${left}`
      : `Instance ${deleted} deleted.`;
    notice.hidden = false;
    history.replaceState(null, '', location.pathname);
  }
  load();
})();
