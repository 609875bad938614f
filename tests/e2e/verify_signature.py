"""Verifies a plugboard notification's signatures independently of the host.

Reads JSON on stdin: {"body_b64": ..., "headers": {name: value}, "key": ...}
and checks, with Python's own hmac, that
  - Elements-Webhook-Signature carries sha256=<base64 HMAC-SHA256(key, body)>;
  - webhook-signature carries v1,<base64 HMAC-SHA256(secret, "{id}.{ts}.{body}")>
    (Standard Webhooks; a whsec_ key signs with its base64-decoded bytes),
    with the timestamp within five minutes.
Prints "ok" and exits 0, or prints what failed and exits 1.
"""
import base64
import hashlib
import hmac
import json
import sys
import time


def main():
    req = json.load(sys.stdin)
    body = base64.b64decode(req["body_b64"])
    headers = {k.lower(): v for k, v in req["headers"].items()}
    key = req["key"]

    expected = "sha256=" + base64.b64encode(
        hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()
    given = [s.strip() for s in headers.get("elements-webhook-signature", "").split(",")]
    if not any(hmac.compare_digest(expected, g) for g in given):
        print("Elements-Webhook-Signature does not verify")
        return 1

    msg_id = headers["webhook-id"]
    ts = headers["webhook-timestamp"]
    if abs(time.time() - int(ts)) > 300:
        print("webhook-timestamp outside tolerance")
        return 1
    secret = base64.b64decode(key[len("whsec_"):]) if key.startswith("whsec_") else key.encode()
    signed = msg_id.encode() + b"." + ts.encode() + b"." + body
    want = base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode()
    sigs = [s.split(",", 1)[1] for s in headers.get("webhook-signature", "").split(" ") if "," in s]
    if not any(hmac.compare_digest(want, s) for s in sigs):
        print("webhook-signature does not verify")
        return 1
    if headers.get("elements-webhook-id") != msg_id:
        print("Elements-Webhook-Id and webhook-id differ")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
