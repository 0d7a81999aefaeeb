"""The intake stores: webhook events no worker acts on yet, and the forward targets cache."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tsunagu import keys
from tsunagu.infrastructure.dynamodb import Repository, to_item, update_op

if TYPE_CHECKING:
    from tsunagu.accounts.store import DynamoAccountStore


class DynamoEventStore(Repository):
    """Webhook events no worker acts on yet (and unknown kinds): kept once and counted."""

    def __init__(self, table: str, retention_days: int = 90):
        self.table = table
        self.retention_days = retention_days

    def keep(self, account_id: str, event: dict[str, Any]) -> bool:
        event_id = str(event.get("webhookEventId") or "")[:100]  # LINE's ids are 26 characters
        kind = str(event.get("type") or "unknown")[:100]
        ts = event.get("timestamp")
        ts = int(ts) if isinstance(ts, int) and not isinstance(ts, bool) and 0 <= ts < 10**15 else 0
        now = int(datetime.now(UTC).timestamp())
        # DynamoDB takes no float: numbers become Decimal, NaN / Infinity their names.
        stored = json.loads(json.dumps(event), parse_float=Decimal, parse_constant=str)
        item = {
            **keys.stored_event(account_id, kind, ts, event_id),
            "entity": "stored_event",
            "event_type": kind,
            "event": stored,
            "expires_at": now + self.retention_days * 86_400,
        }
        return self._transact_once(
            [
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": to_item(
                            {
                                **keys.webhook_event(account_id, event_id),
                                "entity": "webhook_event",
                                "expires_at": now + 7 * 86_400,
                            }
                        ),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
                {"Put": {"TableName": self.table, "Item": to_item(item)}},
                update_op(
                    self.table,
                    keys.event_counts(account_id),
                    "ADD #k :one SET entity = :e",
                    {":one": 1, ":e": "event_counts"},
                    names={"#k": kind},
                ),
            ]
        )

    def counts(self, account_id: str) -> dict[str, int]:
        return self._counters(keys.event_counts(account_id))


class CachedForwardTargets:
    """An account's forward URLs for the webhook intake, cached briefly per warm container
    so the hot path reads the account at most once a minute."""

    def __init__(self, accounts: DynamoAccountStore, ttl_seconds: float = 60.0):
        self.accounts = accounts
        self.ttl = ttl_seconds
        self._cache: dict[str, tuple[float, list[str]]] = {}

    def urls(self, account_id: str) -> list[str]:
        now = time.monotonic()
        hit = self._cache.get(account_id)
        if hit and hit[0] > now:
            return hit[1]
        profile = self.accounts.profile(account_id)
        urls = list(profile.forward_urls) if profile else []
        self._cache[account_id] = (now + self.ttl, urls)
        return urls
