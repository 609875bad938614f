"""The {{title}} element plugin (``{{name}}``).

A starting point: webhooks carry ``x-signature: base64(HMAC-SHA256(secret,
body))`` and a JSON body ``{"id", "type", "action", "date"}``, mapped into
one normalized event. Replace the signature scheme and the mapping with
your vendor's.

componentize-py builds this module into a component of the
``element-plugin`` world (``wit/element.wit``): ``Element`` implements the
exported ``plugboard:element/element`` interface, and
``wit_world.imports.host`` is the host's import. WIT records are
dataclasses, variants one class per case (``WebhookOutcome_Accepted``), and
a ``result`` error is raised as ``Err(value)``.
"""

import functools
import json
import traceback

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host, types

SECRET_KEY = "{{name}}.webhook.secret"
SIGNATURE_HEADER = "x-signature"
EVENT_TYPES = {
    "created": types.EventType.CREATED,
    "updated": types.EventType.UPDATED,
    "deleted": types.EventType.DELETED,
}


def log_uncaught(export):
    """Logs an exception that is not an element error (a crash: a bug, a
    KeyError) at error level with its traceback before it aborts the call,
    so the host shows it in the call's error."""

    @functools.wraps(export)
    def run(*args, **kwargs):
        try:
            return export(*args, **kwargs)
        except Err:
            raise
        except BaseException:
            host.log(host.LogLevel.ERROR, traceback.format_exc())
            raise

    return run


class Element(exports.Element):
    """The exported element."""

    def describe(self) -> types.ElementInfo:
        return types.ElementInfo(
            key="{{name}}",
            aliases=[],
            name="{{title}}",
            version="0.1.0",
            modes=types.EventModes.WEBHOOKS,
            config_keys=[
                types.ConfigKey(SECRET_KEY, True, True, "The secret the vendor signs webhooks with."),
            ],
            fetch_hosts=[],
            fetch_host_config_keys=[],
            # A polling element names the resources an instance polls when it
            # names none, as JSON text of an event.poller.configuration object.
            default_poll_configuration=None,
            # True while the element keeps nothing between calls (no global
            # that a call changes): the host may then reuse a warm instance,
            # which makes calls many times cheaper. See docs/plugins.md.
            stateless=True,
        )

    @log_uncaught
    def webhook(self, config, request: types.HttpRequest) -> types.WebhookOutcome:
        secret = dict(config).get(SECRET_KEY, "")
        if not secret:
            raise Err(types.ElementError_BadRequest(f"configuration `{SECRET_KEY}` is missing"))
        verify(secret, request)
        try:
            payload = json.loads(request.body)
        except ValueError as error:
            raise Err(types.ElementError_BadRequest(f"body is not valid JSON: {error}")) from None
        if not isinstance(payload, dict):
            raise Err(types.ElementError_BadRequest("body is not a JSON object"))

        def text(field: str) -> str:
            value = payload.get(field)
            return "" if value is None else str(value)

        event = types.NormalizedEvent(
            event_type=EVENT_TYPES.get(payload.get("action"), types.EventType.UNKNOWN),
            object_type=text("type"),
            object_id=text("id"),
            date=text("date"),  # RFC 3339, or empty for the time of receipt
            raw=json.dumps(payload),
        )
        return types.WebhookOutcome_Accepted(types.WebhookEvents(message_id=None, events=[event], raw=None))

    def prepare_poll(self, config, poll, draft) -> types.HttpRequest:
        raise Err(types.ElementError_Unsupported("{{name}} receives webhooks and does not poll"))

    def map_poll(self, config, poll, response) -> types.PollPage:
        raise Err(types.ElementError_Unsupported("{{name}} receives webhooks and does not poll"))


def verify(secret: str, request: types.HttpRequest) -> None:
    """Checks the signature header against the HMAC of the exact body bytes,
    computed and compared (in constant time) by the host."""
    header = next((h.value for h in request.headers if h.name == SIGNATURE_HEADER), None)
    if header is None:
        raise Err(types.ElementError_Unauthorized(f"missing {SIGNATURE_HEADER} header"))
    try:
        presented = host.base64_decode(header.strip())
    except Err:
        raise Err(types.ElementError_Unauthorized(f"{SIGNATURE_HEADER} is not base64")) from None
    expected = host.hmac_sha256(secret.encode(), request.body)
    if not host.constant_time_eq(expected, presented):
        raise Err(types.ElementError_Unauthorized(f"{SIGNATURE_HEADER} does not match"))
