"""Events no worker acts on yet (accountLink and delivery until the linking and notification
issues consume them; unknown or future types always): kept once, redacted, and counted -
never lost, never a crash (LINE adds event types without notice)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tsunagu.intake.ports import EventStore
from tsunagu.intake.webhook import redacted_for_storage


@dataclass
class EventStoreService:
    store: EventStore

    def keep(self, account_id: str, event: dict[str, Any]) -> str:
        if not event.get("webhookEventId"):
            return "ignored"
        return "kept" if self.store.keep(account_id, redacted_for_storage(event)) else "duplicate"
