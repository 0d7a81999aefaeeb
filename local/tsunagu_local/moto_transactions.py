"""TransactWriteItems for moto with an undo log of the touched items instead of whole-table copies.

Stock moto (5.2.5) starts every ``transact_write_items`` by deep-copying each table the
transaction names - once per transaction item - so that it can put the copies back if the
transaction is cancelled. The cost grows with the table: on the local stack a two-item
transaction took ~0.1 s on a 1,000-item table and seconds at 100,000 items, which made the
notification sender, the usage ledger and coupon redemption unusable at a realistic size
(issue 21).

This module keeps moto's algorithm line for line - the same validation order, the same
``CancellationReasons`` (one per item, in order), the same exceptions for the 100-item limit and
for two operations on one item - and changes only how a cancelled transaction is undone: before
an operation touches an item, a deep copy of that one item (or "absent") is logged, and a
rollback puts those back in reverse order. Secondary indexes need nothing of their own: moto
derives GSI and LSI results from the base items on every read. A table's stream records are
truncated to where they stood, as the table copy did.

ClientRequestToken is accepted and ignored, as stock moto does (real DynamoDB deduplicates a
repeated token for ten minutes; tsunagu does not rely on that).

``install()`` is idempotent and refuses to patch a moto whose ``transact_write_items`` is not the
one this was written against (the body's fingerprint is checked), so a moto upgrade falls back to
the stock behaviour instead of silently changing semantics. The differential test
(tests/integration/test_moto_transactions.py) runs a corpus of transactions against both.

The change is small and self-contained enough to offer to moto upstream."""

from __future__ import annotations

import copy
import hashlib
import inspect
import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item

from tsunagu_local.patching import patched

log = logging.getLogger(__name__)

STOCK = DynamoDBBackend.transact_write_items
# sha256 of inspect.getsource(DynamoDBBackend.transact_write_items) in moto 5.2.5.
STOCK_FINGERPRINT = "81db2cb7d94e39c90b3a2077e1f4bb41a449c558ef9b1b1e2910fdaa39978ad4"


def stock_fingerprint() -> str:
    return hashlib.sha256(inspect.getsource(STOCK).encode()).hexdigest()


@dataclass
class _Before:
    """One touched item as it was before the transaction's operation on it."""

    table: Any  # moto's Table
    hash_key: DynamoType
    range_key: DynamoType | None
    item: Item | None  # a private copy, or None if the item did not exist
    had_bucket: bool  # for range-keyed tables: did the hash key's dict exist already


class _UndoLog:
    def __init__(self) -> None:
        self.before: list[_Before] = []
        self.streams: dict[int, tuple[Any, list[Any], int]] = {}

    def remember(self, backend: DynamoDBBackend, table_name: str, key: dict[str, Any]) -> None:
        """Log the item at ``key`` before anything reads or writes it. A key moto cannot resolve
        is not logged: the operation will fail before it touches anything."""
        table = backend.tables.get(table_name)
        if table is None:
            return
        try:
            hash_key, range_key = backend.get_keys_value(table, key)
        except MockValidationException:
            return
        if range_key is not None:
            had_bucket = hash_key in table.items
            current = table.items[hash_key].get(range_key) if had_bucket else None
        else:
            had_bucket = True
            current = table.items.get(hash_key)
        self.before.append(_Before(table, hash_key, range_key, copy.deepcopy(current), had_bucket))
        shard = table.stream_shard
        if shard is not None and id(table) not in self.streams:
            self.streams[id(table)] = (shard, shard.items, len(shard.items))

    def rollback(self) -> None:
        for b in reversed(self.before):
            if b.range_key is None:
                if b.item is None:
                    b.table.items.pop(b.hash_key, None)
                else:
                    b.table.items[b.hash_key] = b.item
                continue
            if b.item is not None:
                b.table.items[b.hash_key][b.range_key] = b.item
                continue
            bucket = b.table.items.get(b.hash_key)
            if bucket is not None:
                bucket.pop(b.range_key, None)
                if not bucket and not b.had_bucket:
                    del b.table.items[b.hash_key]
        for shard, records, length in self.streams.values():
            # The records list may have been swapped for [] after a Lambda consumed it; the
            # table copy would have brought back the list as it was, so do the same.
            del records[length:]
            shard.items = records


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """moto 5.2.5's ``transact_write_items`` with the table copies replaced by an undo log."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    undo = _UndoLog()

    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors: list[tuple[str, str, dict[str, Any]] | tuple[None, None, None]] = []
    for item in transact_items:
        original_item: dict[str, Any] | None = None
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException

        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")

            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            expression_attribute_names = op.get("ExpressionAttributeNames")
            expression_attribute_values = op.get("ExpressionAttributeValues")
            return_values_on_condition_check_failure = op.get("ReturnValuesOnConditionCheckFailure")

            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]

            check_unicity(table_name, key)
            if op_type != "ConditionCheck":
                undo.remember(self, table_name, key)

            current = self.get_item(table_name, key)
            if condition_expression is not None:
                condition_op = get_filter_expression(
                    condition_expression,
                    expression_attribute_names,
                    expression_attribute_values,
                )
                if not condition_op.expr(current):
                    if return_values_on_condition_check_failure == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)

            if op_type == "Put":
                self.put_item(
                    table_name,
                    op["Item"],
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Update":
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            undo.rollback()
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))  # type: ignore[arg-type]
        except Exception as e:  # moto reports any other failure as that item's reason
            errors.append((type(e).__name__, str(e), original_item))  # type: ignore[arg-type]

    if any(code is not None for code, _, _ in errors):
        undo.rollback()
        raise TransactionCanceledException(errors)


def install() -> bool:
    """Patch moto's DynamoDB backend in this process. False (and stock behaviour) if the installed
    moto's ``transact_write_items`` is not the one this module mirrors."""
    if DynamoDBBackend.transact_write_items is transact_write_items:
        return True
    if stock_fingerprint() != STOCK_FINGERPRINT:
        log.warning("moto's transact_write_items changed; keeping its whole-table rollback")
        return False
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    return True


def uninstall() -> None:
    DynamoDBBackend.transact_write_items = STOCK  # type: ignore[method-assign]


def installed() -> bool:
    return DynamoDBBackend.transact_write_items is transact_write_items


def stock_transactions() -> AbstractContextManager[None]:
    """Run a block with moto's own implementation (benchmarks and the differential test)."""
    return patched(install, uninstall, installed, False, "transact_write_items")


def item_level_rollback() -> AbstractContextManager[None]:
    return patched(install, uninstall, installed, True, "transact_write_items")
