"""The messaging stores: friend state (exactly once per webhook event) and the 1:1 chat archive."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from tsunagu import keys
from tsunagu.infrastructure.dynamodb import Repository, condition_failed, from_item, to_item, update_op
from tsunagu.messaging.chats import ChatMessage
from tsunagu.messaging.friendship import FriendSnapshot, FriendState, Transition


class DynamoFriendStore(Repository):
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
                update_op(
                    self.table,
                    keys.friend_counts(account_id),
                    "ADD friends :f, blocked :b SET entity = :e",
                    {":f": t.friends_delta, ":b": t.blocked_delta, ":e": "friend_counts"},
                )
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


class DynamoChatArchive(Repository):
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
            if condition_failed(e):
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
