// One event's detail: its delivery state, the normalized events, every
// delivery attempt and the vendor's raw payload; refreshed every 2 s, with
// a button that delivers it again under the same eventId.
'use strict';

(() => {
  const { api, el, when, status, showError, every } = pb;
  const id = decodeURIComponent(location.pathname.split('/').pop());
  const loadError = document.getElementById('load-error');
  const summary = document.getElementById('summary');
  const normalized = document.querySelector('#normalized tbody');
  const attempts = document.querySelector('#attempts tbody');
  const noAttempts = document.getElementById('no-attempts');
  const raw = document.getElementById('raw');
  let last = null;

  function item(term, ...value) {
    return [el('dt', {}, term), el('dd', {}, ...value)];
  }

  // The first bytes of the receiver's answer, as kept: text, or the
  // base64 of bytes that are not text.
  function answer(a) {
    if (a.responseBody) return el('code', {}, a.responseBody);
    if (a.responseBodyBase64) return el('code', { title: 'not text: base64' }, `base64:${a.responseBodyBase64}`);
    return '—';
  }

  function render(e) {
    summary.replaceChildren(
      ...item('Status', status(e.status)),
      ...item('Instance', el('a', { href: `/console/events?instance=${e.instanceId}` }, `#${e.instanceId}`)),
      ...item('Element', e.elementKey || '—'),
      ...item('Source', e.source),
      ...item('Received', when(e.createdDate)),
      ...item('Delivered', when(e.deliveredDate)),
      ...item('Attempts in this cycle', e.attempts),
      ...item('Next attempt', when(e.nextAttemptDate)),
      ...item('Last error', e.lastError || '—'));
    normalized.replaceChildren(...(e.events || []).map((n) => el('tr', {},
      el('td', {}, n.eventType), el('td', {}, n.objectType), el('td', {}, n.objectId), el('td', {}, when(n.date)))));
    const log = e.attemptLog || [];
    attempts.replaceChildren(...log.map((a) => el('tr', {},
      el('td', {}, when(a.date)),
      el('td', {}, a.statusCode ?? '—'),
      el('td', {}, a.latencyMs === null || a.latencyMs === undefined ? '—' : `${a.latencyMs} ms`),
      el('td', {}, a.error || '—'),
      el('td', {}, answer(a)))));
    noAttempts.hidden = log.length !== 0;
    const n = e.notification || {};
    const payload = n.message?.raw ?? n.data?.raw ?? n;
    raw.textContent = typeof payload === 'string' ? payload : JSON.stringify(payload, null, 2);
  }

  async function refresh() {
    try {
      const e = await api('GET', `/instances/events/${encodeURIComponent(id)}`);
      const text = JSON.stringify(e);
      if (text !== last) {
        render(e);
        last = text;
      }
      showError(loadError, null);
    } catch (err) {
      showError(loadError, err);
    }
  }

  document.getElementById('event-id').textContent = id;
  const run = every(2000, refresh);
  document.getElementById('redeliver').addEventListener('click', async () => {
    try {
      await api('POST', `/instances/events/${encodeURIComponent(id)}/redeliver`);
      const result = document.getElementById('redeliver-result');
      result.textContent = `Queued for redelivery at ${new Date().toLocaleTimeString()}, under the same eventId.`;
      result.hidden = false;
      run();
    } catch (err) {
      showError(loadError, err);
    }
  });
})();
