"""The usage ledger in DynamoDB: one entry per send (conditional put on its send id) and the
account-month counters beside it (ADD on one of a few shards), written in one transaction so
a send is counted exactly once. Other writers put ``ledger_items`` inside their own
transactions (the notification sender does, with the state change of the notification)."""

from __future__ import annotations

from typing import Any

from tsunagu import keys
from tsunagu.billing.usage import DEFAULT_SHARDS, is_billable, month_of, shard_of
from tsunagu.infrastructure.dynamodb import Repository, from_item, to_item, update_op


def ledger_items(
    table: str,
    account_id: str,
    send_id: str,
    kind: str,
    recipients: int,
    at_ms: int,
    shards: int = DEFAULT_SHARDS,
) -> list[dict[str, Any]]:
    """The two transaction items that record one send: they fail together if it is recorded."""
    month = month_of(at_ms)
    billable = is_billable(kind)
    entry = {
        **keys.usage_entry(account_id, send_id),
        "entity": "usage_entry",
        "kind": kind,
        "recipients": recipients,
        "billable": billable,
        "month": month,
        "at_ms": at_ms,
    }
    return [
        {
            "Put": {
                "TableName": table,
                "Item": to_item(entry),
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        },
        counter_update(table, account_id, month, shard_of(send_id, shards), {f"{kind}_messages": recipients}),
    ]


def counter_update(table: str, account_id: str, month: str, shard: int, adds: dict[str, int]) -> dict[str, Any]:
    names = {f"#c{i}": k for i, k in enumerate(adds)}
    values = {f":v{i}": v for i, v in enumerate(adds.values())}
    return update_op(
        table,
        keys.usage_counter(account_id, month, shard),
        "SET entity = :e, #m = :m ADD " + ", ".join(f"#c{i} :v{i}" for i in range(len(adds))),
        {**values, ":e": "usage_counter", ":m": month},
        names={**names, "#m": "month"},
    )


class DynamoUsageLedger(Repository):
    def __init__(self, table: str, shards: int = DEFAULT_SHARDS):
        self.table = table
        self.shards = shards

    def record(self, account_id: str, send_id: str, kind: str, recipients: int, at_ms: int) -> bool:
        """Record one send; False when this send id is already in the ledger."""
        return self._transact_once(ledger_items(self.table, account_id, send_id, kind, recipients, at_ms, self.shards))

    def month_totals(self, account_id: str, month: str) -> dict[str, int]:
        """The month's counters, summed over every shard (one query, never a scan of sends)."""
        r = self.db.query(
            TableName=self.table,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues=to_item({":pk": keys.usage_month_partition(account_id, month)}),
            ConsistentRead=True,
        )
        totals: dict[str, int] = {}
        for item in r.get("Items", []):
            for k, v in from_item(item).items():
                if k not in ("PK", "SK", "entity", "month"):
                    totals[k] = totals.get(k, 0) + int(v)
        return totals

    def entry(self, account_id: str, send_id: str) -> dict[str, Any] | None:
        r = self.db.get_item(TableName=self.table, Key=to_item(keys.usage_entry(account_id, send_id)))
        return from_item(r["Item"]) if "Item" in r else None
