"""Webhook intake speed, for 1, 10 and 100-event bodies.

(a) in process: verify + parse + build the queue entries (the intake service with in-memory
    queues, so no network) - median and p99;
(b) the whole request against the local stack (HTTP -> API Gateway v2 event -> handler ->
    Secrets Manager cache -> SendMessageBatch to moto), next to a bare SendMessageBatch of the
    same entries to the same moto as the baseline, interleaved in the same run.

    python bench/webhook_intake.py [--rounds 200]

The stack is started in a child process with its queue pollers off, so workers don't compete
for the CPU with what is measured."""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import pct, start_stack, stop_stack

from tests.conftest import line_event, sign, webhook_body
from tsunagu.intake.service import WebhookIntake
from tsunagu.intake.webhook import batches, build_entries, parse_envelope
from tsunagu_local.client import request

SECRET = "0123456789abcdef0123456789abcdef"
SIZES = (1, 10, 100)


def body_of(n: int) -> bytes:
    kinds = ["message", "follow", "unfollow", "postback"]
    evs = [
        line_event(kinds[i % 4], message={"type": "text", "id": str(i), "text": "営業時間を教えて"}) for i in range(n)
    ]
    return webhook_body(*evs)


class MemSecrets:
    def channel_secret(self, account_id: str) -> str:
        return SECRET


class MemQueues:
    def send(self, route: str, bodies: list[str]) -> int:
        return len(batches(bodies))


def in_process(rounds: int) -> list[tuple[int, float, float]]:
    intake = WebhookIntake(MemSecrets(), MemQueues())  # type: ignore[arg-type]
    out = []
    for n in SIZES:
        body = body_of(n)
        sig = sign(SECRET, body)
        samples = []
        for _ in range(rounds * 5):
            t = time.perf_counter()
            intake.accept("acct_0123456789abcdef", body, sig)
            samples.append((time.perf_counter() - t) * 1000)
        out.append((n, statistics.median(samples), pct(samples, 99)))
    return out


def empty_queues(sqs: object, queue_urls: object) -> None:
    """Delete and re-create each queue with the same name and attributes (PurgeQueue allows
    one call a minute); the URL stays the same, so the stack keeps sending to it."""
    for url in queue_urls:  # type: ignore[attr-defined]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]  # type: ignore[attr-defined]
        keep = {k: v for k, v in attrs.items() if k in ("VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy")}
        sqs.delete_queue(QueueUrl=url)  # type: ignore[attr-defined]
        sqs.create_queue(QueueName=url.rsplit("/", 1)[-1], Attributes=keep)  # type: ignore[attr-defined]


def against_stack(rounds: int) -> list[tuple[int, float, float, float, float]]:
    proc, ports = start_stack()
    try:
        api = f"http://127.0.0.1:{ports.http}"
        acct = request(
            "POST", f"{api}/accounts", {"name": "bench"}, headers={"Authorization": "Bearer bench-operator-key"}
        ).json
        aid = acct["account_id"]
        r = request(
            "PUT",
            f"{api}/accounts/{aid}/channel",
            {"channel_secret": SECRET, "access_token": "t" * 40},
            headers={"Authorization": f"Bearer {acct['api_key']}"},
        )
        assert r.status == 200, r.text
        sqs = boto3.client(
            "sqs",
            endpoint_url=f"http://127.0.0.1:{ports.moto}",
            region_name="ap-northeast-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        urls = {u.rsplit("-", 1)[-1]: u for u in sqs.list_queues()["QueueUrls"]}
        route_queue = {"friendship": urls["FriendshipQueue"], "message": urls["MessageQueue"]}
        out = []
        for n in SIZES:
            body = body_of(n)
            headers = {"Content-Type": "application/json; charset=utf-8", "X-Line-Signature": sign(SECRET, body)}
            by_route: dict[str, list[str]] = defaultdict(list)
            for e in build_entries(aid, parse_envelope(body), 0):
                by_route[e.route].append(e.body)
            whole, bare = [], []
            # Interleaved rounds, each on freshly emptied queues: moto's SendMessageBatch slows down
            # linearly with the number of messages a queue holds (8 s per call at 6,000 messages).
            for _ in range(rounds):
                empty_queues(sqs, route_queue.values())
                t = time.perf_counter()
                r = request("POST", f"{api}/line/{aid}/webhook", data=body, headers=headers)
                whole.append((time.perf_counter() - t) * 1000)
                assert r.status == 200, r.text
                empty_queues(sqs, route_queue.values())
                t = time.perf_counter()
                for route, bodies in by_route.items():
                    for group in batches(bodies):
                        sqs.send_message_batch(
                            QueueUrl=route_queue[route],
                            Entries=[{"Id": str(j), "MessageBody": b} for j, b in enumerate(group)],
                        )
                bare.append((time.perf_counter() - t) * 1000)
            out.append((n, statistics.median(whole), pct(whole, 99), statistics.median(bare), pct(bare, 99)))
        return out
    finally:
        stop_stack(proc)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    args = ap.parse_args()
    print(f"rounds: {args.rounds} per size (in process: {args.rounds * 5}); python {sys.version.split()[0]}")
    print("\n(a) in process: verify + parse + build entries")
    print("| events | median (ms) | p99 (ms) |\n|---:|---:|---:|")
    for n, med, p99 in in_process(args.rounds):
        print(f"| {n} | {med:.3f} | {p99:.3f} |")
    print("\n(b) whole request on the local stack vs a bare SendMessageBatch of the same entries (baseline)")
    print(
        "| events | request median (ms) | request p99 (ms) | baseline median (ms) | baseline p99 (ms) "
        "| median ratio |\n|---:|---:|---:|---:|---:|---:|"
    )
    for n, wm, wp, bm, bp in against_stack(args.rounds):
        print(f"| {n} | {wm:.2f} | {wp:.2f} | {bm:.2f} | {bp:.2f} | {wm / bm:.2f} |")


if __name__ == "__main__":
    main()
