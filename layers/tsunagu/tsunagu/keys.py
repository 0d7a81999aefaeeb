"""Every DynamoDB key string tsunagu writes is built here, and nowhere else.

The access patterns these keys serve are listed in ``docs/data-model.md``.
"""

from __future__ import annotations

ACCOUNTS_INDEX_PK = "ACCOUNTS"


def account(account_id: str) -> dict[str, str]:
    """The account (one LINE OA) and its settings."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": "ACCOUNT"}


def account_index(account_id: str, created_at: str) -> dict[str, str]:
    """GSI1 entry that lists every account (for schedules that walk all accounts)."""
    return {"GSI1PK": ACCOUNTS_INDEX_PK, "GSI1SK": f"{created_at}#{account_id}"}


def account_partition(account_id: str) -> str:
    return f"ACCOUNT#{account_id}"


def friend(account_id: str, user_id: str) -> dict[str, str]:
    """One LINE user's friendship with one account."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"FRIEND#{user_id}"}


FRIEND_SK_PREFIX = "FRIEND#"


def friend_counts(account_id: str) -> dict[str, str]:
    """Running friend / blocked counters of one account (updated with ADD)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": "COUNTS#FRIENDS"}


def friend_stats_day(account_id: str, day: str) -> dict[str, str]:
    """Daily snapshot of the friend counters (``day`` is a JST date, YYYY-MM-DD)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"STATS#FRIENDS#{day}"}


def webhook_event(account_id: str, webhook_event_id: str) -> dict[str, str]:
    """Marker that an event's state change has been applied (exactly-once on webhookEventId)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": f"EVENT#{webhook_event_id}"}


def chat_partition(account_id: str, user_id: str) -> str:
    return f"ACCOUNT#{account_id}#CHAT#{user_id}"


CHAT_SK_PREFIX = "MSG#"


def chat_message(account_id: str, user_id: str, timestamp_ms: int, message_id: str) -> dict[str, str]:
    """One archived 1:1 chat message: by time inside the user's history (table), and by time
    across all of the account's chats (GSI1)."""
    return {
        "PK": chat_partition(account_id, user_id),
        "SK": f"{CHAT_SK_PREFIX}{timestamp_ms:013d}#{message_id}",
        "GSI1PK": chats_index(account_id),
        "GSI1SK": f"{timestamp_ms:013d}#{user_id}#{message_id}",
    }


def chats_index(account_id: str) -> str:
    return f"ACCOUNT#{account_id}#CHATS"


def chat_message_pointer(account_id: str, user_id: str, message_id: str) -> dict[str, str]:
    """message id -> the message's sort key (an ``unsend`` event names only the id)."""
    return {"PK": chat_partition(account_id, user_id), "SK": f"MSGID#{message_id}"}


def stored_event(account_id: str, event_type: str, timestamp_ms: int, event_id: str) -> dict[str, str]:
    """A webhook event kept as received (kinds no worker acts on yet, unknown kinds)."""
    return {"PK": f"ACCOUNT#{account_id}#EVENTS", "SK": f"{event_type}#{timestamp_ms:013d}#{event_id}"}


def event_counts(account_id: str) -> dict[str, str]:
    """Per-type counters of stored events (ADD)."""
    return {"PK": f"ACCOUNT#{account_id}", "SK": "COUNTS#EVENTS"}
