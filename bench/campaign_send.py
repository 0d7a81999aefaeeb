"""A campaign to N friends (default 100,000) on the local stack: how long the API takes to accept
the send (the work must go to the campaign queue), then the launch and the chunks run in this
process against the stack's moto server and LINE sandbox, counting DynamoDB requests and LINE
calls. Two ways in the same run: every variant as multicasts of 500 (``--multicast-only``
threshold) and the default threshold (a variant above 5,000 goes out as an audience upload and
one narrowcast). Baseline for the API time: ``GET /accounts/{id}/campaigns/{cid}`` (one read).

    python bench/campaign_send.py [--n 100000] [--rounds 5]"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import bench_account, start_stack, stop_stack  # noqa: E402
from tsunagu_local.client import request  # noqa: E402

TEXT = [{"type": "text", "text": "冬のセール"}]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    proc, ports = start_stack()
    try:
        run(a.n, a.rounds, ports)
    finally:
        stop_stack(proc)


def run(n: int, rounds: int, ports: Any) -> None:
    import boto3

    from tsunagu_local import seed

    acct = bench_account(ports)
    api, sb, moto, aid, auth = acct.api, acct.sandbox, acct.moto, acct.account_id, acct.auth
    seeder = acct.seeder()
    table = seeder.table
    t0 = time.perf_counter()
    seed.run(seeder, n, 0, 0, say=lambda _: None)
    print(f"seeded {n:,} friends in {time.perf_counter() - t0:.0f} s")

    sqs = boto3.client(
        "sqs", endpoint_url=moto, region_name="ap-northeast-1", aws_access_key_id="local", aws_secret_access_key="local"
    )
    url = next(u for u in sqs.list_queues()["QueueUrls"] if u.endswith("CampaignQueue"))
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": moto,
            "AWS_DEFAULT_REGION": "ap-northeast-1",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "TABLE_NAME": table,
            "SECRET_PREFIX": "tsunagu/dev",
            "LINE_API_BASE_URL": sb,
            "CAMPAIGN_QUEUE_URL": url,
            "CAMPAIGN_QUEUE_ARN": arn,
            "CAMPAIGN_SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/tsunagu-dev-campaign-scheduler",
        }
    )
    from botocore.config import Config

    from tsunagu import wiring
    from tsunagu.infrastructure import aws
    from tsunagu.infrastructure.aws import client

    # The launch's one pass over the friends pages through moto, whose Query walks the whole
    # table for every page (DynamoDB reads only the partition's range): Lambda's 5 s read
    # timeout would stop it here, so the workers in this process wait longer.
    aws._CONFIG = Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=2, read_timeout=600)

    ddb_calls = [0]
    client("dynamodb").meta.events.register(
        "before-call.dynamodb", lambda **_: ddb_calls.__setitem__(0, ddb_calls[0] + 1)
    )

    for label, threshold in (("multicasts of 500", 10**9), ("default threshold (narrowcast above 5,000)", 5_000)):
        body = {
            "name": label,
            "rule": {"blocked": False},
            "variants": [{"name": "A", "ratio": 50, "messages": TEXT}, {"name": "B", "ratio": 50, "messages": TEXT}],
            "holdout_percent": 10,
        }
        cid = request("POST", f"{api}/accounts/{aid}/campaigns", body, headers=auth).json["campaign_id"]
        reads = []
        for _ in range(rounds):
            t = time.perf_counter()
            request("GET", f"{api}/accounts/{aid}/campaigns/{cid}", headers=auth)
            reads.append(time.perf_counter() - t)
        t = time.perf_counter()
        r = request("POST", f"{api}/accounts/{aid}/campaigns/{cid}/schedule", {}, headers=auth, timeout=60)
        accept = time.perf_counter() - t
        assert r.status == 202, r.text
        print(f"[{label}] API accepted the schedule in {accept * 1000:.0f} ms", flush=True)
        request("DELETE", f"{sb}/_sandbox/calls")
        svc = wiring.campaigns()
        svc.narrowcast_above = threshold
        ddb_calls[0] = 0
        t = time.perf_counter()
        worked = 0
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                break
            for m in got:
                msg = json.loads(m["Body"])
                if msg["k"] == "launch":
                    svc.launch(msg["a"], msg["c"])
                else:
                    svc.send_chunk(msg["a"], msg["c"], int(msg["i"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                worked += 1
        took = time.perf_counter() - t
        view = svc.view(aid, cid)
        sent = view["progress"]["recipients_sent"]
        calls = request("GET", f"{sb}/_sandbox/calls").json["calls"]
        by_path: dict[str, int] = {}
        for c in calls:
            by_path[c["path"]] = by_path.get(c["path"], 0) + 1
        hold = view["snapshot"]["groups"]["holdout"]
        print(f"\n== {label}: state {view['state']}, {sent:,} recipients, hold-out {hold:,}")
        base = statistics.median(reads) * 1000
        print(f"API accepts the send: {accept * 1000:.0f} ms (baseline GET campaign median {base:.0f} ms)")
        print(f"queue messages worked: {worked}, in {took:.1f} s in one process")
        print(f"LINE calls: {sum(by_path.values())} {by_path}")
        print(f"DynamoDB requests: {ddb_calls[0]:,} ({ddb_calls[0] / max(1, sent):.4f} per recipient)")


if __name__ == "__main__":
    main()
