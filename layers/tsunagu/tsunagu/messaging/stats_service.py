"""Daily friend-count snapshot per account (the scheduled job): LINE's own statistics lag a
day; this keeps tsunagu's history of friends and blocks per JST day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from tsunagu.accounts.ports import AccountStore
from tsunagu.messaging.ports import FriendStore

JST = timezone(timedelta(hours=9))


@dataclass
class FriendStatsService:
    accounts: AccountStore
    friends: FriendStore

    def snapshot(self, now: datetime | None = None) -> dict[str, int]:
        day = (now or datetime.now(JST)).astimezone(JST).date().isoformat()
        n = 0
        for account_id in self.accounts.list_ids():
            counts = self.friends.counts(account_id)
            self.friends.put_daily_snapshot(account_id, day, counts)
            n += 1
        return {"accounts": n}
