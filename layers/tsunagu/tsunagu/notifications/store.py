"""Notification templates, batches and notifications in DynamoDB.

A notification's state changes are conditional updates on its revision number (``rev``), so a
sender, the delivery worker and the 24-hour sweep can race without losing or repeating a
transition; the send claim carries a lease, so a sender that died mid-call is taken over once the
lease expires. The usage ledger entry of a send is written in the same transaction as ``sent``."""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from tsunagu import keys
from tsunagu.billing.usage import DEFAULT_SHARDS, month_of, shard_of
from tsunagu.billing.usage_store import counter_update, ledger_items
from tsunagu.infrastructure.dynamodb import Repository, condition_failed, from_item, to_item, update_op
from tsunagu.notifications import domain as n


def _now_ms() -> int:
    return int(time.time() * 1000)


def hour_of(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, UTC).strftime("%Y%m%d%H")


def _cancelled_first(e: ClientError) -> bool:
    """The transaction's first item (the notification) is the condition that failed."""
    reasons = e.response.get("CancellationReasons") or []
    return bool(reasons) and reasons[0].get("Code") == "ConditionalCheckFailed"


def _encode(item: dict[str, Any]) -> dict[str, Any]:
    """A template's LINE content is stored as JSON text: DynamoDB would turn its numbers into
    Decimal (and refuse floats), and LINE must get back exactly what was approved."""
    if "content" not in item:
        return item
    out = {k: v for k, v in item.items() if k != "content"}
    out["content_json"] = json.dumps(item["content"], ensure_ascii=False, separators=(",", ":"))
    return out


def _decode(item: dict[str, Any] | None) -> dict[str, Any] | None:
    if item is None or "content_json" not in item:
        return item
    out = {k: v for k, v in item.items() if k != "content_json"}
    out["content"] = json.loads(item["content_json"])
    return out


class DynamoNotificationStore(Repository):
    def __init__(self, table: str, shards: int = DEFAULT_SHARDS):
        self.table = table
        self.shards = shards

    # ------------------------------------------------------------------ templates
    def put_template(self, account_id: str, tpl: dict[str, Any], expected_version: int | None = None) -> bool:
        """Create (``expected_version`` None) or replace a template; False on a lost race."""
        item = _encode(
            {**keys.notification_template(account_id, tpl["template_id"]), "entity": "notification_template", **tpl}
        )
        if expected_version is None:
            return self._put_if(item, "attribute_not_exists(PK)")
        return self._put_if(item, "version = :v", {":v": expected_version})

    def template(self, account_id: str, template_id: str) -> dict[str, Any] | None:
        return _decode(self._get(keys.notification_template(account_id, template_id)))

    def templates(self, account_id: str) -> list[dict[str, Any]]:
        rows = self._query_prefix(keys.account_partition(account_id), keys.NTEMPLATE_SK_PREFIX)
        return [t for t in map(_decode, rows) if t is not None]

    def _query_prefix(
        self, pk: str, prefix: str, limit: int = 1000, newest_first: bool = False
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :p)",
            "ExpressionAttributeValues": to_item({":pk": pk, ":p": prefix}),
            "ScanIndexForward": not newest_first,
        }
        while len(out) < limit:
            r = self.db.query(**kwargs, Limit=limit - len(out))
            out += [from_item(i) for i in r.get("Items", [])]
            if "LastEvaluatedKey" not in r:
                break
            kwargs["ExclusiveStartKey"] = r["LastEvaluatedKey"]
        return out

    # ------------------------------------------------------------------ batches
    def put_batch(self, account_id: str, batch: dict[str, Any]) -> None:
        item = {**keys.notification_batch(account_id, batch["batch_id"]), "entity": "notification_batch", **batch}
        self.db.put_item(TableName=self.table, Item=to_item(_encode(item)))

    def batch(self, account_id: str, batch_id: str) -> dict[str, Any] | None:
        return _decode(self._get(keys.notification_batch(account_id, batch_id)))

    def batches(self, account_id: str, limit: int) -> list[dict[str, Any]]:
        rows = self._query_prefix(keys.account_partition(account_id), keys.NBATCH_SK_PREFIX, limit, newest_first=True)
        return [b for b in map(_decode, rows) if b is not None]

    def batch_notifications(self, account_id: str, batch_id: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "GSI1",
            "KeyConditionExpression": "GSI1PK = :pk",
            "ExpressionAttributeValues": to_item({":pk": keys.notification_batch_index(account_id, batch_id)}),
        }
        return out + self._query_pages(kwargs)

    # ------------------------------------------------------------------ notifications
    def add(self, account_id: str, batch_id: str, seq: int, accepted: n.AcceptedItem, extra: dict[str, Any]) -> bool:
        """Store a new notification; False when its reference (tag) is already known."""
        item = {
            **keys.notification(account_id, accepted.tag, batch_id, seq),
            "entity": "notification",
            "account_id": account_id,
            "batch_id": batch_id,
            "seq": seq,
            "reference": accepted.reference,
            "tag": accepted.tag,
            "region": accepted.region,
            "state": n.ACCEPTED,
            "rev": 1,
            "attempts": 0,
            "accepted_at": _now_ms(),
            **extra,
        }
        return self._put_if(item, "attribute_not_exists(PK)")

    def get(self, account_id: str, tag: str) -> dict[str, Any] | None:
        return self._get(keys.notification_key(account_id, tag))

    def claim(self, account_id: str, tag: str, lease_ms: int) -> tuple[str | None, dict[str, Any] | None]:
        """Take the right to send: (claim id, item) when taken; (None, current item) when the
        notification is already sent / final, or another sender holds an unexpired lease."""
        now = _now_ms()
        claim = secrets.token_hex(8)
        try:
            r = self.db.update_item(
                TableName=self.table,
                Key=to_item(keys.notification_key(account_id, tag)),
                UpdateExpression="SET #s = :sending, lease_until = :lease, claim = :c ADD rev :one, attempts :one",
                ConditionExpression="#s = :accepted OR (#s = :sending AND lease_until < :now)",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=to_item(
                    {
                        ":sending": n.SENDING,
                        ":accepted": n.ACCEPTED,
                        ":lease": now + lease_ms,
                        ":now": now,
                        ":c": claim,
                        ":one": 1,
                    }
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError as e:
            if condition_failed(e):
                return None, self.get(account_id, tag)
            raise
        return claim, from_item(r["Attributes"])

    def _update_claimed(self, account_id: str, tag: str, claim: str, expr: str, values: dict[str, Any]) -> bool:
        try:
            self.db.update_item(
                TableName=self.table,
                Key=to_item(keys.notification_key(account_id, tag)),
                UpdateExpression=expr + " REMOVE lease_until, claim",
                ConditionExpression="#s = :sending AND claim = :c",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=to_item({**values, ":sending": n.SENDING, ":c": claim, ":one": 1}),
            )
        except ClientError as e:
            if condition_failed(e):
                return False
            raise
        return True

    def release(self, account_id: str, tag: str, claim: str, error: str) -> bool:
        """Give the claim back after a retryable failure (5xx, timeout): sendable again."""
        return self._update_claimed(
            account_id,
            tag,
            claim,
            "SET #s = :accepted, last_error = :err ADD rev :one",
            {":accepted": n.ACCEPTED, ":err": error},
        )

    def fail(self, account_id: str, tag: str, claim: str, reason: str, status: int, route: str) -> bool:
        """LINE refused it (4xx): final, with the reason."""
        return self._update_claimed(
            account_id,
            tag,
            claim,
            "SET #s = :failed, reason = :r, line_status = :st, failed_at = :at, route = :route ADD rev :one",
            {":failed": n.FAILED, ":r": reason, ":st": status, ":at": _now_ms(), ":route": route},
        )

    def mark_sent(
        self, account_id: str, tag: str, claim: str, route: str, ledger_kind: str, send_id: str, at_ms: int
    ) -> str:
        """LINE accepted it: ``sent`` (a notification message also starts waiting for its
        delivery event) and one usage-ledger entry, in one transaction. When the delivery event
        won the race the state stays ``delivered`` and only the send time and ledger are added.
        Returns ``sent``, ``delivered_first`` or ``lost_claim``."""
        hour = hour_of(at_ms)
        awaiting = route == n.ROUTE_PNP
        values: dict[str, Any] = {
            ":sent": n.SENT,
            ":sending": n.SENDING,
            ":c": claim,
            ":at": at_ms,
            ":route": route,
            ":one": 1,
        }
        expr = "SET #s = :sent, sent_at = :at, route = :route"
        if awaiting:
            expr += ", await_hour = :h"
            values[":h"] = hour
        items: list[dict[str, Any]] = [
            update_op(
                self.table,
                keys.notification_key(account_id, tag),
                expr + " ADD rev :one REMOVE lease_until, claim",
                values,
                condition="#s = :sending AND claim = :c",
                names={"#s": "state"},
            )
        ]
        if awaiting:
            marker = {
                **keys.notification_await(account_id, hour, tag),
                "entity": "notification_await",
                "sent_at": at_ms,
            }
            items.append({"Put": {"TableName": self.table, "Item": to_item(marker)}})
        ledger = ledger_items(self.table, account_id, send_id, ledger_kind, 1, at_ms, self.shards)
        try:
            self.db.transact_write_items(TransactItems=items + ledger)
            return "sent"
        except ClientError as e:
            if not (condition_failed(e) and _cancelled_first(e)):
                raise
        current = self.get(account_id, tag) or {}
        if current.get("state") != n.DELIVERED:
            return "lost_claim"
        # The delivery event arrived before this send was recorded (LINE delivers fast).
        update = update_op(
            self.table,
            keys.notification_key(account_id, tag),
            "SET sent_at = :at, route = :route",
            {":at": at_ms, ":route": route, ":d": n.DELIVERED},
            condition="#s = :d AND attribute_not_exists(sent_at)",
            names={"#s": "state"},
        )
        self._transact_once([update, *ledger])
        return "delivered_first"

    def mark_delivered(self, account_id: str, tag: str, at_ms: int) -> str:
        """The ``delivery`` event: ``delivered`` from any earlier state (it may come before the
        send is recorded, or after the sweep gave up on it). Counted once in the month's usage
        (LINE bills only delivered notification messages). Returns delivered / duplicate / unknown."""
        for _ in range(10):
            item = self.get(account_id, tag)
            if item is None:
                return "unknown"
            if item["state"] == n.DELIVERED:
                return "duplicate"
            ops: list[dict[str, Any]] = [
                update_op(
                    self.table,
                    keys.notification_key(account_id, tag),
                    "SET #s = :d, delivered_at = :at ADD rev :one REMOVE await_hour",
                    {":d": n.DELIVERED, ":at": at_ms, ":rev": item["rev"], ":one": 1},
                    condition="rev = :rev",
                    names={"#s": "state"},
                ),
                counter_update(
                    self.table, account_id, month_of(at_ms), shard_of(tag, self.shards), {"notification_delivered": 1}
                ),
            ]
            if item.get("await_hour"):
                key = keys.notification_await(account_id, item["await_hour"], tag)
                ops.append({"Delete": {"TableName": self.table, "Key": to_item(key)}})
            if self._transact_once(ops):
                return "delivered"
        raise RuntimeError("notification kept changing; the delivery will be retried")

    def sweep(self, account_id: str, now_ms: int, lookback_hours: int = 72) -> int:
        """Mark notification messages with no delivery event 24 hours after sending as
        ``undelivered``; returns how many."""
        cutoff = now_ms - n.UNDELIVERED_WINDOW_MS
        swept = 0
        hour_ms = 3_600_000
        first = (cutoff // hour_ms - lookback_hours) * hour_ms
        for start in range(first, cutoff + 1, hour_ms):
            pk = keys.notification_await_partition(account_id, hour_of(start))
            r = self.db.query(
                TableName=self.table,
                KeyConditionExpression="PK = :pk",
                ExpressionAttributeValues=to_item({":pk": pk}),
                ConsistentRead=True,
            )
            for marker in (from_item(i) for i in r.get("Items", [])):
                if int(marker["sent_at"]) > cutoff:
                    continue
                swept += self._give_up(account_id, marker)
        return swept

    def _give_up(self, account_id: str, marker: dict[str, Any]) -> int:
        tag = marker["SK"]
        marker_key = {"PK": marker["PK"], "SK": tag}
        delete = {"Delete": {"TableName": self.table, "Key": to_item(marker_key)}}
        item = self.get(account_id, tag)
        if item is None or item["state"] != n.SENT:
            self._transact_once([delete])
            return 0
        update = update_op(
            self.table,
            keys.notification_key(account_id, tag),
            "SET #s = :u, undelivered_at = :at ADD rev :one REMOVE await_hour",
            {":u": n.UNDELIVERED, ":at": _now_ms(), ":rev": item["rev"], ":one": 1},
            condition="rev = :rev",
            names={"#s": "state"},
        )
        return 1 if self._transact_once([update, delete]) else 0
