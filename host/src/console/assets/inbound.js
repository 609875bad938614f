// The inbound log: every request vendors sent, newest first, overall or for
// one instance, filtered by outcome, HTTP status and time, refreshed every
// 2 s while only the newest page is shown; accepted ones link to their
// events, failed ones can be reprocessed one by one or all at once for the
// chosen instance. Entries dropped beyond the log's caps are counted above.
'use strict';

(() => {
  const { api, el, when, status, showError, every, announce, cursorList } = pb;
  const body = document.querySelector('#inbound tbody');
  const empty = document.getElementById('empty');
  const older = document.getElementById('older');
  const loadError = document.getElementById('load-error');
  const result = document.getElementById('reprocess-result');
  const dropped = document.getElementById('dropped');
  const reprocessAll = document.getElementById('reprocess-all');
  const instanceSelect = document.getElementById('filter-instance');
  const fields = ['outcome', 'status', 'from', 'to'].map((name) => document.getElementById(`filter-${name}`));
  const params = new URLSearchParams(location.search);

  function events(entry) {
    if (entry.eventIds.length === 0) return '—';
    const links = entry.eventIds.map((id) => el('a', { href: `/console/events/${encodeURIComponent(id)}` }, id.slice(0, 8)));
    return el('span', { class: 'event-links' }, ...links.flatMap((a, i) => (i ? [' ', a] : [a])));
  }

  function actions(entry) {
    if (!entry.reprocessable) return '';
    return el('button', { type: 'button', class: 'reprocess', 'data-receipt': entry.id }, 'Reprocess');
  }

  function row(e) {
    return el('tr', { 'data-entry': e.id, 'data-outcome': e.outcome },
      el('td', {}, when(e.receivedDate)),
      el('td', {}, el('a', { href: `/console/instances/${e.instanceId}` }, `#${e.instanceId}`)),
      el('td', {}, status(e.outcome)),
      el('td', {}, e.status ?? '—'),
      el('td', { class: 'reason' }, e.reason || '—'),
      el('td', {}, `${e.method} ${e.path}`),
      el('td', {}, events(e)),
      el('td', {}, actions(e)));
  }

  function query(cursor) {
    const q = new URLSearchParams({ pageSize: '50' });
    for (const field of fields) {
      const value = field.value.trim();
      if (!value) continue;
      q.set(field.name, field.type === 'datetime-local' ? new Date(value).toISOString() : value);
    }
    if (cursor) q.set('nextPage', cursor);
    const scope = instanceSelect.value ? `/instances/${encodeURIComponent(instanceSelect.value)}/inbound` : '/instances/inbound';
    return `${scope}?${q}`;
  }

  function showDropped(counts) {
    const total = counts.reduce((n, c) => n + c.dropped, 0);
    dropped.hidden = total === 0;
    dropped.textContent = total === 0 ? '' :
      `${total} rejected request${total === 1 ? ' was' : 's were'} not kept: the log was at its cap (latest ${new Date(counts.map((c) => c.lastDroppedDate).sort().pop()).toLocaleString()}).`;
  }

  const list = cursorList({
    fetch: (cursor) => api('GET', query(cursor)),
    items: (page) => page.entries,
    row,
    body,
    older,
    empty,
    loadError,
    onFirst: (page) => showDropped(page.dropped),
  });

  function say(text) {
    result.textContent = text;
    result.hidden = false;
    announce(text);
    list.reset();
    run();
  }

  /** One receipt's outcome, in words. */
  function outcomeText(r) {
    switch (r.outcome) {
      case 'accepted': return `Receipt ${r.receiptId} reprocessed: accepted with ${r.eventIds.length} event${r.eventIds.length === 1 ? '' : 's'}.`;
      case 'duplicate': return `Receipt ${r.receiptId} reprocessed: a duplicate of receipt ${r.duplicateOf}.`;
      case 'failed': return `Receipt ${r.receiptId} still fails: ${r.error}`;
      default: return `Receipt ${r.receiptId} was no longer failed.`;
    }
  }

  async function reprocessOne(button) {
    button.disabled = true;
    try {
      const answer = await api('POST', `/instances/inbound/${encodeURIComponent(button.dataset.receipt)}/reprocess`);
      say(outcomeText(answer));
      showError(loadError, null);
    } catch (err) {
      showError(loadError, err);
      button.disabled = false;
    }
  }

  async function reprocessInstance() {
    reprocessAll.disabled = true;
    try {
      const s = await api('POST', `/instances/${encodeURIComponent(instanceSelect.value)}/inbound/reprocess`);
      say(s.reprocessed === 0
        ? `No failed requests of instance ${s.instanceId} to reprocess.`
        : `${s.reprocessed} failed request${s.reprocessed === 1 ? '' : 's'} of instance ${s.instanceId} reprocessed: ${s.accepted} accepted, ${s.duplicate} duplicate, ${s.failed} still failing.`);
      showError(loadError, null);
    } catch (err) {
      showError(loadError, err);
    } finally {
      reprocessAll.disabled = false;
    }
  }

  function filtersChanged() {
    const q = new URLSearchParams();
    if (instanceSelect.value) q.set('instance', instanceSelect.value);
    for (const field of fields) {
      if (field.value.trim()) q.set(field.name, field.value.trim());
    }
    history.replaceState(null, '', q.toString() ? `?${q}` : location.pathname);
    reprocessAll.hidden = !instanceSelect.value;
    list.reset();
    run();
  }

  async function loadInstances() {
    let instances = [];
    try {
      instances = await api('GET', '/instances');
    } catch (err) {
      showError(loadError, err);
    }
    instanceSelect.append(...instances.map((i) => el('option', { value: i.id }, `#${i.id} ${i.name}`)));
    instanceSelect.value = params.get('instance') || '';
    reprocessAll.hidden = !instanceSelect.value;
  }

  for (const field of fields) {
    field.value = params.get(field.name) || '';
    field.addEventListener('change', filtersChanged);
  }
  instanceSelect.addEventListener('change', filtersChanged);
  document.getElementById('filters').addEventListener('submit', (e) => e.preventDefault());
  older.addEventListener('click', list.older);
  reprocessAll.addEventListener('click', reprocessInstance);
  body.addEventListener('click', (e) => {
    const button = e.target.closest('button.reprocess');
    if (button) reprocessOne(button);
  });
  let run = () => {};
  loadInstances().then(() => { run = every(2000, list.refresh); });
})();
