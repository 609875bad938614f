/**
 * `probe-js`: a test-only JavaScript element for the host's sandbox tests,
 * the JavaScript twin of the Rust `probe`.
 *
 * It misbehaves on request so that the host's limits can be exercised with
 * a real JavaScript component: the header `x-probe-action` (or the end of
 * the request path) picks what it does.
 *
 * | action     | behaviour                                                       |
 * |------------|-----------------------------------------------------------------|
 * | `loop`     | spins forever (the host's CPU deadline must stop it)            |
 * | `alloc`    | allocates without bound (the host's memory cap must stop it)    |
 * | `trap`     | throws an error that is not an element error: a trap            |
 * | `remember` | accepts one event telling what the previous call left behind    |
 * | `promise`  | answers with a promise of an accepted event (raw `"promise"`)   |
 * | `thenable` | answers with a thenable of an accepted event (raw `"thenable"`) |
 * | `reject`   | answers with a promise rejected with an `unsupported` error     |
 * | `echo`     | accepts one event whose raw JSON is the request as it arrived   |
 * | otherwise  | accepts one `created` event                                     |
 *
 * It declares itself `stateless` but, for `remember`, deliberately keeps the
 * previous call's `probe.note` in a global, so that the host's tests see
 * when a warm instance is reused and that no instance sees another's data.
 */

/** What earlier `remember` calls of this instance of the component left. */
const memory = { calls: 0, note: null };

/** Holds what `alloc` allocates, so nothing can be collected. */
const hoard = [];

function header(request, name) {
  const found = request.headers.find((h) => h.name.toLowerCase() === name);
  return found ? found.value : undefined;
}

function action(request) {
  const named = header(request, 'x-probe-action');
  if (named) return named;
  const path = request.url.split('?')[0];
  return path.slice(path.lastIndexOf('/') + 1);
}

function accepted(request, raw) {
  return {
    tag: 'accepted',
    val: {
      messageId: header(request, 'x-probe-message-id'),
      events: [
        {
          eventType: 'created',
          objectType: 'probe',
          objectId: header(request, 'x-probe-id') || String(request.body.length),
          date: '',
          raw: raw ?? 'null',
        },
      ],
      raw,
    },
  };
}

function remember(config, request) {
  const entry = config.find(([key]) => key === 'probe.note');
  const note = entry ? entry[1] : null;
  const raw = JSON.stringify({ note, previous: memory.note, calls: memory.calls });
  memory.calls += 1;
  memory.note = note;
  return accepted(request, raw);
}

function unsupported(message) {
  const error = new Error(message);
  error.payload = { tag: 'unsupported', val: message };
  return error;
}

/**
 * The request as the element received it, as JSON text: method, URL, query,
 * every header, and the body as text (it is sent as UTF-8).
 */
function echo(request) {
  return JSON.stringify({
    method: request.method,
    url: request.url,
    query: request.query,
    headers: request.headers.map((h) => [h.name, h.value]),
    body: new TextDecoder().decode(request.body),
  });
}

/** The exported `element` interface. */
export const element = {
  describe() {
    return {
      key: 'probe-js',
      aliases: [],
      name: 'Probe (JavaScript)',
      version: '0.1.0',
      modes: { webhooks: true, polling: false },
      configKeys: [
        { name: 'probe.note', required: false, secret: false, description: 'Free text.' },
      ],
      fetchHosts: [],
      fetchHostConfigKeys: [],
      defaultPollConfiguration: undefined,
      // Not true of `remember`, on purpose (see above).
      stateless: true,
    };
  },

  webhook(config, request) {
    switch (action(request)) {
      case 'loop':
        for (;;) {
          memory.spins = (memory.spins || 0) + 1;
        }
      case 'alloc':
        for (;;) {
          hoard.push(new Uint8Array(1 << 20).fill(0xa5));
        }
      case 'trap':
        throw new Error('probe trap requested');
      case 'remember':
        return remember(config, request);
      case 'promise':
        return Promise.resolve().then(() => accepted(request, '"promise"'));
      case 'thenable':
        return { then: (resolve) => resolve(accepted(request, '"thenable"')) };
      case 'reject':
        return Promise.reject(unsupported('probe-js rejected the call as asked'));
      case 'echo':
        return accepted(request, echo(request));
      default:
        return accepted(request, undefined);
    }
  },

  preparePoll() {
    throw unsupported('probe-js does not poll');
  },

  mapPoll() {
    throw unsupported('probe-js does not poll');
  },
};
