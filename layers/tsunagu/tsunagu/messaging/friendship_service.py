"""Friendship worker use case: follow / unfollow keep friend state and counts, exactly once per
webhookEventId, newest event wins (see tsunagu.messaging.friendship)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tsunagu.errors import NotFound, ValidationFailed
from tsunagu.messaging.friendship import apply_event
from tsunagu.messaging.ports import FriendStore
from tsunagu.messaging.reply_service import ReplyService

if TYPE_CHECKING:
    from tsunagu.messaging.ports import FriendDirectory

MAX_OPTIMISTIC_RETRIES = 5


@dataclass
class FriendshipService:
    store: FriendStore
    replies: ReplyService | None = None
    # Coupons marked grant-on-follow (issue 6); grants are once per person, so a redelivered
    # follow may call it again safely - and must, if the first attempt failed after the state.
    on_follow: Callable[[str, str], Any] | None = None

    def handle(self, account_id: str, event: dict[str, Any], received_at_ms: int = 0) -> str:
        """Apply one follow/unfollow event; returns what happened (for logs and metrics).

        A follow that is applied (not a duplicate, not stale) earns the greeting (R-MSG-2: free
        reply). A duplicate does not greet again, so the greeting is sent at most once."""
        outcome = self._apply(account_id, event)
        if outcome == "applied" and event.get("type") == "follow" and self.replies is not None:
            self.replies.handle(account_id, event, received_at_ms)
        if event.get("type") == "follow" and self.on_follow is not None and outcome != "ignored":
            if outcome == "applied" or self.store.event_applied(account_id, event["webhookEventId"]):
                self.on_follow(account_id, event["source"]["userId"])
        return outcome

    def _apply(self, account_id: str, event: dict[str, Any]) -> str:
        user_id = (event.get("source") or {}).get("userId")
        event_id = event.get("webhookEventId")
        if event.get("type") not in ("follow", "unfollow") or not user_id or not event_id:
            return "ignored"
        ts = int(event.get("timestamp", 0))
        for _ in range(MAX_OPTIMISTIC_RETRIES):
            current = self.store.get(account_id, user_id)
            transition = apply_event(current, event["type"], ts)
            if transition is None:
                return "stale"
            if self.store.apply(account_id, user_id, event_id, current, transition):
                return "applied"
            # Either the event was applied already (duplicate) or the friend changed under us.
            if self.store.event_applied(account_id, event_id):
                return "duplicate"
        raise RuntimeError("friend state kept changing; the record will be retried")


def _friend_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "user_id": row["user_id"],
        "state": row["state"],
        "since_ms": int(row["since_ms"]),
        "last_event_ms": int(row["last_event_ms"]),
    }


@dataclass
class FriendQuery:
    """Read side for the API: one friend, a page of friends, and the account's counts."""

    store: FriendDirectory

    def page(self, account_id: str, limit: int | str | None, after: str | None) -> dict[str, Any]:
        try:
            n = max(1, min(int(limit or 100), 500))
        except ValueError:
            raise ValidationFailed("limit must be a whole number", code="invalid_limit") from None
        rows, nxt = self.store.list(account_id, n, after)
        return {"friends": [_friend_view(r) for r in rows], "next": nxt, "counts": self.store.counts(account_id)}

    def one(self, account_id: str, user_id: str) -> dict[str, Any]:
        snap = self.store.get(account_id, user_id)
        if snap is None:
            raise NotFound("no such friend", code="friend_not_found")
        return {
            "user_id": user_id,
            "state": snap.state.value,
            "since_ms": snap.since_ms,
            "last_event_ms": snap.last_event_ms,
        }
