"""The Shopify element plugin: the component's entry point.

componentize-py builds this module into a WebAssembly component of the
``element-plugin`` world: ``Element`` implements the exported
``plugboard:element/element`` interface, and ``wit_world.imports.host`` is
the host's import. The logic lives in ``shopify.py``, which takes the host
as an argument so that its unit tests run on CPython with a fake host.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host, types

import shopify


class Element(exports.Element):
    """The exported element."""

    def describe(self) -> types.ElementInfo:
        return shopify.describe()

    def webhook(self, config, request) -> types.WebhookOutcome:
        return shopify.webhook(host, config, request)

    def prepare_poll(self, config, poll, draft) -> types.HttpRequest:
        raise Err(types.ElementError_Unsupported("the Shopify element receives webhooks and does not poll"))

    def map_poll(self, config, poll, response) -> types.PollPage:
        raise Err(types.ElementError_Unsupported("the Shopify element receives webhooks and does not poll"))
