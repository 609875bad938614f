/**
 * The GitHub element plugin: the component's entry point.
 *
 * componentize-js turns this module into a WebAssembly component of the
 * `element-plugin` world: the `element` export below implements the
 * `plugboard:element/element` interface, and `plugboard:element/host` is the
 * host's import. The logic lives in `github.js`, which takes the host as an
 * argument so that it also runs under Node.js with a fake host in the unit
 * tests.
 */

import * as host from 'plugboard:element/host@0.2.0';

import { describe, webhook } from './github.js';
import { unsupported } from './errors.js';

/** The exported `element` interface. */
export const element = {
  describe,

  webhook(config, request) {
    return webhook(host, config, request);
  },

  preparePoll() {
    throw unsupported('the GitHub element receives webhooks and does not poll');
  },

  mapPoll() {
    throw unsupported('the GitHub element receives webhooks and does not poll');
  },
};
