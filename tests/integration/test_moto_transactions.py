"""The local stack's TransactWriteItems (an undo log of touched items) against stock moto's
(whole-table copies): one corpus of transactions is run on each, in a fresh mock_aws world with
the template's tables, and every response and the final state must be identical.

The corpus covers successes, every cancellation reason moto can give (ConditionalCheckFailed
with and without ReturnValuesOnConditionCheckFailure, a missing table), request-level failures
after earlier items were applied (a validation error mid-transaction, an oversized item, two
operations on one item, two operations in one entry, more than 100 items), mixed tables, GSI keys
that a cancelled transaction would have moved, Update with SET/ADD/REMOVE, Delete,
ConditionCheck and a repeated ClientRequestToken."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tsunagu_local import moto_transactions
from tsunagu_local.resources import create_resources

S = dict[str, Any]
EXTRA = "diff-counters"  # a hash-only table with a numeric key, beside the template's two


def s(v: str) -> S:
    return {"S": v}


def n(v: int) -> S:
    return {"N": str(v)}


def put(table: str, item: S, cond: str | None = None, **kw: Any) -> S:
    op: S = {"TableName": table, "Item": item, **kw}
    if cond:
        op["ConditionExpression"] = cond
    return {"Put": op}


def update(table: str, key: S, expr: str, values: S | None = None, cond: str | None = None, **kw: Any) -> S:
    op: S = {"TableName": table, "Key": key, "UpdateExpression": expr, **kw}
    if values:
        op["ExpressionAttributeValues"] = values
    if cond:
        op["ConditionExpression"] = cond
    return {"Update": op}


def delete(table: str, key: S, cond: str | None = None, **kw: Any) -> S:
    op: S = {"TableName": table, "Key": key, **kw}
    if cond:
        op["ConditionExpression"] = cond
    return {"Delete": op}


def check(table: str, key: S, cond: str, **kw: Any) -> S:
    return {"ConditionCheck": {"TableName": table, "Key": key, "ConditionExpression": cond, **kw}}


def key(pk: str, sk: str) -> S:
    return {"PK": s(pk), "SK": s(sk)}


def corpus(t: str, idem: str) -> list[tuple[str, S]]:
    """(name, TransactWriteItems arguments), run in order: later entries see earlier effects."""
    friend = key("ACCOUNT#a1", "FRIEND#U1")
    counter = key("ACCOUNT#a1", "STATS#friends")
    coupon = key("ACCOUNT#a1", "COUPON#c1")
    all_old = {"ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
    gsi = {"GSI1PK": s("MEMBER#a1"), "GSI1SK": s("0001")}
    cases: list[tuple[str, S]] = [
        (
            "success: new items in two tables, one with GSI keys",
            {
                "TransactItems": [
                    put(t, {**friend, "state": s("followed"), **gsi}, "attribute_not_exists(PK)"),
                    put(idem, {"id": s("evt-1"), "status": s("COMPLETED")}),
                    update(t, counter, "ADD followed :one SET updated = :now", {":one": n(1), ":now": s("t1")}),
                    put(EXTRA, {"n": n(7), "v": s("seven")}),
                ]
            },
        ),
        (
            "success: update moves a GSI key, ADD to a set, REMOVE an attribute",
            {
                "TransactItems": [
                    update(
                        t,
                        friend,
                        "SET GSI1SK = :sk, tags = :tags REMOVE #st",
                        {":sk": s("0002"), ":tags": {"SS": ["a"]}, ":f": s("followed")},
                        "#st = :f",
                        ExpressionAttributeNames={"#st": "state"},
                    ),
                    update(
                        t,
                        coupon,
                        "SET remaining = :r, GSI1PK = :g, GSI1SK = :c",
                        {":r": n(3), ":g": s("MEMBER#a1"), ":c": s("0003")},
                    ),
                    check(idem, {"id": s("evt-1")}, "attribute_exists(id)"),
                ]
            },
        ),
        (
            "cancelled: the last item's condition fails; earlier puts, updates and deletes undone",
            {
                "TransactItems": [
                    put(t, {**key("ACCOUNT#a1", "EVENT#e2"), "GSI1PK": s("MEMBER#a1"), "GSI1SK": s("0000")}),
                    update(
                        t, friend, "SET GSI1PK = :g ADD tags :more", {":g": s("MEMBER#moved"), ":more": {"SS": ["b"]}}
                    ),
                    delete(t, coupon),
                    delete(idem, {"id": s("evt-1")}),
                    update(EXTRA, {"n": n(7)}, "SET v = :v", {":v": s("changed")}),
                    update(t, counter, "ADD followed :one", {":one": n(1), ":max": n(1)}, "followed < :max"),
                ]
            },
        ),
        (
            "cancelled: ALL_OLD returns the existing item, not a missing one; reasons in order",
            {
                "TransactItems": [
                    check(t, friend, "attribute_not_exists(PK)", **all_old),
                    put(t, {**key("ACCOUNT#a1", "EVENT#e3")}, "attribute_exists(PK)", **all_old),
                    update(t, coupon, "ADD remaining :m", {":m": n(-1), ":z": n(0)}, "remaining > :z"),
                    delete(t, counter, "attribute_not_exists(PK)"),
                ]
            },
        ),
        (
            "cancelled: a Delete and a ConditionCheck on a table that does not exist",
            {
                "TransactItems": [
                    put(t, {**key("ACCOUNT#a1", "EVENT#e4")}),
                    delete("no-such-table", {"id": s("x")}),
                    check("no-such-table-2", {"id": s("y")}, "attribute_exists(id)"),
                ]
            },
        ),
        (
            "request error: ADD to a string mid-transaction, after a put and a delete",
            {
                "TransactItems": [
                    put(t, {**key("ACCOUNT#a1", "EVENT#e5"), **gsi}),
                    delete(t, counter),
                    update(t, friend, "ADD GSI1SK :one", {":one": n(1)}),
                    put(t, {**key("ACCOUNT#a1", "EVENT#e6")}),
                ]
            },
        ),
        (
            "request error: an item over 400 KB after earlier writes",
            {
                "TransactItems": [
                    update(t, counter, "ADD followed :one", {":one": n(5)}),
                    put(t, {**key("ACCOUNT#a1", "BIG#1"), "blob": s("x" * 410_000)}),
                ]
            },
        ),
        (
            "request error: two operations on one item",
            {
                "TransactItems": [
                    update(t, counter, "ADD followed :one", {":one": n(1)}),
                    put(t, {**key("ACCOUNT#a1", "EVENT#e7")}),
                    delete(t, counter),
                ]
            },
        ),
        (
            "request error: one entry with two operations",
            {
                "TransactItems": [
                    put(t, {**key("ACCOUNT#a1", "EVENT#e8")}),
                    {**put(t, {**key("ACCOUNT#a1", "EVENT#e9")}), **delete(t, friend)},
                ]
            },
        ),
        (
            "request error: 101 items",
            {"TransactItems": [put(t, {**key("ACCOUNT#a1", f"BULK#{i:03d}")}) for i in range(101)]},
        ),
        (
            "success: 100 items across three tables, GSI keys on some",
            {
                "TransactItems": [
                    put(t, {**key("ACCOUNT#a2", f"MSG#{i:03d}"), "GSI1PK": s(f"G#{i % 3}"), "GSI1SK": s(f"{i:03d}")})
                    for i in range(60)
                ]
                + [put(idem, {"id": s(f"bulk-{i}")}) for i in range(30)]
                + [update(EXTRA, {"n": n(100 + i)}, "ADD hits :one", {":one": n(1)}) for i in range(10)]
            },
        ),
        (
            "success with a ClientRequestToken",
            {
                "TransactItems": [update(t, counter, "ADD followed :one", {":one": n(1)})],
                "ClientRequestToken": "token-0001",
            },
        ),
        (
            "the same ClientRequestToken again (moto applies it again)",
            {
                "TransactItems": [update(t, counter, "ADD followed :one", {":one": n(1)})],
                "ClientRequestToken": "token-0001",
            },
        ),
        (
            "cancelled: 100 items whose last fails, so all 99 writes roll back",
            {
                "TransactItems": [
                    update(t, key("ACCOUNT#a2", f"MSG#{i:03d}"), "SET GSI1PK = :g REMOVE GSI1SK", {":g": s("G#gone")})
                    for i in range(99)
                ]
                + [check(EXTRA, {"n": n(7)}, "attribute_not_exists(n)", **all_old)]
            },
        ),
        (
            "success: delete items, re-create one deleted earlier in the corpus",
            {
                "TransactItems": [
                    delete(t, key("ACCOUNT#a2", "MSG#000"), "attribute_exists(PK)"),
                    delete(idem, {"id": s("bulk-0")}),
                    delete(EXTRA, {"n": n(100)}),
                    put(t, {**key("ACCOUNT#a1", "EVENT#e2"), "again": s("yes")}, "attribute_not_exists(PK)"),
                ]
            },
        ),
    ]
    return cases


def normalise(result: S) -> S:
    result = dict(result)
    result.pop("ResponseMetadata", None)
    return result


def run_corpus() -> tuple[list[tuple[str, S]], dict[str, Any]]:
    with mock_aws():
        stack = create_resources(params={"LineApiBaseUrl": "http://127.0.0.1:9"})
        t, idem = stack.tables["Table"], stack.tables["IdempotencyTable"]
        ddb = boto3.client("dynamodb", region_name="ap-northeast-1")
        ddb.create_table(
            TableName=EXTRA,
            AttributeDefinitions=[{"AttributeName": "n", "AttributeType": "N"}],
            KeySchema=[{"AttributeName": "n", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        # Bystanders: items no transaction names, which a rollback must leave exactly as they are.
        ddb.batch_write_item(
            RequestItems={
                t: [
                    {
                        "PutRequest": {
                            "Item": {
                                **key("ACCOUNT#a1", f"CHAT#{i:02d}"),
                                "GSI1PK": s("MEMBER#a1"),
                                "GSI1SK": s(f"9{i:03d}"),
                            }
                        }
                    }
                    for i in range(20)
                ]
            }
        )
        responses: list[tuple[str, S]] = []
        for name, kwargs in corpus(t, idem):
            try:
                responses.append((name, {"ok": normalise(ddb.transact_write_items(**kwargs))}))
            except ClientError as e:
                responses.append((name, {"error": normalise(e.response)}))
        state: dict[str, Any] = {}
        for logical, table in (("Table", t), ("IdempotencyTable", idem), (EXTRA, EXTRA)):
            state[logical] = sorted(_scan(ddb, table), key=repr)
        for pk in ("MEMBER#a1", "MEMBER#moved", "G#0", "G#1", "G#2", "G#gone"):
            state[f"GSI1 {pk}"] = ddb.query(
                TableName=t,
                IndexName="GSI1",
                KeyConditionExpression="GSI1PK = :p",
                ExpressionAttributeValues={":p": s(pk)},
            )["Items"]
        state["GSI1 scan"] = _scan(ddb, t, IndexName="GSI1")
        return responses, state


def _scan(ddb: Any, table: str, **kw: Any) -> list[S]:
    items: list[S] = []
    page = ddb.scan(TableName=table, **kw)
    items += page["Items"]
    while "LastEvaluatedKey" in page:
        page = ddb.scan(TableName=table, ExclusiveStartKey=page["LastEvaluatedKey"], **kw)
        items += page["Items"]
    return items


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[str, tuple[list[tuple[str, S]], dict[str, Any]]]]:
    with moto_transactions.stock_transactions():
        stock = run_corpus()
    with moto_transactions.item_level_rollback():
        patched = run_corpus()
    yield {"stock": stock, "patched": patched}


def test_the_patch_mirrors_the_installed_moto() -> None:
    # A moto upgrade that changes transact_write_items must be looked at again: install()
    # would refuse it, and this test says so.
    assert moto_transactions.stock_fingerprint() == moto_transactions.STOCK_FINGERPRINT
    with moto_transactions.item_level_rollback():
        assert moto_transactions.installed()
    with moto_transactions.stock_transactions():
        assert not moto_transactions.installed()


def test_every_response_is_the_same_as_stock_moto(runs: dict[str, Any]) -> None:
    stock, patched = runs["stock"][0], runs["patched"][0]
    assert [name for name, _ in patched] == [name for name, _ in stock]
    for (name, want), (_, got) in zip(stock, patched, strict=True):
        assert got == want, name


def test_final_tables_and_gsi_queries_are_the_same_as_stock_moto(runs: dict[str, Any]) -> None:
    stock, patched = runs["stock"][1], runs["patched"][1]
    assert patched.keys() == stock.keys()
    for part in stock:
        assert patched[part] == stock[part], part


def test_the_corpus_reaches_every_outcome_it_claims(runs: dict[str, Any]) -> None:
    """Guards the corpus itself: if moto stopped cancelling these, the comparison would be weak."""
    responses = dict(runs["patched"][0])
    reasons = {
        name: [r["Code"] for r in out["error"].get("CancellationReasons", [])]
        for name, out in responses.items()
        if "error" in out
    }
    assert reasons["cancelled: the last item's condition fails; earlier puts, updates and deletes undone"] == [
        "None"
    ] * 5 + ["ConditionalCheckFailed"]
    all_old = responses["cancelled: ALL_OLD returns the existing item, not a missing one; reasons in order"]
    got = all_old["error"]["CancellationReasons"]
    # The coupon still has 3 left, so its ADD passes: "None" in third place.
    assert [r["Code"] for r in got] == [
        "ConditionalCheckFailed",
        "ConditionalCheckFailed",
        "None",
        "ConditionalCheckFailed",
    ]
    assert got[0]["Item"]["GSI1SK"] == {"S": "0002"}  # ALL_OLD on an existing item
    assert "Item" not in got[1]  # ALL_OLD on an item that does not exist
    assert "Item" not in got[3]  # no ALL_OLD asked
    assert reasons["cancelled: a Delete and a ConditionCheck on a table that does not exist"] == [
        "None",
        "ResourceNotFoundException",
        "ResourceNotFoundException",
    ]
    for name in (
        "request error: ADD to a string mid-transaction, after a put and a delete",
        "request error: an item over 400 KB after earlier writes",
        "request error: two operations on one item",
        "request error: one entry with two operations",
        "request error: 101 items",
    ):
        assert responses[name]["error"]["Error"]["Code"] == "ValidationException", name
    for name, out in responses.items():
        if name.startswith("success"):
            assert "ok" in out, name


def test_cancelled_transactions_leave_no_trace(runs: dict[str, Any]) -> None:
    state = runs["patched"][1]
    assert state["GSI1 MEMBER#moved"] == [] and state["GSI1 G#gone"] == []
    items = {(i["PK"]["S"], i["SK"]["S"]): i for i in state["Table"]}
    for gone in ("EVENT#e3", "EVENT#e4", "EVENT#e5", "EVENT#e6", "EVENT#e7", "BIG#1", "BULK#000"):
        assert ("ACCOUNT#a1", gone) not in items, gone
    # moto's own quirk, kept on purpose (identical semantics): an entry with two operations is
    # refused where it is met, after the entries before it were applied, without a rollback.
    # DynamoDB refuses such a request before applying anything; tsunagu never sends one.
    assert ("ACCOUNT#a1", "EVENT#e8") in items
    assert ("ACCOUNT#a1", "COUPON#c1") in items  # its cancelled Delete was undone
    assert items[("ACCOUNT#a1", "FRIEND#U1")]["tags"] == {"SS": ["a"]}  # the cancelled ADD of "b" undone
    assert items[("ACCOUNT#a1", "EVENT#e2")]["again"] == {"S": "yes"}  # created only by the last entry
    assert len(state["GSI1 G#0"]) + len(state["GSI1 G#1"]) + len(state["GSI1 G#2"]) == 59
    # 1 (first) + 1 + 1 (the same ClientRequestToken twice: moto does not deduplicate); every
    # cancelled or refused ADD on it was rolled back.
    assert items[("ACCOUNT#a1", "STATS#friends")]["followed"] == {"N": "3"}
    assert {"v": {"S": "seven"}, "n": {"N": "7"}} in state[EXTRA]
