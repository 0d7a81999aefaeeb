"""Data gifts under contention (R-GIFT-1): 32 concurrent 500 MB gifts from one line with
1,000 MB left, on a moto server (DynamoDB requests atomic, as on AWS). Each trial checks the
invariants - the giver never below zero, the sum of all balances unchanged, each applied gift id
once in the ledger of gifts and in both histories - and times the burst; the baseline is the
same 32 threads each sending one bare conditional ``UpdateItem`` (``remaining_mb >= :mb``) to
the same server in the same run.

    python bench/gifts.py [--trials 5] [--threads 32]"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import boto3
from common import ROOT

from tsunagu import keys, wiring
from tsunagu.errors import Conflict
from tsunagu.infrastructure.dynamodb import to_item
from tsunagu.lines.domain import LinesRefused
from tsunagu.lines.service import LinesService
from tsunagu.lines.store import DynamoLineStore
from tsunagu.linking.store import DynamoLinkStore
from tsunagu_local.resources import create_resources
from tsunagu_local.stack import free_port


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tsunagu_local.moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
            return proc, url
        except OSError:
            time.sleep(0.1)
    raise SystemExit("moto server did not start")


def trial(svc: LinesService, store: DynamoLineStore, account: str, threads: int) -> dict[str, float]:
    receivers = [f"R{i}" for i in range(8)]
    svc.load(
        account,
        [{"line_id": "G", "member_number": "100001", "allowance_mb": 3000, "remaining_mb": 1000}]
        + [{"line_id": r, "member_number": "100001", "allowance_mb": 3000, "remaining_mb": 0} for r in receivers],
    )
    ids = ["G", *receivers]
    before = sum(store.get(account, i).remaining_mb for i in ids)  # type: ignore[union-attr]

    def give(i: int) -> str:
        try:
            return str(svc.gift(account, f"gift-{i}", "G", receivers[i % 8], 500)["status"])
        except (LinesRefused, Conflict) as e:
            return e.code

    t = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        outcomes = Counter(pool.map(give, range(threads)))
    wall = time.perf_counter() - t
    after = {i: store.get(account, i).remaining_mb for i in ids}  # type: ignore[union-attr]
    applied = [i for i in range(threads) if store.gift_record(account, f"gift-{i}")]
    history = store.history(account, "G", 100)
    assert min(after.values()) >= 0, after
    assert sum(after.values()) == before, (before, after)
    assert len(applied) == outcomes["applied"] == 2, outcomes
    assert sorted(h["gift_id"] for h in history) == sorted(f"gift-{i}" for i in applied)
    return {"wall_ms": wall * 1000, "applied": len(applied), "refused": outcomes["gift_insufficient_data"]}


def baseline(table: str, account: str, threads: int) -> float:
    ddb = boto3.client("dynamodb")
    store = DynamoLineStore(table)
    store.db.put_item(TableName=table, Item=to_item({**keys.mobile_line(account, "B"), "remaining_mb": 1000}))

    def one(_: int) -> bool:
        try:
            ddb.update_item(
                TableName=table,
                Key=to_item(keys.mobile_line(account, "B")),
                UpdateExpression="SET remaining_mb = remaining_mb - :mb",
                ConditionExpression="remaining_mb >= :mb",
                ExpressionAttributeValues=to_item({":mb": 500}),
            )
            return True
        except ddb.exceptions.ConditionalCheckFailedException:
            return False

    t = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        wins = sum(pool.map(one, range(threads)))
    assert wins == 2
    return (time.perf_counter() - t) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--threads", type=int, default=32)
    args = ap.parse_args()
    proc, url = start_moto()
    try:
        os.environ.update(
            AWS_ENDPOINT_URL=url,
            AWS_ACCESS_KEY_ID="local",
            AWS_SECRET_ACCESS_KEY="local",
            AWS_DEFAULT_REGION="ap-northeast-1",
        )
        wiring.reset()
        table = create_resources(session=boto3.session.Session(region_name="ap-northeast-1")).tables["Table"]
        store = DynamoLineStore(table)
        svc = LinesService(store, DynamoLinkStore(table))
        ours, base = [], []
        for n in range(args.trials):
            r = trial(svc, store, f"acct_bench{n}", args.threads)
            ours.append(r["wall_ms"])
            base.append(baseline(table, f"acct_base{n}", args.threads))
            print(
                f"trial {n + 1}: {r['applied']:.0f} applied, {r['refused']:.0f} refused, invariants hold; "
                f"burst {r['wall_ms']:.0f} ms (baseline {base[-1]:.0f} ms)"
            )
        print(
            f"{args.threads} concurrent gifts, {args.trials} trials: every trial 2 applied, giver 0 MB, sum unchanged"
        )
        print(
            f"burst median {statistics.median(ours):.0f} ms vs bare conditional UpdateItem "
            f"{statistics.median(base):.0f} ms "
            f"(ratio {statistics.median(ours) / statistics.median(base):.1f}x)"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
