"""A one-partition Query on the template's table at 1,000 and at 100,000 items, with moto's own
query (the whole table sorted on every call) and with the local stack's partition query
(``tsunagu_local.moto_queries``), in one run: a table query (50 items of one partition) and a
GSI1 query (an index partition of 50 items), both the same size whatever the table's size.

Each call is a boto3 request to moto in this process (``mock_aws``). The sizes are filled with
BatchWriteItem (bench/transactions.py's items). Medians of ``--n`` calls per cell (stock at
100,000 items is seconds per call, so it gets ``--n-stock``); ratios are 100,000 / 1,000.

    .venv/bin/python bench/queries.py [--n 50] [--n-stock 3] [--sizes 1000,100000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

sys.path.insert(0, str(Path(__file__).resolve().parent))

from transactions import fill

from tsunagu_local import moto_queries
from tsunagu_local.resources import create_resources


def calls(ddb: Any, table: str) -> dict[str, dict[str, Any]]:
    return {
        "table": {
            "TableName": table,
            "KeyConditionExpression": "PK = :p",
            "ExpressionAttributeValues": {":p": {"S": "ACCOUNT#bench#FRIEND#7"}},
        },
        "gsi": {
            "TableName": table,
            "IndexName": "GSI1",
            "KeyConditionExpression": "GSI1PK = :p",
            "ExpressionAttributeValues": {":p": {"S": "BENCH#fixed"}},
        },
    }


def median_ms(ddb: Any, kwargs: dict[str, Any], n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        ddb.query(**kwargs)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--n-stock", type=int, default=3, help="calls per cell for stock moto above 10,000 items")
    ap.add_argument("--sizes", default="1000,100000")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with mock_aws():
        stack = create_resources(params={"LineApiBaseUrl": "http://127.0.0.1:9"})
        table = stack.tables["Table"]
        ddb = boto3.client("dynamodb", region_name="ap-northeast-1")
        for i in range(50):  # one index partition of a fixed size, whatever the table's size
            item = {
                "PK": {"S": f"BENCH#{i}"},
                "SK": {"S": "X"},
                "GSI1PK": {"S": "BENCH#fixed"},
                "GSI1SK": {"S": f"{i:03d}"},
            }
            ddb.put_item(TableName=table, Item=item)
        results: dict[tuple[str, str, int], float] = {}
        have = 0
        for size in sizes:
            fill(ddb, table, size, have)
            have = size
            for kind, kwargs in calls(ddb, table).items():
                for mode in ("stock", "patched"):
                    n = args.n if mode == "patched" or size <= 10_000 else args.n_stock
                    with moto_queries.stock_queries() if mode == "stock" else moto_queries.partition_queries():
                        ddb.query(**kwargs)  # warm
                        results[(kind, mode, size)] = ms = median_ms(ddb, kwargs, n)
                    print(f"{kind:5} {mode:8} {size:>8,} items  median {ms:9.2f} ms  (n={n})", flush=True)
        lo, hi = sizes[0], sizes[-1]
        for kind in ("table", "gsi"):
            for mode in ("stock", "patched"):
                r = results[(kind, mode, hi)] / results[(kind, mode, lo)]
                print(f"{kind:5} {mode:8} ratio {hi:,}/{lo:,} items: {r:.2f}x")
            speedup = results[(kind, "stock", hi)] / results[(kind, "patched", hi)]
            print(f"{kind:5} at {hi:,} items: stock / patched = {speedup:.0f}x")


if __name__ == "__main__":
    main()
