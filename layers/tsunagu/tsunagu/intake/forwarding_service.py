"""Relay a verified webhook, byte for byte with LINE's signature, to one downstream URL.
Non-2xx or a network error fails the record, so SQS retries it and finally parks it in the
forward DLQ; a URL the SSRF guard refuses is dropped (retrying cannot make it allowed)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tsunagu.errors import UpstreamError, ValidationFailed
from tsunagu.intake.forwarding import check_target
from tsunagu.intake.ports import WebhookRelay


class ForwardFailed(UpstreamError):
    code = "forward_failed"


@dataclass
class ForwardingService:
    relay: WebhookRelay
    resolve: Callable[[str], list[str]]
    allow_private: bool = False

    def forward(self, msg: dict[str, Any]) -> str:
        url = str(msg["url"])
        try:
            check_target(url, self.resolve(urlsplit(url).hostname or ""), self.allow_private)
        except (ValidationFailed, ValueError):  # ValueError: a URL urlsplit cannot read
            return "refused"
        status = self.relay.post(url, base64.b64decode(msg["body"]), str(msg["signature"]))
        if 200 <= status < 300:
            return "forwarded"
        raise ForwardFailed(f"downstream answered {status}")
