"""``probe-py``: a test-only Python element for the host's sandbox tests,
the Python twin of the Rust ``probe``.

It misbehaves on request so that the host's limits can be exercised with a
real Python component: the header ``x-probe-action`` (or the end of the
request path) picks what it does.

============  ================================================================
action        behaviour
============  ================================================================
``loop``      spins forever (the host's CPU deadline must stop it)
``alloc``     allocates without bound (the host's memory cap must stop it)
``trap``      raises an exception that is not an element error: a trap
``remember``  accepts one event telling what the previous call left behind
otherwise     accepts one ``created`` event
============  ================================================================

It declares itself ``stateless`` but, for ``remember``, deliberately keeps
the previous call's ``probe.note`` in a global, so that the host's tests see
when a warm instance is reused and that no instance sees another's data.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

# What earlier ``remember`` calls of this instance of the component left.
MEMORY = {"calls": 0, "note": None}

# Holds what ``alloc`` allocates, so nothing can be freed.
HOARD = []


def header(request, name):
    for h in request.headers:
        if h.name.lower() == name:
            return h.value
    return None


def action(request):
    named = header(request, "x-probe-action")
    if named:
        return named
    path = request.url.split("?")[0]
    return path.rsplit("/", 1)[-1]


def accepted(request, raw):
    object_id = header(request, "x-probe-id") or str(len(request.body))
    event = types.NormalizedEvent(
        event_type=types.EventType.CREATED,
        object_type="probe",
        object_id=object_id,
        date="",
        raw=raw if raw is not None else "null",
    )
    return types.WebhookOutcome_Accepted(
        types.WebhookEvents(message_id=header(request, "x-probe-message-id"), events=[event], raw=raw)
    )


def remember(config, request):
    note = dict(config).get("probe.note")
    raw = json.dumps({"note": note, "previous": MEMORY["note"], "calls": MEMORY["calls"]})
    MEMORY["calls"] += 1
    MEMORY["note"] = note
    return accepted(request, raw)


class Element(exports.Element):
    """The exported element."""

    def describe(self) -> types.ElementInfo:
        return types.ElementInfo(
            key="probe-py",
            aliases=[],
            name="Probe (Python)",
            version="0.1.0",
            modes=types.EventModes.WEBHOOKS,
            config_keys=[types.ConfigKey(name="probe.note", required=False, secret=False, description="Free text.")],
            fetch_hosts=[],
            fetch_host_config_keys=[],
            default_poll_configuration=None,
            # Not true of ``remember``, on purpose (see the module docs).
            stateless=True,
        )

    def webhook(self, config, request) -> types.WebhookOutcome:
        what = action(request)
        if what == "loop":
            spins = 0
            while True:
                spins += 1
        if what == "alloc":
            while True:
                HOARD.append(bytearray(b"\xa5" * (1 << 20)))
        if what == "trap":
            raise RuntimeError("probe trap requested")
        if what == "remember":
            return remember(config, request)
        return accepted(request, None)

    def prepare_poll(self, config, poll, draft) -> types.HttpRequest:
        raise Err(types.ElementError_Unsupported("probe-py does not poll"))

    def map_poll(self, config, poll, response) -> types.PollPage:
        raise Err(types.ElementError_Unsupported("probe-py does not poll"))
