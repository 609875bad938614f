#!/usr/bin/env python3
"""A client's notification receiver for the plugboard demo.

Listens on 127.0.0.1:PORT, verifies every notification's signatures with
the instance's signature key (Elements-Webhook-Signature and Standard
Webhooks' webhook-signature, independently of plugboard, with Python's
own hmac), de-duplicates on webhook-id, and prints the events.

Usage: receiver.py PORT SIGNATURE_KEY
"""
import base64
import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = sys.argv[2].encode()
SEEN = set()


def verified(headers, body):
    """Whether both signatures over the exact body bytes check out."""
    want = "sha256=" + base64.b64encode(hmac.new(KEY, body, hashlib.sha256).digest()).decode()
    given = [s.strip() for s in headers.get("Elements-Webhook-Signature", "").split(",")]
    if not any(hmac.compare_digest(want, g) for g in given):
        return False
    msg_id, ts = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "0")
    if abs(time.time() - int(ts)) > 300:
        return False
    signed = f"{msg_id}.{ts}.".encode() + body
    want = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
    sigs = [s.split(",", 1)[1] for s in headers.get("webhook-signature", "").split(" ") if "," in s]
    return any(hmac.compare_digest(want, s) for s in sigs)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if not verified(self.headers, body):
            print("receiver: REJECTED a notification with a bad signature", flush=True)
            self.send_response(401)
            self.end_headers()
            return
        event_id = self.headers["webhook-id"]
        if event_id in SEEN:
            print(f"receiver: duplicate {event_id} acknowledged", flush=True)
        else:
            SEEN.add(event_id)
            message = json.loads(body)["message"]
            for e in message["events"]:
                print(f"receiver: verified {event_id}: {e['elementKey']} {e['objectType']} "
                      f"{e['objectId']} {e['eventType']}", flush=True)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
