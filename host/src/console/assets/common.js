// Helpers shared by every console page: calling the management API with
// the session cookie, building DOM nodes (data is always inserted as text,
// never as HTML), dates, announcements for screen readers, copying, and
// polling while the page is visible.
'use strict';

const pb = (() => {
  /** An API answer that was not 2xx: status plus the API's {code, message, field}. */
  class ApiFailure extends Error {
    constructor(status, body) {
      super(body.message || `HTTP ${status}`);
      this.status = status;
      this.code = body.code;
      this.field = body.field;
    }
  }

  /** Calls the management API; the session cookie authenticates it. */
  async function api(method, path, body) {
    const init = {
      method,
      credentials: 'same-origin',
      headers: { 'Accept': 'application/json', 'X-Plugboard-Console': '1' },
    };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = { message: text };
    }
    if (res.status === 401) {
      location.assign('/console/login');
    }
    if (!res.ok) {
      throw new ApiFailure(res.status, data || {});
    }
    return data;
  }

  /** Makes an element; attributes set as attributes, children appended as nodes or text. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === false || value === null || value === undefined) continue;
      if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  /** A <time> showing an RFC 3339 date in the browser's locale. */
  function when(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    return el('time', { datetime: iso, title: iso }, d.toLocaleString());
  }

  /** A status shown as a word (colour only repeats it). */
  function status(s) {
    return el('span', { class: `status status-${String(s).toLowerCase()}` }, s);
  }

  /** Says `text` to screen readers through the page's live region. */
  function announce(text) {
    const region = document.getElementById('announcer');
    if (!region) return;
    region.textContent = '';
    setTimeout(() => { region.textContent = text; }, 50);
  }

  /**
   * The URL a vendor calls for an instance: the API's `webhook.url` (built
   * from the host's public URL), or without one `webhook.path` on this origin.
   */
  function webhookUrl(instance) {
    return instance.webhook.url || `${location.origin}${instance.webhook.path}`;
  }

  /** Copies `text` to the clipboard and says so on `button`. */
  async function copy(text, button) {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const scratch = el('textarea', { class: 'visually-hidden' }, text);
      document.body.append(scratch);
      scratch.select();
      document.execCommand('copy');
      scratch.remove();
    }
    const label = button.textContent;
    button.textContent = 'Copied';
    announce('Copied to the clipboard');
    setTimeout(() => { button.textContent = label; }, 1500);
  }

  /** Shows an error in a paragraph (or hides it when `err` is null). */
  function showError(p, err) {
    p.hidden = !err;
    p.textContent = err ? (err.message || String(err)) : '';
  }

  /**
   * A newest-first list paged by cursor: `refresh` redraws the first page
   * (only when it changed, and not once older pages were added), `older`
   * appends the next page, `reset` starts over. `fetch(cursor)` reads a
   * page, `items(page)` its entries, `row(item)` draws one; `onFirst(page)`
   * runs when the first page is drawn.
   */
  function cursorList({ fetch, items, row, body, older, empty, loadError, onFirst }) {
    let last = null;
    let next = null;
    let paged = false;
    const shown = (page) => {
      next = page.nextPage;
      older.hidden = !next;
    };
    return {
      async refresh() {
        if (paged) return;
        try {
          const page = await fetch(null);
          const text = JSON.stringify(page);
          if (text !== last) {
            body.replaceChildren(...items(page).map(row));
            if (onFirst) onFirst(page);
            last = text;
          }
          shown(page);
          empty.hidden = items(page).length !== 0;
          showError(loadError, null);
        } catch (err) {
          showError(loadError, err);
        }
      },
      async older() {
        paged = true;
        try {
          const page = await fetch(next);
          body.append(...items(page).map(row));
          shown(page);
        } catch (err) {
          showError(loadError, err);
        }
      },
      reset() {
        paged = false;
        last = null;
      },
    };
  }

  /** Runs `task` now and then every `ms` while the page is visible; returns a "run now". */
  function every(ms, task) {
    let timer = null;
    let busy = false;
    const run = async () => {
      clearTimeout(timer);
      timer = null;
      if (busy) return;
      busy = true;
      try {
        await task();
      } catch (err) {
        console.error(err);
      } finally {
        busy = false;
        if (!document.hidden && timer === null) timer = setTimeout(run, ms);
      }
    };
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) run();
    });
    run();
    return run;
  }

  return { ApiFailure, api, el, when, status, announce, webhookUrl, copy, showError, every, cursorList };
})();
