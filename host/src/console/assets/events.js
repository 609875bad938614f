// The event log: notifications newest first, overall or for one instance,
// filtered by status, element, object type and id, event type and time,
// refreshed every 2 s while only the newest page is shown; and redelivery
// of every dead-lettered notification.
'use strict';

(() => {
  const { api, el, when, status, showError, every, cursorList } = pb;
  const body = document.querySelector('#events tbody');
  const empty = document.getElementById('empty');
  const older = document.getElementById('older');
  const loadError = document.getElementById('load-error');
  const instanceSelect = document.getElementById('filter-instance');
  const statusSelect = document.getElementById('filter-status');
  // Search fields, by the API's parameter names; dates are local times.
  const searchFields = ['elementKey', 'objectType', 'objectId', 'eventType', 'from', 'to']
    .map((name) => document.getElementById(`filter-${name}`));
  const params = new URLSearchParams(location.search);
  let instances = [];

  function summary(events) {
    if (!events || events.length === 0) return 'no events';
    const [first] = events;
    const more = events.length > 1 ? ` and ${events.length - 1} more` : '';
    return `${first.eventType} ${first.objectType} ${first.objectId}${more}`;
  }

  function row(e) {
    return el('tr', { 'data-event': e.eventId },
      el('td', {}, when(e.createdDate)),
      el('td', {}, e.instanceId),
      el('td', {}, e.elementKey || '—'),
      el('td', {}, el('a', { href: `/console/events/${encodeURIComponent(e.eventId)}` }, summary(e.events))),
      el('td', {}, status(e.status)),
      el('td', {}, e.attempts),
      el('td', {}, e.lastStatusCode ?? (e.lastError ? 'error' : '—')));
  }

  function query(cursor) {
    const q = new URLSearchParams({ pageSize: '50' });
    if (statusSelect.value) q.set('status', statusSelect.value);
    for (const field of searchFields) {
      const value = field.value.trim();
      if (!value) continue;
      q.set(field.name, field.type === 'datetime-local' ? new Date(value).toISOString() : value);
    }
    if (cursor) q.set('nextPage', cursor);
    const scope = instanceSelect.value ? `/instances/${encodeURIComponent(instanceSelect.value)}/events` : '/instances/events';
    return `${scope}?${q}`;
  }

  const list = cursorList({
    fetch: (cursor) => api('GET', query(cursor)),
    items: (page) => page.events,
    row,
    body,
    older,
    empty,
    loadError,
  });

  /** What a redelivery queued, in words; `scope` names the instance, if one was chosen. */
  function queuedText(scheduled, scope) {
    if (scheduled === 0) return `No dead-lettered events${scope} to redeliver.`;
    return `${scheduled} dead-lettered event${scheduled === 1 ? '' : 's'}${scope} queued for redelivery.`;
  }

  async function redeliverDead() {
    const targets = instanceSelect.value ? [instanceSelect.value] : instances.map((i) => i.id);
    const scope = instanceSelect.value ? ` of instance ${instanceSelect.value}` : '';
    const button = document.getElementById('redeliver-dead');
    const result = document.getElementById('redeliver-result');
    button.disabled = true;
    result.hidden = true;
    try {
      let scheduled = 0;
      for (const id of targets) {
        const answer = await api('POST', `/instances/${encodeURIComponent(id)}/events/redeliver`);
        scheduled += answer.scheduled;
      }
      result.textContent = queuedText(scheduled, scope);
      result.hidden = false;
      showError(loadError, null);
      run();
    } catch (err) {
      showError(loadError, err);
    } finally {
      button.disabled = false;
    }
  }

  function filtersChanged() {
    const q = new URLSearchParams();
    if (instanceSelect.value) q.set('instance', instanceSelect.value);
    if (statusSelect.value) q.set('status', statusSelect.value);
    for (const field of searchFields) {
      if (field.value.trim()) q.set(field.name, field.value.trim());
    }
    history.replaceState(null, '', q.toString() ? `?${q}` : location.pathname);
    list.reset();
    run();
  }

  async function loadInstances() {
    try {
      instances = await api('GET', '/instances');
    } catch (err) {
      showError(loadError, err);
    }
    instanceSelect.append(...instances.map((i) => el('option', { value: i.id }, `#${i.id} ${i.name}`)));
    instanceSelect.value = params.get('instance') || '';
  }

  statusSelect.value = params.get('status') || '';
  for (const field of searchFields) {
    field.value = params.get(field.name) || '';
    field.addEventListener('change', filtersChanged);
  }
  instanceSelect.addEventListener('change', filtersChanged);
  statusSelect.addEventListener('change', filtersChanged);
  document.getElementById('filters').addEventListener('submit', (e) => e.preventDefault());
  older.addEventListener('click', list.older);
  document.getElementById('redeliver-dead').addEventListener('click', redeliverDead);
  let run = () => {};
  loadInstances().then(() => { run = every(2000, list.refresh); });
})();
