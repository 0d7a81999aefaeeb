"""A two-item TransactWriteItems on the template's table at 1,000 and at 100,000 items, with
moto's own whole-table rollback and with the local stack's item-level undo log, in one run.

Each call is a boto3 request to moto in this process (``mock_aws``: request parsing, the backend,
the response), the shape tsunagu's conditional writes have: a Put of a new marker item
conditioned on ``attribute_not_exists`` plus an Update with ``ADD`` on a counter. Every tenth
call is made to fail its condition so the rollback path is timed too. The sizes are filled with
BatchWriteItem. Medians of ``--n`` calls per cell (stock at 100,000 items is seconds per call,
so it gets ``--n-stock``); ratios are 100,000 / 1,000.

    .venv/bin/python bench/transactions.py [--n 200] [--n-stock 5] [--sizes 1000,100000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import boto3
from moto import mock_aws

from tsunagu_local import moto_transactions
from tsunagu_local.resources import create_resources

os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("AWS_DEFAULT_REGION", "ap-northeast-1")


def fill(ddb: Any, table: str, upto: int, have: int) -> None:
    for start in range(have, upto, 25):
        req = [
            {
                "PutRequest": {
                    "Item": {
                        "PK": {"S": f"ACCOUNT#bench#FRIEND#{i // 50}"},
                        "SK": {"S": f"MSG#{i:09d}"},
                        "GSI1PK": {"S": f"bench#{i % 97}"},
                        "GSI1SK": {"S": f"{i:09d}"},
                        "text": {"S": "こんにちは、今日のおすすめは牛乳です" * 3},
                    }
                }
            }
            for i in range(start, min(start + 25, upto))
        ]
        while req:
            req = ddb.batch_write_item(RequestItems={table: req}).get("UnprocessedItems", {}).get(table, [])


def transaction(ddb: Any, table: str, i: int) -> Callable[[], None]:
    fail = i % 10 == 9

    def run() -> None:
        try:
            ddb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": table,
                            "Item": {"PK": {"S": "BENCH#marker"}, "SK": {"S": f"EVENT#{i if not fail else 0}"}},
                            "ConditionExpression": "attribute_not_exists(PK)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": table,
                            "Key": {"PK": {"S": "BENCH#counter"}, "SK": {"S": "TOTAL"}},
                            "UpdateExpression": "ADD n :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}},
                        }
                    },
                ]
            )
        except ddb.exceptions.TransactionCanceledException:
            if not fail:
                raise

    return run


def median_ms(ddb: Any, table: str, n: int, offset: int) -> float:
    times = []
    for i in range(offset, offset + n):
        call = transaction(ddb, table, i)
        t = time.perf_counter()
        call()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--n-stock", type=int, default=5, help="calls per cell for stock moto above 10,000 items")
    ap.add_argument("--sizes", default="1000,100000")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    with mock_aws():
        stack = create_resources(params={"LineApiBaseUrl": "http://127.0.0.1:9"})
        table = stack.tables["Table"]
        ddb = boto3.client("dynamodb")
        ddb.put_item(TableName=table, Item={"PK": {"S": "BENCH#marker"}, "SK": {"S": "EVENT#0"}})
        results: dict[tuple[str, int], float] = {}
        have, offset = 0, 1
        for size in sizes:
            fill(ddb, table, size, have)
            have = size
            for mode in ("stock", "patched"):
                n = args.n if mode == "patched" or size <= 10_000 else args.n_stock
                stock = mode == "stock"
                with moto_transactions.stock_transactions() if stock else moto_transactions.item_level_rollback():
                    transaction(ddb, table, offset)()  # warm the path
                    results[(mode, size)] = median_ms(ddb, table, n, offset + 1)
                offset += n + 1
                print(f"{mode:8} {size:>8,} items  median {results[(mode, size)]:8.2f} ms  (n={n})", flush=True)
        lo, hi = sizes[0], sizes[-1]
        for mode in ("stock", "patched"):
            print(f"{mode:8} ratio {hi:,}/{lo:,} items: {results[(mode, hi)] / results[(mode, lo)]:.2f}x")
        print(f"at {hi:,} items: stock / patched = {results[('stock', hi)] / results[('patched', hi)]:.0f}x")


if __name__ == "__main__":
    main()
