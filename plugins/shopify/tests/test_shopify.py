"""Unit tests of the Shopify element's logic on CPython, with a fake host
whose HMAC, base64 and comparison are Python's own.

Run after ``bash plugins/build.sh`` (which generates the WIT bindings into
``plugins/target/python-bindings``): ``python3 -m unittest discover tests``
in plugins/shopify.
"""

import base64
import hashlib
import hmac
import json
import pathlib
import sys
import unittest

HERE = pathlib.Path(__file__).resolve().parent
BINDINGS = HERE.parent.parent / "target" / "python-bindings"
if not (BINDINGS / "wit_world").is_dir():
    raise ImportError(f"{BINDINGS} has no WIT bindings: run plugins/build.sh first")
sys.path[:0] = [str(BINDINGS), str(HERE.parent / "src")]

from componentize_py_types import Err  # noqa: E402
from wit_world.imports import types  # noqa: E402

import shopify  # noqa: E402
import topics  # noqa: E402

SECRET = "shpss_0123456789abcdef"


class FakeHost:
    """The host imports the element uses, done with Python's standard library."""

    @staticmethod
    def hmac_sha256(key: bytes, message: bytes) -> bytes:
        return hmac.new(key, message, hashlib.sha256).digest()

    @staticmethod
    def base64_decode(text: str) -> bytes:
        try:
            return base64.b64decode(text, validate=True)
        except ValueError as error:
            raise Err(str(error)) from None

    @staticmethod
    def constant_time_eq(a: bytes, b: bytes) -> bool:
        return hmac.compare_digest(a, b)


CONFIG = [("shopify.webhook.secret", SECRET)]


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def request(topic, payload, signature=..., body=None, shop="acme.myshopify.com"):
    data = body if body is not None else json.dumps(payload).encode()
    headers = [
        types.Header("content-type", "application/json"),
        types.Header("x-shopify-topic", topic),
        types.Header("x-shopify-shop-domain", shop),
        types.Header("x-shopify-webhook-id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
    ]
    sig = sign(data) if signature is ... else signature
    if sig is not None:
        headers.append(types.Header("x-shopify-hmac-sha256", sig))
    return types.HttpRequest("POST", "/events/shopify/MQ==", "", headers, data)


def error_of(config, req):
    try:
        shopify.webhook(FakeHost, config, req)
    except Err as error:
        return error.value
    raise AssertionError("expected an element error")


class WebhookTest(unittest.TestCase):
    def test_describe(self):
        info = shopify.describe()
        self.assertEqual(info.key, "shopify")
        self.assertEqual(info.modes, types.EventModes.WEBHOOKS)
        self.assertEqual(
            [(k.name, k.required, k.secret) for k in info.config_keys],
            [("shopify.webhook.secret", True, True), ("shopify.shop.domain", False, False)],
        )

    def test_order_created(self):
        payload = {"id": 820982911946154508, "created_at": "2024-05-01T08:00:00-04:00", "total_price": "9.99"}
        req = request("orders/create", payload)
        outcome = shopify.webhook(FakeHost, CONFIG, req)
        self.assertIsInstance(outcome, types.WebhookOutcome_Accepted)
        self.assertEqual(outcome.value.message_id, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
        [event] = outcome.value.events
        self.assertEqual(event.event_type, types.EventType.CREATED)
        self.assertEqual(event.object_type, "order")
        self.assertEqual(event.object_id, "820982911946154508")
        self.assertEqual(event.date, "2024-05-01T08:00:00-04:00")
        self.assertEqual(json.loads(event.raw), payload)

    def test_topics(self):
        cases = {
            "products/update": ("product", types.EventType.UPDATED),
            "customers/delete": ("customer", types.EventType.DELETED),
            "orders/paid": ("order", types.EventType.UPDATED),
            "inventory_levels/update": ("inventory_level", types.EventType.UPDATED),
            "companies/create": ("company", types.EventType.CREATED),
            "app/uninstalled": ("app", types.EventType.DELETED),
            "product_listings/add": ("product_listing", types.EventType.CREATED),
            "shop/update": ("shop", types.EventType.UPDATED),
        }
        for topic, expected in cases.items():
            resource, action = topics.split_topic(topic)
            self.assertEqual((topics.object_type(resource), topics.event_type(action)), expected, topic)
        self.assertIsNone(topics.split_topic("orders"))

    def test_ids_without_id(self):
        level = {"inventory_item_id": 271878346596884015, "location_id": 24826418,
                 "admin_graphql_api_id": "gid://shopify/InventoryLevel/24826418?inventory_item_id=271878346596884015"}
        [event] = shopify.webhook(FakeHost, CONFIG, request("inventory_levels/update", level)).value.events
        self.assertEqual(event.object_id, level["admin_graphql_api_id"])
        redact = {"shop_id": 954889, "customer": {"id": 191167}}
        [event] = shopify.webhook(FakeHost, CONFIG, request("customers/redact", redact)).value.events
        self.assertEqual((event.object_id, event.event_type), ("191167", types.EventType.DELETED))
        self.assertIsInstance(error_of(CONFIG, request("orders/create", {"name": "#1001"})),
                              types.ElementError_BadRequest)

    def test_signatures(self):
        payload = {"id": 1}
        for signature in (None, "", "not base64!", sign(b"other body"), sign(json.dumps(payload).encode(), "x")):
            error = error_of(CONFIG, request("orders/create", payload, signature=signature))
            self.assertIsInstance(error, types.ElementError_Unauthorized, signature)

    def test_shop_domain(self):
        config = CONFIG + [("shopify.shop.domain", "acme.myshopify.com")]
        self.assertTrue(shopify.webhook(FakeHost, config, request("orders/create", {"id": 1})).value.events)
        error = error_of(config, request("orders/create", {"id": 1}, shop="other.myshopify.com"))
        self.assertIsInstance(error, types.ElementError_Unauthorized)

    def test_bad_requests(self):
        for req in (request("orders/create", None, body=b"{not json"),
                    request("orders/create", None, body=b"[1]"),
                    request("orders", {"id": 1})):
            self.assertIsInstance(error_of(CONFIG, req), types.ElementError_BadRequest)
        self.assertIsInstance(error_of([], request("orders/create", {"id": 1})), types.ElementError_BadRequest)


if __name__ == "__main__":
    unittest.main()
