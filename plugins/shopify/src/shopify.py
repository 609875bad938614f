"""The Shopify element: who it is, and what it makes of a webhook delivery.

Shopify signs each delivery with ``X-Shopify-Hmac-Sha256``: the base64 of the
HMAC-SHA256 of the exact body bytes under the app's client secret. The
signature is checked before anything else is read, in the host
(``hmac-sha256``, ``constant-time-eq``). A delivery then maps into one event:
``X-Shopify-Topic`` gives the object and event types (see ``topics``), the
payload's ``id`` the object id, and ``X-Shopify-Webhook-Id`` is the message
id the host de-duplicates on.
"""

import json
import re

from componentize_py_types import Err
from wit_world.imports import types

import topics

#: The plugin version ``describe`` reports; keep in step with pyproject.toml.
VERSION = "0.1.0"

#: The configuration key of the secret the deliveries are signed with.
SECRET_KEY = "shopify.webhook.secret"
#: Optional: the shop's ``*.myshopify.com`` domain; deliveries for other shops are refused.
SHOP_DOMAIN_KEY = "shopify.shop.domain"

SIGNATURE_HEADER = "x-shopify-hmac-sha256"

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", re.IGNORECASE)


def describe() -> types.ElementInfo:
    """The WIT ``element-info`` of the Shopify element."""
    return types.ElementInfo(
        key="shopify",
        aliases=[],
        name="Shopify",
        version=VERSION,
        modes=types.EventModes.WEBHOOKS,
        config_keys=[
            types.ConfigKey(
                name=SECRET_KEY,
                required=True,
                secret=True,
                description="The app's client secret (or the store's webhook signing secret); "
                "each delivery must carry a matching X-Shopify-Hmac-Sha256.",
            ),
            types.ConfigKey(
                name=SHOP_DOMAIN_KEY,
                required=False,
                secret=False,
                description="The shop's domain, e.g. `acme.myshopify.com`; when set, deliveries "
                "whose X-Shopify-Shop-Domain differs are refused.",
            ),
        ],
        fetch_hosts=[],
        fetch_host_config_keys=[],
        default_poll_configuration=None,
        # Nothing is kept between calls: the host may reuse a warm instance.
        stateless=True,
    )


def webhook(host, config, request: types.HttpRequest) -> types.WebhookOutcome:
    """Verifies and maps one delivery; raises ``Err(element-error)`` when it cannot."""
    settings = dict(config)
    secret = settings.get(SECRET_KEY, "")
    if not secret.strip():
        raise bad_request(f"configuration `{SECRET_KEY}` is missing")
    verify_signature(host, secret, request.body, header(request, SIGNATURE_HEADER))
    check_shop(settings.get(SHOP_DOMAIN_KEY, "").strip(), header(request, "x-shopify-shop-domain"))

    topic = header(request, "x-shopify-topic")
    parts = topics.split_topic(topic or "")
    if parts is None:
        raise bad_request("X-Shopify-Topic must be `<resource>/<action>`, e.g. `orders/create`")
    resource, action = parts
    payload = parse_payload(request.body)
    kind = topics.object_type(resource)
    event = types.NormalizedEvent(
        event_type=topics.event_type(action),
        object_type=kind,
        object_id=object_id(payload, kind),
        date=date_of(payload),
        raw=request.body.decode("utf-8"),
    )
    return types.WebhookOutcome_Accepted(
        types.WebhookEvents(message_id=header(request, "x-shopify-webhook-id"), events=[event], raw=None)
    )


def verify_signature(host, secret: str, body: bytes, signature: str | None) -> None:
    """Raises ``unauthorized`` unless ``signature`` is base64(HMAC-SHA256(secret, body))."""
    if not signature:
        raise unauthorized("missing X-Shopify-Hmac-Sha256 header")
    try:
        presented = host.base64_decode(signature)
    except Err:
        raise unauthorized("X-Shopify-Hmac-Sha256 is not base64") from None
    expected = host.hmac_sha256(secret.encode("utf-8"), body)
    if not host.constant_time_eq(expected, presented):
        raise unauthorized("X-Shopify-Hmac-Sha256 does not match the body")


def check_shop(expected: str, shop: str | None) -> None:
    """Refuses a delivery for another shop than the configured one (if any)."""
    if expected and (shop or "").lower() != expected.lower():
        raise unauthorized(f"delivery is for shop {shop!r}, not the configured {expected!r}")


def parse_payload(body: bytes) -> dict:
    """The body as a JSON object."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise bad_request(f"body is not valid JSON: {error}") from None
    if not isinstance(payload, dict):
        raise bad_request("body is not a JSON object")
    return payload


def object_id(payload: dict, kind: str) -> str:
    """The object's id: ``id``, else ``admin_graphql_api_id`` (inventory levels), else
    the id of the nested object (``customer.id`` in ``customers/redact``), else
    ``shop_id`` (``shop/redact``)."""
    nested = payload.get(kind)
    candidates = [
        payload.get("id"),
        payload.get("admin_graphql_api_id"),
        nested.get("id") if isinstance(nested, dict) else None,
        payload.get("shop_id") if kind == "shop" else None,
    ]
    for candidate in candidates:
        if isinstance(candidate, bool):
            continue
        if isinstance(candidate, int) or (isinstance(candidate, str) and candidate):
            return str(candidate)
    raise bad_request(f"{kind} payload has no id")


def date_of(payload: dict) -> str:
    """``updated_at`` (else ``created_at``) if RFC 3339; empty lets the host use the time of receipt."""
    for field in ("updated_at", "created_at"):
        value = payload.get(field)
        if isinstance(value, str) and RFC3339.match(value):
            return value
    return ""


def header(request: types.HttpRequest, name: str) -> str | None:
    """The trimmed value of the first header named ``name`` (case-insensitive)."""
    for h in request.headers:
        if h.name.lower() == name:
            return h.value.strip()
    return None


def bad_request(message: str) -> Err:
    """The ``bad-request`` element error, to raise."""
    return Err(types.ElementError_BadRequest(message))


def unauthorized(message: str) -> Err:
    """The ``unauthorized`` element error, to raise."""
    return Err(types.ElementError_Unauthorized(message))
