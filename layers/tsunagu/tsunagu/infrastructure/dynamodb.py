"""The DynamoDB base every capability store builds on: item (de)serialisation, the failed-condition
test, the at-most-once transaction and the ``Update`` builder. Items map to domain models in the
stores; a failed conditional write becomes a domain error (or a False result) there, never in a handler."""

from __future__ import annotations

import random
import time
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from tsunagu.infrastructure.aws import client

_ser = TypeSerializer()
_de = TypeDeserializer()


def to_item(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in d.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _de.deserialize(v) for k, v in item.items()}


def condition_failed(e: ClientError) -> bool:
    return e.response["Error"]["Code"] in ("ConditionalCheckFailedException", "TransactionCanceledException")


def only_conflicts(e: ClientError) -> bool:
    """A cancelled transaction that no condition refused: another transaction was in the way."""
    reasons = [r.get("Code") for r in e.response.get("CancellationReasons") or []]
    return (
        e.response["Error"]["Code"] == "TransactionCanceledException"
        and "ConditionalCheckFailed" not in reasons
        and "TransactionConflict" in reasons
    )


def update_op(
    table: str,
    key: dict[str, str],
    expression: str,
    values: dict[str, Any] | None = None,
    *,
    condition: str | None = None,
    names: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One ``Update`` of a TransactWriteItems request (the stores' one way to build it)."""
    update: dict[str, Any] = {"TableName": table, "Key": to_item(key), "UpdateExpression": expression}
    if condition:
        update["ConditionExpression"] = condition
    if names:
        update["ExpressionAttributeNames"] = names
    if values:
        update["ExpressionAttributeValues"] = to_item(values)
    return {"Update": update}


class Repository:
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
                if not condition_failed(e):
                    raise
                if not only_conflicts(e) or attempt == conflict_retries:
                    if only_conflicts(e):
                        raise
                    return False
            time.sleep(random.uniform(0, 0.01 * 2**attempt))  # noqa: S311 - jitter, not crypto
        return False

    def _query_pages(self, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
        """Every item a Query matches, following ``LastEvaluatedKey`` page by page."""
        out: list[dict[str, Any]] = []
        while True:
            r = self.db.query(**kwargs)
            out += [from_item(i) for i in r.get("Items", [])]
            if "LastEvaluatedKey" not in r:
                return out
            kwargs["ExclusiveStartKey"] = r["LastEvaluatedKey"]

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
            if condition_failed(e):
                return False
            raise
        return True

    def _counters(self, key: dict[str, str]) -> dict[str, int]:
        """A counter item (numbers changed with ADD) as a plain dict."""
        r = self.db.get_item(TableName=self.table, Key=to_item(key), ConsistentRead=True)
        d = from_item(r.get("Item", {}))
        return {k: int(v) for k, v in d.items() if k not in ("PK", "SK", "entity")}
