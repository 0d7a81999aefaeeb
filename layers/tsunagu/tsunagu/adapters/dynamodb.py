"""DynamoDB repositories over the single table. Items map to domain models here; a failed
conditional write becomes a domain error (or a False result) here, never in a handler."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from tsunagu import keys
from tsunagu.adapters.aws import client
from tsunagu.domain.chats import ChatMessage
from tsunagu.domain.friendship import FriendSnapshot, FriendState, Transition
from tsunagu.domain.profile import AccountProfile
from tsunagu.errors import Conflict, NotFound

if TYPE_CHECKING:
    from tsunagu.domain.accounts import Account, AccountSettings

_ser = TypeSerializer()
_de = TypeDeserializer()


def to_item(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in d.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _de.deserialize(v) for k, v in item.items()}


def _condition_failed(e: ClientError) -> bool:
    return e.response["Error"]["Code"] in ("ConditionalCheckFailedException", "TransactionCanceledException")


def only_conflicts(e: ClientError) -> bool:
    """A cancelled transaction that no condition refused: another transaction was in the way."""
    reasons = [r.get("Code") for r in e.response.get("CancellationReasons") or []]
    return (
        e.response["Error"]["Code"] == "TransactionCanceledException"
        and "ConditionalCheckFailed" not in reasons
        and "TransactionConflict" in reasons
    )


class _Repository:
    table: str

    @property
    def db(self) -> Any:
        return client("dynamodb")

    def _transact_once(self, items: list[dict[str, Any]], conflict_retries: int = 8) -> bool:
        """Run a transaction whose conditions make it happen at most once; False when a
        condition failed (already done, or changed meanwhile). A ``TransactionConflict`` (another
        transaction held one of the items - common on a busy counter) wrote nothing: it is
        retried with a short jittered backoff, never mistaken for "already done"."""
        for attempt in range(conflict_retries + 1):
            try:
                self.db.transact_write_items(TransactItems=items)
                return True
            except ClientError as e:
                if not _condition_failed(e):
                    raise
                if not only_conflicts(e) or attempt == conflict_retries:
                    if only_conflicts(e):
                        raise
                    return False
            time.sleep(random.uniform(0, 0.01 * 2**attempt))  # noqa: S311 - jitter, not crypto
        return False

    def _get(self, key: dict[str, str], consistent: bool = True) -> dict[str, Any] | None:
        r = self.db.get_item(TableName=self.table, Key=to_item(key), ConsistentRead=consistent)
        return from_item(r["Item"]) if "Item" in r else None

    def _put_if(self, item: dict[str, Any], condition: str, values: dict[str, Any] | None = None) -> bool:
        """A conditional put; False when the condition failed."""
        kwargs: dict[str, Any] = {"ConditionExpression": condition}
        if values:
            kwargs["ExpressionAttributeValues"] = to_item(values)
        try:
            self.db.put_item(TableName=self.table, Item=to_item(item), **kwargs)
        except ClientError as e:
            if _condition_failed(e):
                return False
            raise
        return True

    def _counters(self, key: dict[str, str]) -> dict[str, int]:
        """A counter item (numbers changed with ADD) as a plain dict."""
        r = self.db.get_item(TableName=self.table, Key=to_item(key), ConsistentRead=True)
        d = from_item(r.get("Item", {}))
        return {k: int(v) for k, v in d.items() if k not in ("PK", "SK", "entity")}


class DynamoAccountStore(_Repository):
    def __init__(self, table: str):
        self.table = table

    def create(self, account: Account, api_key_hash: str) -> None:
        created = account.created_at.isoformat()
        item = {
            **keys.account(account.account_id),
            **keys.account_index(account.account_id, created),
            "entity": "account",
            "account_id": account.account_id,
            "settings": account.settings.model_dump(mode="json"),
            "api_key_hash": api_key_hash,
            "channel_configured": False,
            "created_at": created,
            "updated_at": account.updated_at.isoformat(),
            "version": account.version,
        }
        try:
            self.db.put_item(TableName=self.table, Item=to_item(item), ConditionExpression="attribute_not_exists(PK)")
        except ClientError as e:
            if _condition_failed(e):
                raise Conflict("account already exists", code="account_exists") from None
            raise

    def get(self, account_id: str) -> tuple[Account, str] | None:
        r = self.db.get_item(TableName=self.table, Key=to_item(keys.account(account_id)), ConsistentRead=True)
        if "Item" not in r:
            return None
        d = from_item(r["Item"])
        return _account(d), d["api_key_hash"]

    def update_settings(self, account_id: str, settings: AccountSettings, expected_version: int) -> Account:
        now = datetime.now(UTC).isoformat()
        try:
            r = self.db.update_item(
                TableName=self.table,
                Key=to_item(keys.account(account_id)),
                UpdateExpression="SET #s = :s, updated_at = :now, version = version + :one",
                ConditionExpression="attribute_exists(PK) AND version = :v",
                ExpressionAttributeNames={"#s": "settings"},
                ExpressionAttributeValues=to_item(
                    {":s": settings.model_dump(mode="json"), ":now": now, ":one": 1, ":v": expected_version}
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError as e:
            if _condition_failed(e):
                raise Conflict(
                    "the account changed while it was being updated; read it again and retry",
                    code="concurrent_update",
                ) from None
            raise
        return _account(from_item(r["Attributes"]))

    def mark_channel_configured(self, account_id: str) -> None:
        try:
            self.db.update_item(
                TableName=self.table,
                Key=to_item(keys.account(account_id)),
                UpdateExpression="SET channel_configured = :t, updated_at = :now",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeValues=to_item({":t": True, ":now": datetime.now(UTC).isoformat()}),
            )
        except ClientError as e:
            if _condition_failed(e):
                raise NotFound("account not found") from None
            raise

    def profile(self, account_id: str) -> AccountProfile | None:
        """The settings workers need, without pydantic (validated when the API stored them)."""
        r = self.db.get_item(
            TableName=self.table,
            Key=to_item(keys.account(account_id)),
            ProjectionExpression="account_id, settings",
        )
        if "Item" not in r:
            return None
        d = from_item(r["Item"])
        return AccountProfile.from_settings(d["account_id"], d.get("settings") or {})

    def list_ids(self) -> list[str]:
        ids: list[str] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "GSI1",
            "KeyConditionExpression": "GSI1PK = :pk",
            "ExpressionAttributeValues": to_item({":pk": keys.ACCOUNTS_INDEX_PK}),
            "ProjectionExpression": "account_id",
        }
        while True:
            r = self.db.query(**kwargs)
            ids += [from_item(i)["account_id"] for i in r.get("Items", [])]
            if "LastEvaluatedKey" not in r:
                return ids
            kwargs["ExclusiveStartKey"] = r["LastEvaluatedKey"]


def _account(d: dict[str, Any]) -> Account:
    # pydantic is imported only where an API needs the full, validated model.
    from tsunagu.domain.accounts import Account, AccountSettings

    return Account(
        account_id=d["account_id"],
        settings=AccountSettings.model_validate(d["settings"]),
        channel_configured=bool(d.get("channel_configured")),
        created_at=datetime.fromisoformat(d["created_at"]),
        updated_at=datetime.fromisoformat(d["updated_at"]),
        version=int(d.get("version", 1)),
    )


class DynamoFriendStore(_Repository):
    """Friend state with exactly-once application per webhookEventId.

    One TransactWriteItems holds: the event marker (must not exist), the friend item
    (conditioned on the version we read: optimistic concurrency) and the counter ADDs. So a
    redelivered event, a duplicate SQS message or a concurrent older event cannot double-count."""

    def __init__(self, table: str, marker_ttl_seconds: int = 7 * 86_400):
        self.table = table
        self.marker_ttl = marker_ttl_seconds

    def get(self, account_id: str, user_id: str) -> FriendSnapshot | None:
        r = self.db.get_item(TableName=self.table, Key=to_item(keys.friend(account_id, user_id)), ConsistentRead=True)
        if "Item" not in r:
            return None
        d = from_item(r["Item"])
        return FriendSnapshot(FriendState(d["state"]), int(d["since_ms"]), int(d["last_event_ms"]))

    def apply(
        self, account_id: str, user_id: str, event_id: str, previous: FriendSnapshot | None, t: Transition
    ) -> bool:
        """Apply ``t``; False when the event was already applied or the friend changed meanwhile."""
        now = datetime.now(UTC)
        friend_item = {
            **keys.friend(account_id, user_id),
            "entity": "friend",
            "user_id": user_id,
            "state": t.new.state.value,
            "since_ms": t.new.since_ms,
            "last_event_ms": t.new.last_event_ms,
            "updated_at": now.isoformat(),
        }
        put_friend: dict[str, Any] = {"TableName": self.table, "Item": to_item(friend_item)}
        if previous is None:
            put_friend["ConditionExpression"] = "attribute_not_exists(PK)"
        else:
            put_friend["ConditionExpression"] = "last_event_ms = :prev"
            put_friend["ExpressionAttributeValues"] = to_item({":prev": previous.last_event_ms})
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": to_item(
                        {
                            **keys.webhook_event(account_id, event_id),
                            "entity": "webhook_event",
                            "expires_at": int(now.timestamp()) + self.marker_ttl,
                        }
                    ),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            {"Put": put_friend},
        ]
        if t.friends_delta or t.blocked_delta:
            items.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": to_item(keys.friend_counts(account_id)),
                        "UpdateExpression": "ADD friends :f, blocked :b SET entity = :e",
                        "ExpressionAttributeValues": to_item(
                            {":f": t.friends_delta, ":b": t.blocked_delta, ":e": "friend_counts"}
                        ),
                    }
                }
            )
        return self._transact_once(items)

    def counts(self, account_id: str) -> dict[str, int]:
        return {"friends": 0, "blocked": 0} | self._counters(keys.friend_counts(account_id))

    def event_applied(self, account_id: str, event_id: str) -> bool:
        r = self.db.get_item(TableName=self.table, Key=to_item(keys.webhook_event(account_id, event_id)))
        return "Item" in r

    def list(
        self, account_id: str, limit: int = 100, start: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :sk)",
            "ExpressionAttributeValues": to_item(
                {":pk": keys.account_partition(account_id), ":sk": keys.FRIEND_SK_PREFIX}
            ),
            "Limit": limit,
        }
        if start:
            kwargs["ExclusiveStartKey"] = to_item(keys.friend(account_id, start))
        r = self.db.query(**kwargs)
        rows = [from_item(i) for i in r.get("Items", [])]
        nxt = (
            from_item(r["LastEvaluatedKey"])["SK"].removeprefix(keys.FRIEND_SK_PREFIX)
            if "LastEvaluatedKey" in r
            else None
        )
        return rows, nxt

    def put_daily_snapshot(self, account_id: str, day: str, counts: dict[str, int]) -> None:
        self.db.put_item(
            TableName=self.table,
            Item=to_item({**keys.friend_stats_day(account_id, day), "entity": "friend_stats", "day": day, **counts}),
        )


class DynamoChatArchive(_Repository):
    """1:1 chat history. A message and its id pointer are written together, once."""

    def __init__(self, table: str):
        self.table = table

    def put(self, account_id: str, m: ChatMessage, retention_days: int) -> bool:
        """Archive ``m``; False if it was archived already (a redelivery)."""
        expires = int(datetime.now(UTC).timestamp()) + retention_days * 86_400
        key = keys.chat_message(account_id, m.user_id, m.timestamp_ms, m.message_id)
        item = {
            **key,
            "entity": "chat_message",
            "user_id": m.user_id,
            "timestamp_ms": m.timestamp_ms,
            "message_id": m.message_id,
            "direction": m.direction,
            "kind": m.kind,
            "content": m.content,
            "origin": m.origin,
            "expires_at": expires,
        }
        pointer = {
            **keys.chat_message_pointer(account_id, m.user_id, m.message_id),
            "entity": "chat_pointer",
            "msg_sk": key["SK"],
            "expires_at": expires,
        }
        return self._transact_once(
            [
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": to_item(item),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": to_item(pointer),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
            ]
        )

    def mark_unsent(self, account_id: str, user_id: str, message_id: str) -> bool:
        """LINE's ``unsend``: blank the archived content, keep that a message existed."""
        r = self.db.get_item(
            TableName=self.table, Key=to_item(keys.chat_message_pointer(account_id, user_id, message_id))
        )
        if "Item" not in r:
            return False
        sk = from_item(r["Item"])["msg_sk"]
        try:
            self.db.update_item(
                TableName=self.table,
                Key=to_item({"PK": keys.chat_partition(account_id, user_id), "SK": sk}),
                UpdateExpression="SET unsent = :t, content = :empty",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeValues=to_item({":t": True, ":empty": ""}),
            )
        except ClientError as e:
            if _condition_failed(e):
                return False
            raise
        return True

    def page(
        self,
        account_id: str,
        user_id: str | None,
        since_ms: int | None,
        until_ms: int | None,
        limit: int,
        cursor: dict[str, Any] | None,
    ) -> tuple[list[ChatMessage], dict[str, Any] | None]:
        """One page of messages in time order: one user's (table) or all users' (GSI1)."""
        lo = f"{since_ms or 0:013d}"
        hi = f"{(until_ms or 10**13 - 1):013d}"
        kwargs: dict[str, Any] = {"TableName": self.table, "Limit": limit}
        if user_id:
            kwargs["KeyConditionExpression"] = "PK = :pk AND SK BETWEEN :lo AND :hi"
            kwargs["ExpressionAttributeValues"] = to_item(
                {
                    ":pk": keys.chat_partition(account_id, user_id),
                    ":lo": f"{keys.CHAT_SK_PREFIX}{lo}",
                    ":hi": f"{keys.CHAT_SK_PREFIX}{hi}~",
                }
            )
        else:
            kwargs["IndexName"] = "GSI1"
            kwargs["KeyConditionExpression"] = "GSI1PK = :pk AND GSI1SK BETWEEN :lo AND :hi"
            kwargs["ExpressionAttributeValues"] = to_item(
                {":pk": keys.chats_index(account_id), ":lo": lo, ":hi": f"{hi}~"}
            )
        if cursor:
            kwargs["ExclusiveStartKey"] = to_item(cursor)
        r = self.db.query(**kwargs)
        rows = [from_item(i) for i in r.get("Items", [])]
        out = [
            ChatMessage(
                user_id=d["user_id"],
                timestamp_ms=int(d["timestamp_ms"]),
                message_id=d["message_id"],
                direction=d["direction"],
                kind=d["kind"],
                content=d.get("content", ""),
                origin=d["origin"],
                unsent=bool(d.get("unsent")),
            )
            for d in rows
        ]
        nxt = from_item(r["LastEvaluatedKey"]) if "LastEvaluatedKey" in r else None
        return out, nxt


class DynamoEventStore(_Repository):
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
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": to_item(keys.event_counts(account_id)),
                        "UpdateExpression": "ADD #k :one SET entity = :e",
                        "ExpressionAttributeNames": {"#k": kind},
                        "ExpressionAttributeValues": to_item({":one": 1, ":e": "event_counts"}),
                    }
                },
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
