"""DynamoDB for mobile lines and data gifts. A gift is one TransactWriteItems: the gift item
(``attribute_not_exists``: once per gift id), the debit (``remaining_mb >= :mb`` and this month),
the credit (the line exists, this month), both history entries and, from the chat, the consumed
confirmation. Nothing is read-then-written without a condition on what was read (R-GIFT-1)."""

from __future__ import annotations

import random
import time
from typing import Any

from botocore.exceptions import ClientError

from tsunagu import keys
from tsunagu.infrastructure.dynamodb import Repository, condition_failed, from_item, only_conflicts, to_item, update_op
from tsunagu.lines.domain import MobileLine
from tsunagu.lines.ports import GiftOutcome

# The index of each transaction item, so a cancellation reason names the rule that failed.
_GIFT_FAILURES = {0: "gift_already_applied", 1: "gift_insufficient_data", 2: "gift_receiver_changed"}


def _line(d: dict[str, Any]) -> MobileLine:
    return MobileLine(
        str(d["line_id"]),
        str(d["member_number"]),
        int(d["allowance_mb"]),
        int(d["remaining_mb"]),
        str(d["month"]),
        int(d.get("used_mb", 0)),
    )


class DynamoLineStore(Repository):
    def __init__(self, table: str):
        self.table = table

    # -- lines ---------------------------------------------------------------------------
    def put_lines(self, account_id: str, lines: list[MobileLine]) -> None:
        now = int(time.time())
        requests = [
            {
                "PutRequest": {
                    "Item": to_item(
                        {
                            **keys.mobile_line(account_id, ln.line_id),
                            **keys.mobile_line_index(account_id, ln.member_number, ln.line_id),
                            "entity": "mobile_line",
                            "line_id": ln.line_id,
                            "member_number": ln.member_number,
                            "allowance_mb": ln.allowance_mb,
                            "remaining_mb": ln.remaining_mb,
                            "used_mb": ln.used_mb,
                            "month": ln.month,
                            "updated_at": now,
                        }
                    )
                }
            }
            for ln in lines
        ]
        for i in range(0, len(requests), 25):
            chunk = requests[i : i + 25]
            while chunk:
                r = self.db.batch_write_item(RequestItems={self.table: chunk})
                chunk = r.get("UnprocessedItems", {}).get(self.table, [])

    def get(self, account_id: str, line_id: str) -> MobileLine | None:
        d = self._get(keys.mobile_line(account_id, line_id))
        return _line(d) if d else None

    def contract_lines(self, account_id: str, member_number: str) -> list[MobileLine]:
        items = self._query_pages(
            {
                "TableName": self.table,
                "IndexName": "GSI1",
                "KeyConditionExpression": "GSI1PK = :pk AND begins_with(GSI1SK, :p)",
                "ExpressionAttributeValues": to_item(
                    {":pk": keys.mobile_lines_index(account_id), ":p": f"{member_number}#"}
                ),
            }
        )
        return [_line(d) for d in items]

    def page(self, account_id: str, limit: int, after: dict[str, Any] | None) -> tuple[list[MobileLine], Any]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "GSI1",
            "Limit": limit,
            "KeyConditionExpression": "GSI1PK = :pk",
            "ExpressionAttributeValues": to_item({":pk": keys.mobile_lines_index(account_id)}),
        }
        if after:
            kwargs["ExclusiveStartKey"] = after
        r = self.db.query(**kwargs)
        return [_line(from_item(i)) for i in r.get("Items", [])], r.get("LastEvaluatedKey")

    def replace_balance(self, account_id: str, before: MobileLine, after: MobileLine) -> bool:
        """Write ``after`` only if the line still is ``before`` (rollover, the carrier's usage feed)."""
        try:
            self.db.update_item(
                TableName=self.table,
                Key=to_item(keys.mobile_line(account_id, before.line_id)),
                UpdateExpression="SET remaining_mb = :r, used_mb = :u, #m = :m",
                ConditionExpression="remaining_mb = :r0 AND used_mb = :u0 AND #m = :m0",
                ExpressionAttributeNames={"#m": "month"},
                ExpressionAttributeValues=to_item(
                    {
                        ":r": after.remaining_mb,
                        ":u": after.used_mb,
                        ":m": after.month,
                        ":r0": before.remaining_mb,
                        ":u0": before.used_mb,
                        ":m0": before.month,
                    }
                ),
            )
        except ClientError as e:
            if condition_failed(e):
                return False
            raise
        return True

    # -- gifts ---------------------------------------------------------------------------
    def gift(
        self,
        account_id: str,
        gift: dict[str, Any],
        request: tuple[str, str] | None = None,
        conflict_retries: int = 12,
        outbox: bool = False,
    ) -> GiftOutcome:
        """Apply ``gift`` (gift_id, from_line, to_line, mb, month, at_ms, actor) exactly once.
        ``request``: (request id, LINE user) of the chat confirmation it consumes. ``outbox``: the
        gift item also enters the announcement outbox (a sparse index), in the same transaction."""
        t, g = self.table, gift
        cond_month = {"#m": "month"}
        pending = keys.gift_outbox_index(account_id, g["gift_id"], g["at_ms"]) if outbox else {}
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": t,
                    "Item": to_item(
                        {**keys.data_gift(account_id, g["gift_id"]), "entity": "data_gift", **g, **pending}
                    ),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            update_op(
                t,
                keys.mobile_line(account_id, g["from_line"]),
                "SET remaining_mb = remaining_mb - :mb",
                {":mb": g["mb"], ":m": g["month"]},
                condition="attribute_exists(PK) AND #m = :m AND remaining_mb >= :mb",
                names=cond_month,
            ),
            update_op(
                t,
                keys.mobile_line(account_id, g["to_line"]),
                "SET remaining_mb = remaining_mb + :mb",
                {":mb": g["mb"], ":m": g["month"]},
                condition="attribute_exists(PK) AND #m = :m",
                names=cond_month,
            ),
        ]
        for line, direction, other in (
            (g["from_line"], "given", g["to_line"]),
            (g["to_line"], "received", g["from_line"]),
        ):
            items.append(
                {
                    "Put": {
                        "TableName": t,
                        "Item": to_item(
                            {
                                **keys.mobile_line_history(account_id, line, g["at_ms"], g["gift_id"]),
                                "entity": "line_history",
                                "gift_id": g["gift_id"],
                                "direction": direction,
                                "other_line": other,
                                "mb": g["mb"],
                                "at_ms": g["at_ms"],
                            }
                        ),
                    }
                }
            )
        if request is not None:
            items.append(
                {
                    "Delete": {
                        "TableName": t,
                        "Key": to_item(keys.gift_request(account_id, request[0])),
                        "ConditionExpression": "attribute_exists(PK) AND user_id = :u AND expires_at > :now",
                        "ExpressionAttributeValues": to_item({":u": request[1], ":now": int(time.time())}),
                    }
                }
            )
        for attempt in range(conflict_retries + 1):
            try:
                self.db.transact_write_items(TransactItems=items)
                return GiftOutcome("applied")
            except ClientError as e:
                if not condition_failed(e):
                    raise
                if not only_conflicts(e):
                    reasons = e.response.get("CancellationReasons") or []
                    for i, reason in enumerate(reasons):
                        if reason.get("Code") == "ConditionalCheckFailed":
                            return GiftOutcome(_GIFT_FAILURES.get(i, "gift_request_used"))
                    return GiftOutcome("gift_conflict")
                if attempt == conflict_retries:
                    return GiftOutcome("gift_conflict")
            # Another gift held one of the lines: nothing was written; try again shortly.
            time.sleep(random.uniform(0, 0.005 * 2 ** min(attempt, 6)))  # noqa: S311 - jitter
        return GiftOutcome("gift_conflict")

    def gift_record(self, account_id: str, gift_id: str) -> dict[str, Any] | None:
        d = self._get(keys.data_gift(account_id, gift_id))
        if d is None:
            return None
        hidden = ("PK", "SK", "entity", "GSI1PK", "GSI1SK")
        return {k: (int(v) if k in ("mb", "at_ms") else v) for k, v in d.items() if k not in hidden}

    # -- the announcement outbox ---------------------------------------------------------
    def clear_outbox(self, account_id: str, gift_id: str) -> None:
        """The announcement is on the forward queue: the gift leaves the outbox."""
        self.db.update_item(
            TableName=self.table,
            Key=to_item(keys.data_gift(account_id, gift_id)),
            UpdateExpression="REMOVE GSI1PK, GSI1SK",
            ConditionExpression="attribute_exists(PK)",
        )

    def outbox_due(self, before_ms: int, limit: int = 500) -> list[tuple[str, str]]:
        """(account id, gift id) of gifts applied before ``before_ms`` whose announcement was
        never queued (a crash or an SQS failure between the transaction and the send)."""
        out: list[tuple[str, str]] = []
        for shard in range(keys.GIFT_OUTBOX_SHARDS):
            kwargs: dict[str, Any] = {
                "TableName": self.table,
                "IndexName": "GSI1",
                "KeyConditionExpression": "GSI1PK = :pk AND GSI1SK < :cut",
                "ExpressionAttributeValues": to_item({":pk": f"GIFTOUTBOX#{shard}", ":cut": f"{before_ms:013d}"}),
                "ProjectionExpression": "GSI1SK",
            }
            while len(out) < limit:
                r = self.db.query(**kwargs, Limit=limit - len(out))
                for i in r.get("Items", []):
                    _, account_id, gift_id = from_item(i)["GSI1SK"].split("#", 2)
                    out.append((account_id, gift_id))
                if "LastEvaluatedKey" not in r:
                    break
                kwargs["ExclusiveStartKey"] = r["LastEvaluatedKey"]
        return out

    def history(self, account_id: str, line_id: str, limit: int = 50) -> list[dict[str, Any]]:
        r = self.db.query(
            TableName=self.table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :p)",
            ExpressionAttributeValues=to_item({":pk": keys.mobile_line(account_id, line_id)["PK"], ":p": "HIST#"}),
            ScanIndexForward=False,
            Limit=limit,
        )
        return [
            {
                k: (int(v) if k in ("mb", "at_ms") else v)
                for k, v in from_item(i).items()
                if k not in ("PK", "SK", "entity")
            }
            for i in r.get("Items", [])
        ]

    # -- chat confirmations --------------------------------------------------------------
    def put_request(
        self, account_id: str, request_id: str, user_id: str, from_line: str, to_line: str, mb: int
    ) -> None:
        from tsunagu.lines.domain import GIFT_REQUEST_SECONDS

        self.db.put_item(
            TableName=self.table,
            Item=to_item(
                {
                    **keys.gift_request(account_id, request_id),
                    "entity": "gift_request",
                    "user_id": user_id,
                    "from_line": from_line,
                    "to_line": to_line,
                    "mb": mb,
                    "expires_at": int(time.time()) + GIFT_REQUEST_SECONDS,
                }
            ),
            ConditionExpression="attribute_not_exists(PK)",
        )

    def get_request(self, account_id: str, request_id: str) -> dict[str, Any] | None:
        return self._get(keys.gift_request(account_id, request_id))

    def drop_request(self, account_id: str, request_id: str, user_id: str) -> bool:
        try:
            self.db.delete_item(
                TableName=self.table,
                Key=to_item(keys.gift_request(account_id, request_id)),
                ConditionExpression="user_id = :u",
                ExpressionAttributeValues=to_item({":u": user_id}),
            )
        except ClientError as e:
            if condition_failed(e):
                return False
            raise
        return True

    # -- settings ------------------------------------------------------------------------
    def settings(self, account_id: str) -> dict[str, Any]:
        d = self._get(keys.lines_settings(account_id), consistent=False) or {}
        return {k: d.get(k) for k in ("carrier_webhook_url", "mypage_url")}

    def carrier_webhook(self, account_id: str) -> str | None:
        url = self.settings(account_id)["carrier_webhook_url"]
        return str(url) if url else None

    def set_carrier_webhook(self, account_id: str, url: str | None) -> None:
        self.put_settings(account_id, {**self.settings(account_id), "carrier_webhook_url": url})

    def put_settings(self, account_id: str, settings: dict[str, Any]) -> None:
        self.db.put_item(
            TableName=self.table,
            Item=to_item({**keys.lines_settings(account_id), "entity": "lines_settings", **settings}),
        )

    # -- My Page tickets -----------------------------------------------------------------
    def put_ticket(self, account_id: str, ticket_hash: str, member_number: str, expires_at: int) -> None:
        self.db.put_item(
            TableName=self.table,
            Item=to_item(
                {
                    **keys.mypage_ticket(account_id, ticket_hash),
                    "entity": "mypage_ticket",
                    "member_number": member_number,
                    "expires_at": expires_at,
                }
            ),
            ConditionExpression="attribute_not_exists(PK)",
        )

    def take_ticket(self, account_id: str, ticket_hash: str, now: int) -> bool:
        """Consume a ticket: True once; False when it was redeemed before (or is past its TTL)."""
        try:
            self.db.delete_item(
                TableName=self.table,
                Key=to_item(keys.mypage_ticket(account_id, ticket_hash)),
                ConditionExpression="attribute_exists(PK) AND expires_at > :now",
                ExpressionAttributeValues=to_item({":now": now}),
            )
        except ClientError as e:
            if condition_failed(e):
                return False
            raise
        return True
