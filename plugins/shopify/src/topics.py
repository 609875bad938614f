"""Shopify webhook topics (``X-Shopify-Topic``) as normalized object and event types.

A topic is ``<resource>/<action>``: ``orders/create``, ``products/update``,
``customers/delete``, ``inventory_levels/update``, ``app/uninstalled``.
The object type is the resource in the singular (``order``, ``product``,
``customer``, ``inventory_level``, ``app``); the action maps as follows:

============================================== ==========
action                                         event type
============================================== ==========
``create``, ``add``                            created
``delete``, ``remove``, ``uninstalled``,       deleted
``redact``
any other (``update``, ``paid``, ``cancelled``, updated
``fulfilled``, ``enable``, ``publish``, …)
============================================== ==========
"""

from wit_world.imports import types

CREATED_ACTIONS = frozenset({"create", "add"})
DELETED_ACTIONS = frozenset({"delete", "remove", "uninstalled", "redact"})


def split_topic(topic: str) -> tuple[str, str] | None:
    """``("orders", "create")`` for ``orders/create``; None unless both parts are there."""
    resource, slash, action = topic.strip().lower().partition("/")
    if not slash or not resource or not action:
        return None
    return resource, action


def object_type(resource: str) -> str:
    """The singular of a topic's resource: ``orders`` → ``order``, ``companies`` → ``company``."""
    if resource.endswith("ies"):
        return resource[:-3] + "y"
    if resource.endswith(("sses", "shes", "ches", "xes")):
        return resource[:-2]
    if resource.endswith("s") and not resource.endswith("ss"):
        return resource[:-1]
    return resource


def event_type(action: str) -> types.EventType:
    """The normalized event type of a topic's action."""
    if action in CREATED_ACTIONS:
        return types.EventType.CREATED
    if action in DELETED_ACTIONS:
        return types.EventType.DELETED
    return types.EventType.UPDATED
