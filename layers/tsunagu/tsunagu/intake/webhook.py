"""LINE webhook intake rules: signature, envelope shape, and routing of events to queues.

Signature: HMAC-SHA256 of the exact raw body with the channel secret, base64, compared in
constant time (line-platform.md 1.2). Routing: one queue message per event, by event kind.
Forward compatible: unknown event types are routed to the "other" queue, never refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from tsunagu.errors import BadRequest, InvalidSignature
from tsunagu.text import has_lone_surrogate, may_hold_surrogate

Route = Literal["friendship", "message", "account_link", "delivery", "other", "forward"]

ROUTES: dict[str, Route] = {
    "follow": "friendship",
    "unfollow": "friendship",
    "message": "message",
    "postback": "message",
    "unsend": "message",
    "accountLink": "account_link",
    "delivery": "delivery",
}

SQS_BATCH_MAX_ENTRIES = 10
SQS_BATCH_MAX_BYTES = 262_144


def signature_for(body: bytes, channel_secret: str) -> str:
    digest = hmac.new(channel_secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_signature(body: bytes, signature: str | None, channel_secret: str) -> None:
    """Raise InvalidSignature unless ``signature`` is LINE's signature of ``body``."""
    if not signature:
        raise InvalidSignature("missing x-line-signature header")
    try:
        given = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSignature("x-line-signature is not base64") from None
    expected = hmac.new(channel_secret.encode(), body, hashlib.sha256).digest()
    if not hmac.compare_digest(given, expected):
        raise InvalidSignature("x-line-signature does not match the body")


@dataclass(frozen=True, slots=True)
class WebhookEnvelope:
    destination: str
    events: list[dict[str, Any]]


def parse_envelope(body: bytes) -> WebhookEnvelope:
    """Parse a verified body; raise BadRequest when it is not a LINE webhook."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("body is not JSON", code="invalid_webhook") from None
    if may_hold_surrogate(body) and has_lone_surrogate(doc):  # no queue, table or hash could take it
        raise BadRequest("body holds a lone UTF-16 surrogate", code="invalid_webhook")
    if not isinstance(doc, dict):
        raise BadRequest("body is not a JSON object", code="invalid_webhook")
    destination = doc.get("destination")
    events = doc.get("events")
    if not isinstance(destination, str) or not isinstance(events, list):
        raise BadRequest("a LINE webhook has 'destination' and 'events'", code="invalid_webhook")
    for ev in events:
        if not isinstance(ev, dict) or not isinstance(ev.get("type"), str):
            raise BadRequest("every event needs a 'type'", code="invalid_webhook")
    return WebhookEnvelope(destination=destination, events=events)


def route_of(event: dict[str, Any]) -> Route:
    return ROUTES.get(event["type"], "other")


@dataclass(frozen=True, slots=True)
class QueueEntry:
    route: Route
    body: str


def build_entries(
    account_id: str, envelope: WebhookEnvelope, received_at_ms: int, origin: str | None = None
) -> list[QueueEntry]:
    """One queue message per event. ``receivedAt`` lets workers judge reply-token age;
    ``origin`` is tsunagu's public base URL (for links sent in replies, e.g. the link page)."""
    out = []
    for ev in envelope.events:
        msg: dict[str, Any] = {
            "accountId": account_id,
            "destination": envelope.destination,
            "receivedAt": received_at_ms,
            "event": ev,
        }
        if origin:
            msg["origin"] = origin
        out.append(QueueEntry(route_of(ev), json.dumps(msg, ensure_ascii=False, separators=(",", ":"))))
    return out


def forward_message(account_id: str, url: str, body: bytes, signature: str, received_at_ms: int) -> str:
    return json.dumps(
        {
            "accountId": account_id,
            "url": url,
            "body": base64.b64encode(body).decode(),
            "signature": signature,
            "receivedAt": received_at_ms,
        },
        separators=(",", ":"),
    )


def batches(bodies: list[str]) -> list[list[str]]:
    """Group message bodies into SendMessageBatch calls: at most 10 entries and 256 KiB each."""
    out: list[list[str]] = []
    cur: list[str] = []
    size = 0
    for b in bodies:
        n = len(b.encode())
        if cur and (len(cur) == SQS_BATCH_MAX_ENTRIES or size + n > SQS_BATCH_MAX_BYTES):
            out.append(cur)
            cur, size = [], 0
        cur.append(b)
        size += n
    if cur:
        out.append(cur)
    return out


SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def redacted_for_storage(event: dict[str, Any]) -> dict[str, Any]:
    """An event as tsunagu keeps it at rest: no reply token (a credential, however short-lived),
    no account-link nonce, and no hashed phone number (a SHA-256 of an E.164 number is
    reversible by brute force; a ``delivery`` event without a delivery tag carries one)."""
    out = {k: v for k, v in event.items() if k != "replyToken"}
    if isinstance(out.get("link"), dict) and "nonce" in out["link"]:
        out["link"] = {**out["link"], "nonce": "[redacted]"}
    delivery = out.get("delivery")
    if isinstance(delivery, dict) and SHA256_HEX.fullmatch(str(delivery.get("data", ""))):
        out["delivery"] = {**delivery, "data": "[hashed phone number redacted]"}
    return out
