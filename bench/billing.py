"""Billing figures.

(a) Invoice computation for one account-month with 1,000 vs 10,000,000 metered messages: the
    close reads the month's sharded counters (one query) and prices them; it must not grow with
    volume. Timed in process on moto (``mock_aws``), interleaved, median of N rounds; also the
    pure ``compute_invoice`` alone.
(b) Usage-ledger write throughput against the local stack (moto server in a child process):
    8 threads record sends (entry + counter ADD, one transaction each) with the counters split
    over 8 shards vs 1, interleaved rounds.

    python bench/billing.py [--rounds 7] [--writes 100]

Sharding is for DynamoDB, where one item takes at most ~1,000 writes/s: with one counter item
every send of an account-month writes the same item. moto has no such limit (it serialises
every DynamoDB request on the local stack), so (b) shows what sharding costs here, not what it
buys on AWS."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import start_stack, stop_stack

os.environ.setdefault("AWS_DEFAULT_REGION", "ap-northeast-1")
for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
    os.environ.setdefault(var, "bench")

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from tsunagu.billing import domain as b  # noqa: E402
from tsunagu.billing.store import DynamoBillingStore  # noqa: E402
from tsunagu.billing.usage_store import DynamoUsageLedger, counter_update  # noqa: E402
from tsunagu_local.resources import create_resources  # noqa: E402

MONTH = "2026-11"
HISTORY = [(date(2026, 1, 1), "standard")]


class Accounts:
    def __init__(self, ids: list[str]):
        self.ids = ids

    def list_ids(self) -> list[str]:
        return self.ids


def invoice_times(rounds: int) -> dict[str, list[float]]:
    from tsunagu.billing.service import BillingService

    with mock_aws():
        stack = create_resources()
        table = next(t for lid, t in stack.tables.items() if lid == "Table")
        ddb = boto3.client("dynamodb")
        store, ledger = DynamoBillingStore(table), DynamoUsageLedger(table)
        svc = BillingService(store, ledger, Accounts([]), None, None, None)
        svc.history = lambda _aid: HISTORY  # type: ignore[method-assign]
        volumes = {"1,000": 1_000, "10,000,000": 10_000_000}
        for label, n in volumes.items():
            aid = f"acct_{label.replace(',', ''):0>16}"
            # The ledger's counters as a month of n pushes leaves them (8 shards).
            for shard in range(8):
                share = n // 8 + (1 if shard < n % 8 else 0)
                ddb.transact_write_items(
                    TransactItems=[counter_update(table, aid, MONTH, shard, {"push_messages": share})]
                )
        times: dict[str, list[float]] = {f"close {k}": [] for k in volumes} | {f"compute {k}": [] for k in volumes}
        for r in range(rounds):
            for label, n in volumes.items():
                aid = f"acct_{label.replace(',', ''):0>16}"
                ddb.delete_item(TableName=table, Key={"PK": {"S": f"ACCOUNT#{aid}"}, "SK": {"S": f"INVOICE#{MONTH}"}})
                t = time.perf_counter()
                assert svc.close_month(MONTH, [aid]) == {aid: "closed"}
                times[f"close {label}"].append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                for _ in range(100):
                    b.compute_invoice(MONTH, HISTORY, n)
                times[f"compute {label}"].append((time.perf_counter() - t) * 1000 / 100)
            if r == 0:
                inv = svc.invoice(f"acct_{'10000000':0>16}", MONTH)
                print(f"10,000,000 messages -> total {inv['totals']['total']} yen (tax incl.)")
        return times


def record_all(ledger: DynamoUsageLedger, aid: str, send_ids: list[str]) -> None:
    # ``record`` may answer False for a send it did record: botocore retried a transaction that
    # timed out on the busy moto server and the retry found the entry. The totals are checked.
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda s: ledger.record(aid, s, "push", 1, 1_795_000_000_000), send_ids))


def ledger_throughput(rounds: int, writes: int) -> dict[int, list[float]]:
    proc, ports = start_stack()
    try:
        os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{ports.moto}"
        from tsunagu.infrastructure import aws

        aws.client.cache_clear()  # the clients of (a) were made inside mock_aws
        aws.session.cache_clear()
        ddb = boto3.client("dynamodb")
        table = next(t for t in ddb.list_tables()["TableNames"] if "Idempotency" not in t)
        out: dict[int, list[float]] = {8: [], 1: []}
        for r in range(rounds):
            for shards in (8, 1):
                ledger = DynamoUsageLedger(table, shards=shards)
                aid = f"acct_{r:08d}{shards:08d}"
                ids = [str(uuid.uuid4()) for _ in range(writes)]
                t = time.perf_counter()
                record_all(ledger, aid, ids)
                out[shards].append(writes / (time.perf_counter() - t))
                assert ledger.month_totals(aid, MONTH) == {"push_messages": writes}
        return out
    finally:
        os.environ.pop("AWS_ENDPOINT_URL", None)
        from tsunagu.infrastructure import aws

        aws.client.cache_clear()  # (a) makes its own clients inside mock_aws
        aws.session.cache_clear()
        stop_stack(proc)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--writes", type=int, default=100)
    args = ap.parse_args()
    rates = ledger_throughput(args.rounds, args.writes)  # first: (a) leaves moto's in-process mock behind
    times = invoice_times(args.rounds)
    print(f"(a) invoice for one account-month, median of {args.rounds} interleaved rounds")
    print("| what | 1,000 messages (ms) | 10,000,000 messages (ms) | ratio |")
    print("|---|---:|---:|---:|")
    for what in ("close", "compute"):
        small = statistics.median(times[f"{what} 1,000"])
        big = statistics.median(times[f"{what} 10,000,000"])
        label = "close: read 8 counter shards + price + write" if what == "close" else "compute_invoice alone"
        print(f"| {label} | {small:.3f} | {big:.3f} | {big / small:.2f} |")
    s8, s1 = statistics.median(rates[8]), statistics.median(rates[1])
    print(f"\n(b) ledger writes against the local stack, 8 threads, {args.writes} sends per round, median")
    print("| counters | sends recorded/s |")
    print("|---|---:|")
    print(f"| 8 shards | {s8:.0f} |")
    print(f"| 1 item (no sharding) | {s1:.0f} |")
    print(f"ratio 8/1: {s8 / s1:.2f}")


if __name__ == "__main__":
    main()
