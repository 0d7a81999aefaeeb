"""The usage ledger's vocabulary: message kinds, which are billable (R-MSG-2), the JST month a
send belongs to, and the shard of the month's counters a send is added to.

Every message tsunagu sends is one ledger entry, keyed by its send id (so a retried send is
counted once), with its kind and recipient count; per account-month counters are kept beside
it, split over a few shards so a busy month is not one hot item."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta, timezone

JST = timezone(timedelta(hours=9), "JST")

# R-MSG-2: counted ("billable") messages vs free ones. A LINE notification message is billed
# separately from the plan's messages, and only when delivered (line-platform.md 4.6).
BILLABLE_KINDS = frozenset({"push", "multicast", "broadcast", "narrowcast", "step"})
FREE_KINDS = frozenset({"reply", "greeting", "auto_response", "chat"})
SEPARATE_KINDS = frozenset({"notification"})
KINDS = BILLABLE_KINDS | FREE_KINDS | SEPARATE_KINDS

DEFAULT_SHARDS = 8


def is_billable(kind: str) -> bool:
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    return kind in BILLABLE_KINDS


def month_of(at_ms: int) -> str:
    """The JST month (``YYYY-MM``) a send at ``at_ms`` (epoch milliseconds) belongs to."""
    return datetime.fromtimestamp(at_ms / 1000, UTC).astimezone(JST).strftime("%Y-%m")


def shard_of(send_id: str, shards: int = DEFAULT_SHARDS) -> int:
    return zlib.crc32(send_id.encode()) % max(1, shards)
