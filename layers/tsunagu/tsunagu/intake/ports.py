"""What webhook intake depends on, as Protocols: the fan-out queues, forward targets, the relay
to other tools and the store of events no worker acts on."""

from __future__ import annotations

from typing import Any, Protocol


class EventStore(Protocol):
    def keep(self, account_id: str, event: dict[str, Any]) -> bool: ...


class ForwardTargets(Protocol):
    def urls(self, account_id: str) -> list[str]: ...


class EventQueues(Protocol):
    def send(self, route: str, bodies: list[str]) -> int: ...


class WebhookRelay(Protocol):
    def post(self, url: str, body: bytes, signature: str) -> int: ...
