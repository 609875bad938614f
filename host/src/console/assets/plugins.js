// The plugins page: every file in the plugin folder with the element it
// serves, its version, content hash, load time and last error. It asks
// again every 1.5 s, so dropping, replacing or breaking a file shows without
// reloading the page. Below, the replicas alive on this store with the
// poll partitions and jobs each holds (GET /replicas).
'use strict';

(() => {
  const { api, el, when, showError, every, announce } = pb;
  const body = document.querySelector('#plugins tbody');
  const loadError = document.getElementById('load-error');
  const updated = document.getElementById('updated');
  let last = null;
  const replicaBody = document.querySelector('#replicas tbody');
  const replicasError = document.getElementById('replicas-error');

  // 0, 1, 2, 5, 6 → "0–2, 5–6".
  function ranges(numbers) {
    const out = [];
    for (let i = 0; i < numbers.length; i++) {
      let j = i;
      while (j + 1 < numbers.length && numbers[j + 1] === numbers[j] + 1) j++;
      out.push(i === j ? `${numbers[i]}` : `${numbers[i]}–${numbers[j]}`);
      i = j;
    }
    return out.join(', ');
  }

  function replicaRow(r) {
    return el('tr', { 'data-replica': r.id },
      el('th', { scope: 'row' }, el('code', {}, r.id), r.self ? ' (this one)' : null),
      el('td', {}, when(r.startedAt)),
      el('td', {}, when(r.lastSeen)),
      el('td', {}, `${r.partitions.length}`, r.partitions.length ? el('br') : null,
        r.partitions.length ? el('span', { class: 'hint' }, ranges(r.partitions)) : null),
      el('td', {}, r.singletons.length ? r.singletons.join(', ') : '—'));
  }

  async function refreshReplicas() {
    try {
      const view = await api('GET', '/replicas');
      replicaBody.replaceChildren(...view.replicas.map(replicaRow));
      showError(replicasError, null);
    } catch (err) {
      showError(replicasError, err);
    }
  }

  function row(p) {
    const hash = p.contentHash
      ? el('code', { title: p.contentHash }, `${p.contentHash.slice(0, 12)}…`)
      : '—';
    const error = p.lastError
      ? el('span', { class: 'error' }, p.lastError, p.lastErrorAt ? el('br') : null, p.lastErrorAt ? when(p.lastErrorAt) : null)
      : '—';
    return el('tr', { 'data-file': p.file, class: p.lastError ? 'has-error' : null },
      el('th', { scope: 'row' }, el('code', {}, p.file)),
      el('td', {}, p.key ? `${p.name || p.key} (${p.key})` : el('span', { class: 'hint' }, 'not loaded')),
      el('td', {}, p.version || '—'),
      el('td', {}, p.element ? p.element.modes.join(', ') : '—'),
      el('td', {}, hash),
      el('td', {}, p.loadedAt ? when(p.loadedAt) : '—'),
      el('td', {}, error));
  }

  async function refresh() {
    try {
      const plugins = await api('GET', '/plugins');
      const text = JSON.stringify(plugins);
      if (text !== last) {
        plugins.sort((a, b) => a.file.localeCompare(b.file));
        body.replaceChildren(...plugins.map(row));
        if (last !== null) announce('The plugin folder changed');
        last = text;
      }
      showError(loadError, null);
      updated.textContent = `Checked at ${new Date().toLocaleTimeString()}.`;
    } catch (err) {
      showError(loadError, err);
    }
  }

  every(1500, refresh);
  every(3000, refreshReplicas);
})();
