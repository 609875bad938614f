/**
 * Mapping GitHub webhook events (`X-GitHub-Event` and the payload's
 * `action`) into normalized events.
 *
 * | event | object type | object id | event type |
 * |---|---|---|---|
 * | `push` | `repository` | `repository.full_name` (`octo-org/hello`) | `updated` |
 * | `issues` | `issue` | `issue.id` | `opened` → `created`, `deleted` → `deleted`, any other action → `updated` |
 * | `pull_request` | `pull_request` | `pull_request.id` | as for `issues` |
 *
 * A push changes the state of a repository (one of its refs), so it is an
 * update of the repository, named by its full name; the pushed commits, the
 * ref and the `before`/`after` shas ride along in the raw data. The numeric
 * `id` of issues and pull requests is unique across GitHub (their `number`
 * is only unique within one repository). Other events carry nothing to
 * normalize and map to no events.
 */

import { badRequest } from './errors.js';

/** Events whose payload names one object and an `action`. */
const OBJECT_EVENTS = {
  issues: { objectType: 'issue', field: 'issue' },
  pull_request: { objectType: 'pull_request', field: 'pull_request' },
};

/** Actions that bring an object into existence or remove it. */
const CREATED_ACTIONS = new Set(['opened', 'created']);
const DELETED_ACTIONS = new Set(['deleted']);

/** RFC 3339 date-time, as the host accepts it. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

/**
 * The normalized events of one GitHub webhook.
 *
 * @param {string} event the `X-GitHub-Event` value
 * @param {object} payload the parsed JSON payload
 * @returns {object[]} WIT `normalized-event` records
 */
export function mapEvent(event, payload) {
  if (event === 'push') {
    return [pushEvent(payload)];
  }
  const kind = OBJECT_EVENTS[event];
  if (kind === undefined) {
    return [];
  }
  const object = payload[kind.field];
  if (object === null || typeof object !== 'object' || object.id === undefined || object.id === null) {
    throw badRequest(`${event} payload has no ${kind.field}.id`);
  }
  return [
    {
      eventType: eventType(payload.action),
      objectType: kind.objectType,
      objectId: String(object.id),
      date: rfc3339(object.updated_at),
      raw: JSON.stringify(object),
    },
  ];
}

/** A push: an update of the repository it went to. */
function pushEvent(payload) {
  const fullName = payload.repository?.full_name;
  if (typeof fullName !== 'string' || fullName === '') {
    throw badRequest('push payload has no repository.full_name');
  }
  return {
    eventType: 'updated',
    objectType: 'repository',
    objectId: fullName,
    date: rfc3339(payload.head_commit?.timestamp) || unixSeconds(payload.repository.pushed_at),
    raw: JSON.stringify(payload),
  };
}

/** Maps an issue or pull request `action` to a WIT `event-type`. */
export function eventType(action) {
  if (typeof action !== 'string' || action === '') {
    return 'unknown';
  }
  if (CREATED_ACTIONS.has(action)) {
    return 'created';
  }
  if (DELETED_ACTIONS.has(action)) {
    return 'deleted';
  }
  return 'updated';
}

/** `value` if it is an RFC 3339 date-time, else '' (the host then uses the time of receipt). */
function rfc3339(value) {
  return typeof value === 'string' && RFC3339.test(value) ? value : '';
}

/** A Unix time in seconds as RFC 3339 UTC, or ''. */
function unixSeconds(value) {
  return Number.isFinite(value) ? new Date(value * 1000).toISOString() : '';
}
