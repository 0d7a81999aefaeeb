"""Webhook intake: verify, parse, fan out one queue message per event. No business work, no
call to LINE (LINE times out after 2 s). Implements line-platform.md 1.1-1.6."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

from tsunagu.accounts.ids import is_account_id
from tsunagu.accounts.ports import ChannelSecrets
from tsunagu.errors import NotFound, PayloadTooLarge
from tsunagu.intake.ports import EventQueues, ForwardTargets
from tsunagu.intake.webhook import build_entries, forward_message, parse_envelope, verify_signature


@dataclass(frozen=True, slots=True)
class IntakeResult:
    events: int
    batch_calls: int


@dataclass
class WebhookIntake:
    secrets: ChannelSecrets
    queues: EventQueues
    forwards: ForwardTargets | None = None
    max_body_bytes: int = 1_048_576

    def accept(self, account_id: str, body: bytes, signature: str | None, origin: str | None = None) -> IntakeResult:
        if len(body) > self.max_body_bytes:
            raise PayloadTooLarge("webhook body too large")
        # The channel secret is the account's existence check too: an account without channel
        # credentials cannot receive webhooks, and no table read is needed on the hot path.
        secret = self.secrets.channel_secret(account_id) if is_account_id(account_id) else None
        if secret is None:
            raise NotFound("unknown account", code="unknown_account")
        verify_signature(body, signature, secret)
        envelope = parse_envelope(body)
        received = int(time.time() * 1000)
        by_route: dict[str, list[str]] = defaultdict(list)
        for entry in build_entries(account_id, envelope, received, origin):
            by_route[entry.route].append(entry.body)
        if self.forwards is not None:
            # Relay the exact bytes and LINE's signature, one queue message per downstream URL
            # so each retries on its own.
            assert signature is not None
            for url in self.forwards.urls(account_id):
                by_route["forward"].append(forward_message(account_id, url, body, signature, received))
        calls = sum(self.queues.send(route, bodies) for route, bodies in by_route.items())
        return IntakeResult(events=len(envelope.events), batch_calls=calls)
