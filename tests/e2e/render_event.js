// Runs the console's event page script (host/src/console/assets/event.js)
// under Node with a stand-in DOM, on the API answer read from stdin, and
// prints what the page shows as the vendor's raw payload. Exit status 2:
// the page showed an error.
'use strict';

const path = require('node:path');
const text = require('node:fs').readFileSync(0, 'utf8');
const nodes = {};
const node = () => ({ replaceChildren() {}, addEventListener() {}, hidden: false, textContent: '' });
globalThis.document = {
  getElementById: (id) => (nodes[id] ??= node()),
  querySelector: (selector) => (nodes[selector] ??= node()),
};
globalThis.location = { pathname: '/console/events/event' };
globalThis.pb = {
  api: async () => JSON.parse(text),
  el: () => ({}),
  when: () => '',
  status: () => '',
  showError: (_, err) => {
    if (err) {
      console.error(String(err));
      process.exit(2);
    }
  },
  every: (_, task) => {
    task();
    return task;
  },
};
require(path.join(__dirname, '../../host/src/console/assets/event.js'));
setImmediate(() => process.stdout.write(nodes.raw.textContent));
