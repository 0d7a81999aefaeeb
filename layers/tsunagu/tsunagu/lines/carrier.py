"""The carrier's webhook: a data change announced to the carrier's network (R-GIFT-1).

The body is signed like LINE signs its webhooks - base64 HMAC-SHA256 of the exact bytes in
``X-Line-Signature`` - with a per-account key (Secrets Manager, ``carrier-webhook-key``) the
carrier is given once. It travels through the webhook-forward queue and worker: a non-2xx is
retried after the visibility timeout and, after 8 attempts, parks in ``ForwardDLQ`` (alarmed)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Protocol

from tsunagu.intake.webhook import forward_message


class Keys(Protocol):
    def key(self, account_id: str) -> bytes: ...


class Queue(Protocol):
    def send(self, route: str, bodies: list[str]) -> int: ...


def signature(key: bytes, body: bytes) -> str:
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


@dataclass
class QueuedCarrierWebhook:
    queue: Queue
    keys: Keys

    def announce(self, account_id: str, url: str, body: bytes) -> None:
        sig = signature(self.keys.key(account_id), body)
        self.queue.send("forward", [forward_message(account_id, url, body, sig, int(time.time() * 1000))])
