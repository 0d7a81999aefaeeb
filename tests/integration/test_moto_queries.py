"""The local stack's Query (one partition, tsunagu_local.moto_queries) against stock moto's (the
whole table sorted on every query): one corpus of queries over one data set, in a fresh mock_aws
world with the template's tables plus a hash-only table and a table with a numeric-keyed index,
and every answer (items, counts, LastEvaluatedKey, errors) must be identical.

The corpus covers table queries with each range-key operator, descending order, Limit and
pagination, filters, projections, Select=COUNT, an empty and an absent partition, items written
then updated out of and deleted from a partition, index queries (with a range condition, with
items lacking the index keys, with a numeric hash key left to moto), a hash-only table, an
unknown index and a consistent read on a GSI (both errors)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tsunagu_local import moto_queries
from tsunagu_local.resources import create_resources

S = dict[str, Any]
HASH_ONLY = "diff-hash-only"
NUMERIC = "diff-numeric-index"


def s(v: str) -> S:
    return {"S": v}


def n(v: int) -> S:
    return {"N": str(v)}


def seed(ddb: Any, t: str) -> None:
    for a in range(3):
        for i in range(40):
            item: S = {
                "PK": s(f"ACCOUNT#a{a}"),
                "SK": s(f"FRIEND#{i:03d}"),
                "n": n(i),
                "tag": s("vip" if i % 3 else ""),
            }
            if i % 4 == 0:
                item |= {"GSI1PK": s(f"LINKED#a{a}"), "GSI1SK": s(f"{39 - i:03d}#U{i}")}
            if i % 5 == 0:
                item["GSI1PK"] = s(f"HALF#a{a}")  # an index hash key without its range key
            ddb.put_item(TableName=t, Item=item)
    ddb.put_item(TableName=t, Item={"PK": s("SOLO"), "SK": s("ONE")})
    # Moved out of one index partition into another, and a deleted one.
    ddb.update_item(
        TableName=t,
        Key={"PK": s("ACCOUNT#a0"), "SK": s("FRIEND#004")},
        UpdateExpression="SET GSI1PK = :p",
        ExpressionAttributeValues={":p": s("LINKED#a1")},
    )
    ddb.delete_item(TableName=t, Key={"PK": s("ACCOUNT#a0"), "SK": s("FRIEND#008")})
    for i in range(10):
        ddb.put_item(TableName=HASH_ONLY, Item={"id": s(f"k{i}"), "v": n(i)})
        ddb.put_item(TableName=NUMERIC, Item={"id": s(f"k{i}"), "bucket": n(i % 3), "at": n(100 - i)})


def corpus(t: str) -> list[tuple[str, S]]:
    def q(pk: str, **kw: Any) -> S:
        return {
            "TableName": t,
            "KeyConditionExpression": kw.pop("cond", "PK = :p"),
            "ExpressionAttributeValues": {":p": s(pk), **kw.pop("values", {})},
            **kw,
        }

    def gsi(pk: str, **kw: Any) -> S:
        return q(pk, IndexName="GSI1", cond=kw.pop("cond", "GSI1PK = :p"), **kw)

    return [
        ("table: a whole partition", q("ACCOUNT#a0")),
        ("table: begins_with", q("ACCOUNT#a1", cond="PK = :p AND begins_with(SK, :b)", values={":b": s("FRIEND#01")})),
        (
            "table: between",
            q(
                "ACCOUNT#a1",
                cond="PK = :p AND SK BETWEEN :x AND :y",
                values={":x": s("FRIEND#005"), ":y": s("FRIEND#020")},
            ),
        ),
        ("table: <", q("ACCOUNT#a2", cond="PK = :p AND SK < :x", values={":x": s("FRIEND#010")})),
        ("table: >=", q("ACCOUNT#a2", cond="PK = :p AND SK >= :x", values={":x": s("FRIEND#030")})),
        ("table: =", q("ACCOUNT#a2", cond="PK = :p AND SK = :x", values={":x": s("FRIEND#030")})),
        ("table: descending, limit", q("ACCOUNT#a0", ScanIndexForward=False, Limit=7)),
        ("table: a filter", q("ACCOUNT#a1", FilterExpression="tag = :v", values={":v": s("vip")})),
        ("table: a projection", q("ACCOUNT#a1", ProjectionExpression="SK, n", Limit=5)),
        ("table: count", q("ACCOUNT#a1", Select="COUNT")),
        ("table: a one-item partition", q("SOLO")),
        ("table: an absent partition", q("ACCOUNT#nobody")),
        ("gsi: a partition", gsi("LINKED#a0")),
        ("gsi: the item moved in", gsi("LINKED#a1")),
        (
            "gsi: a range condition",
            gsi("LINKED#a2", cond="GSI1PK = :p AND begins_with(GSI1SK, :b)", values={":b": s("01")}),
        ),
        ("gsi: descending, limit", gsi("LINKED#a2", ScanIndexForward=False, Limit=3)),
        ("gsi: items without the range key", gsi("HALF#a1")),
        ("gsi: an absent partition", gsi("LINKED#nobody")),
        ("gsi: a filter", gsi("LINKED#a1", FilterExpression="n > :k", values={":k": n(10)})),
        (
            "hash-only table",
            {"TableName": HASH_ONLY, "KeyConditionExpression": "id = :p", "ExpressionAttributeValues": {":p": s("k3")}},
        ),
        (
            "numeric index hash key (left to moto)",
            {
                "TableName": NUMERIC,
                "IndexName": "by-bucket",
                "KeyConditionExpression": "bucket = :b",
                "ExpressionAttributeValues": {":b": n(1)},
            },
        ),
        ("error: unknown index", q("ACCOUNT#a0", IndexName="nope")),
        ("error: consistent read on a GSI", gsi("LINKED#a0", ConsistentRead=True)),
    ]


def run_corpus() -> list[tuple[str, S]]:
    with mock_aws():
        stack = create_resources(params={"LineApiBaseUrl": "http://127.0.0.1:9"})
        t = stack.tables["Table"]
        ddb = boto3.client("dynamodb", region_name="ap-northeast-1")
        ddb.create_table(
            TableName=HASH_ONLY,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        )
        ddb.create_table(
            TableName=NUMERIC,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "id", "AttributeType": "S"},
                {"AttributeName": "bucket", "AttributeType": "N"},
                {"AttributeName": "at", "AttributeType": "N"},
            ],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-bucket",
                    "KeySchema": [
                        {"AttributeName": "bucket", "KeyType": "HASH"},
                        {"AttributeName": "at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
        seed(ddb, t)
        out: list[tuple[str, S]] = []
        for name, kwargs in corpus(t):
            pages: list[S] = []
            try:
                page = ddb.query(**kwargs)
                pages.append(page)
                while "LastEvaluatedKey" in page and len(pages) < 50:
                    page = ddb.query(**kwargs, ExclusiveStartKey=page["LastEvaluatedKey"])
                    pages.append(page)
                out.append((name, {"pages": [{k: v for k, v in p.items() if k != "ResponseMetadata"} for p in pages]}))
            except ClientError as e:
                out.append((name, {"error": e.response["Error"]}))
        return out


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[str, list[tuple[str, S]]]]:
    with moto_queries.stock_queries():
        stock = run_corpus()
    with moto_queries.partition_queries():
        patched = run_corpus()
    yield {"stock": stock, "patched": patched}


def test_the_patch_mirrors_the_installed_moto() -> None:
    # A moto upgrade that changes Table.query or all_items must be looked at again: install()
    # refuses it, and this test says so.
    assert moto_queries.fingerprint(moto_queries.STOCK_QUERY) == moto_queries.STOCK_FINGERPRINTS["query"]
    assert moto_queries.fingerprint(moto_queries.STOCK_ALL_ITEMS) == moto_queries.STOCK_FINGERPRINTS["all_items"]
    with moto_queries.partition_queries():
        assert moto_queries.installed()
    with moto_queries.stock_queries():
        assert not moto_queries.installed()


def test_every_answer_is_the_same_as_stock_moto(runs: dict[str, list[tuple[str, S]]]) -> None:
    stock, patched = runs["stock"], runs["patched"]
    assert [name for name, _ in patched] == [name for name, _ in stock]
    for (name, want), (_, got) in zip(stock, patched, strict=True):
        assert got == want, name
    # The corpus is not vacuous: partitions answered items, pages were cut, errors were errors.
    answers = dict(stock)
    assert len(answers["table: a whole partition"]["pages"][0]["Items"]) == 39
    assert len(answers["table: descending, limit"]["pages"]) > 1
    assert answers["gsi: the item moved in"]["pages"][0]["Count"] == 9  # 8 of its own (2 moved to HALF) + 1
    assert "error" in answers["error: unknown index"] and "error" in answers["error: consistent read on a GSI"]


def test_a_string_keyed_query_never_walks_the_whole_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of the patch, counted rather than timed: with it installed, a table query and a
    GSI query with a string hash key never call stock ``all_items`` (the whole-table sort); a
    numeric-keyed index query still does (left to moto)."""
    walks = []
    real = moto_queries.STOCK_ALL_ITEMS

    def counted(self: Any) -> Any:
        walks.append(self.name)
        return real(self)

    with moto_queries.partition_queries(), mock_aws():
        monkeypatch.setattr(moto_queries, "STOCK_ALL_ITEMS", counted)  # after install() checked it
        stack = create_resources(params={"LineApiBaseUrl": "http://127.0.0.1:9"})
        t = stack.tables["Table"]
        ddb = boto3.client("dynamodb", region_name="ap-northeast-1")
        seed_table_only(ddb, t)
        got = ddb.query(
            TableName=t, KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": s("ACCOUNT#a1")}
        )
        assert got["Count"] == 40
        got = ddb.query(
            TableName=t,
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :p",
            ExpressionAttributeValues={":p": s("LINKED#a1")},
        )
        assert got["Count"] == 10
        assert walks == []
        ddb.scan(TableName=t, Limit=5)  # a scan is stock moto's, whole table and all
        assert walks == [t]


def seed_table_only(ddb: Any, t: str) -> None:
    for a in range(3):
        for i in range(40):
            item: S = {"PK": s(f"ACCOUNT#a{a}"), "SK": s(f"FRIEND#{i:03d}")}
            if i % 4 == 0:
                item |= {"GSI1PK": s(f"LINKED#a{a}"), "GSI1SK": s(f"{i:03d}")}
            ddb.put_item(TableName=t, Item=item)
