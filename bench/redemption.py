"""Coupon redemption against the local stack (moto server as AWS, the LINE sandbox as LINE).

1. Latency: ``POST /accounts/{id}/redemptions`` over HTTP (the gateway, the lean function, its
   reads and the one TransactWriteItems), the same redemption called in-process (no gateway),
   and the baseline: one bare conditional ``PutItem`` from boto3 to the same moto server.
   Median and p99 of N sequential calls each, interleaved.
2. The race: 32 concurrent redemptions of one member's code from 32 registers, repeated for
   ``--trials`` members; the number of winners per trial (must always be 1).

    .venv/bin/python bench/redemption.py [--n 100] [--trials 100] [--table-items 100000]

``--table-items N`` seeds the account with ~N items (1,000 friends and their chats, through
``tsunagu_local.seed``) after the grants and before the timed part, to time redemption on a
table of realistic size; ``TSUNAGU_MOTO_STOCK_TRANSACTIONS=1`` times it with moto's own
whole-table transaction rollback instead of the local stack's item-level one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import pct

from tsunagu.coupons import domain as c
from tsunagu_local.client import request
from tsunagu_local.stack import LocalStack, Ports

MILK = "4901234567890"


def setup(stack: LocalStack) -> dict[str, Any]:
    api, sb = stack.api_url, stack.sandbox_url
    r = request("POST", f"{api}/accounts", {"name": "bench"}, headers={"Authorization": f"Bearer {stack.operator_key}"})
    aid, auth = r.json["account_id"], {"Authorization": f"Bearer {r.json['api_key']}"}
    login = request("POST", f"{sb}/_sandbox/login-channels", {}).json
    body = {"channel_id": login["channelId"], "channel_secret": login["channelSecret"]}
    assert request("PUT", f"{api}/accounts/{aid}/login-channel", body, headers=auth).status == 200
    coupon = {
        "title": "牛乳30円引き",
        "kind": "yen",
        "amount": 30,
        "valid_days": {"first": "2020-01-01", "last": "2099-12-31"},
        "eligible_items": [MILK],
    }
    cid = request("POST", f"{api}/accounts/{aid}/coupons", coupon, headers=auth).json["coupon_id"]
    return {"aid": aid, "auth": auth, "login": login, "cid": cid}


def grant_users(stack: LocalStack, acct: dict[str, Any], n: int) -> list[str]:
    """n members, each granted the coupon."""
    users = ["U" + uuid.uuid4().hex for _ in range(n)]
    for i in range(0, n, 500):
        r = request(
            "POST",
            f"{stack.api_url}/accounts/{acct['aid']}/coupons/{acct['cid']}/grants",
            {"user_ids": users[i : i + 500]},
            headers=acct["auth"],
            timeout=120,
        )
        assert r.status == 200, r.text
    return users


def code_now(wiring: Any, acct: dict[str, Any], user: str) -> str:
    """The code the member's page shows now (computed as the page does; outside the timing)."""
    ref = wiring.coupon_store().grant(acct["aid"], acct["cid"], user)["ref"]
    return c.issue_code(wiring.coupon_code_keys().key(acct["aid"]), ref, datetime.now(UTC)).code


def n_items(ddb: Any, table: str) -> int:
    # A Scan page stops at 1 MB, so count every page (one page undercounts a seeded table).
    kwargs: dict[str, Any] = {"TableName": table, "Select": "COUNT"}
    total = 0
    while True:
        r = ddb.scan(**kwargs)
        total += int(r["Count"])
        if "LastEvaluatedKey" not in r:
            return total
        kwargs["ExclusiveStartKey"] = r["LastEvaluatedKey"]


def doc(code: str, register: str = "R01") -> dict[str, Any]:
    return {
        "store_id": "S001",
        "register_id": register,
        "code": code,
        "idempotency_key": str(uuid.uuid4()),
        "lines": [
            {"item_code": MILK, "quantity": 2, "unit_price": 198},
            {"item_code": "4900000000017", "quantity": 1, "unit_price": 98},
            {"item_code": MILK, "quantity": 1, "unit_price": 150, "marked_down": True},
        ],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--table-items", type=int, default=0, help="seed the table to about this size first")
    args = ap.parse_args()
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    stack = LocalStack(ports=Ports.random(), log_level="ERROR", metrics=False).start()
    try:
        run(stack, args.n, args.trials, args.table_items)
    finally:
        stack.stop()


def run(stack: LocalStack, n: int, trials: int, table_items: int = 0) -> None:
    import boto3

    from tsunagu import wiring

    acct = setup(stack)
    table = next(t for t in boto3.client("dynamodb").list_tables()["TableNames"] if "Idempotency" not in t)
    os.environ.update({"TABLE_NAME": table, "SECRET_PREFIX": "tsunagu/dev"})
    wiring.reset()
    redemptions = wiring.redemptions()
    ddb = boto3.client("dynamodb")
    race_users = grant_users(stack, acct, trials)
    winners: list[int] = []
    t0 = time.perf_counter()
    for user in race_users:
        code = code_now(wiring, acct, user)

        def one(i: int, code: str = code) -> bool:
            try:
                redemptions.redeem(acct["aid"], doc(code, f"R{i:02d}"))
            except c.CouponRefused as e:
                assert e.code == "already_used", e.code
                return False
            return True

        with ThreadPoolExecutor(32) as pool:
            winners.append(sum(pool.map(one, range(32))))
    spread = {k: winners.count(k) for k in sorted(set(winners))}
    print(
        f"race: {trials} trials × 32 concurrent redemptions of one member's code "
        f"({time.perf_counter() - t0:.0f} s): winners per trial → trials {spread}"
    )

    users = grant_users(stack, acct, 2 * n)
    if table_items:
        from tsunagu_local import seed

        seeder = seed.Seeder(ddb, boto3.client("secretsmanager"), table, "tsunagu/dev", acct["aid"], False)
        seed.run(seeder, friends=1000, chats=max(0, (table_items - 1000) // 2), members=0)
        print(f"table: {n_items(ddb, table):,} items")
    http_ms: list[float] = []
    svc_ms: list[float] = []
    put_ms: list[float] = []
    tx_ms: list[float] = []
    url = f"{stack.api_url}/accounts/{acct['aid']}/redemptions"
    for i in range(n):  # interleaved, so drift hits all three alike
        body = doc(code_now(wiring, acct, users[2 * i]))
        t0 = time.perf_counter()
        r = request("POST", url, body, headers=acct["auth"])
        http_ms.append((time.perf_counter() - t0) * 1000)
        assert r.status == 201, r.text
        body = doc(code_now(wiring, acct, users[2 * i + 1]))
        t0 = time.perf_counter()
        redemptions.redeem(acct["aid"], body)
        svc_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        ddb.put_item(
            TableName=table,
            Item={"PK": {"S": f"BENCH#{uuid.uuid4().hex}"}, "SK": {"S": "X"}, "n": {"N": str(i)}},
            ConditionExpression="attribute_not_exists(PK)",
        )
        put_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        ddb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table,
                        "Item": {"PK": {"S": f"BENCH#{uuid.uuid4().hex}"}, "SK": {"S": "T"}},
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            ]
        )
        tx_ms.append((time.perf_counter() - t0) * 1000)
    base = statistics.median(put_ms)
    print(f"\nlatency, {n} sequential calls each, table of {n_items(ddb, table)} items at the end (ms)")
    print("| call | median | p99 | median × conditional PutItem |")
    print("|---|---:|---:|---:|")
    for name, xs in (
        ("POST /redemptions over HTTP (gateway + lean function)", http_ms),
        ("redemption in-process (service → moto server)", svc_ms),
        ("bare conditional PutItem (boto3 → moto server)", put_ms),
        ("bare TransactWriteItems, one conditional Put (boto3 → moto server)", tx_ms),
    ):
        print(f"| {name} | {statistics.median(xs):.1f} | {pct(xs, 99):.1f} | {statistics.median(xs) / base:.1f} |")

    counts = redemptions.store.counts(acct["aid"], acct["cid"])
    print(f"coupon counter: redeemed={counts.get('redeemed')} (expected {2 * n + trials})")


if __name__ == "__main__":
    main()
