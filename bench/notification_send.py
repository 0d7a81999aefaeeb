"""Notification send throughput against the LINE sandbox, one sender, one core.

(a) tsunagu's sender per notification - claim, render, the LINE call, ``sent`` + await marker +
    usage-ledger entry - with the store in memory: tsunagu's own cost on top of LINE's;
(b) the baseline: the same LINE call alone (``LineClient.pnp_push``) to the same sandbox;
(c) the sender with the real DynamoDB store on moto (in process): 3 DynamoDB requests per
    notification, dominated by moto's emulation of TransactWriteItems, which slows as the table
    fills - a floor for the local stack, not a figure for AWS.
Rounds are interleaved; figures are notifications per second, median over rounds.

    python bench/notification_send.py [--n 200] [--rounds 5]

On AWS each DynamoDB request adds a few milliseconds, so one sender does roughly 50-100
notifications/s and the event source's 10-way concurrency (template.yaml) reaches ~500-1,000/s,
below LINE's 2,000 requests/s per channel; each instance's token bucket holds it to its share."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AWS_DEFAULT_REGION", "ap-northeast-1")
for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
    os.environ.setdefault(var, "bench")

from moto import mock_aws  # noqa: E402

from tsunagu import wiring  # noqa: E402
from tsunagu.infrastructure.line_api import LineClient  # noqa: E402
from tsunagu.notifications import domain as n  # noqa: E402
from tsunagu.notifications.phone import line_hash  # noqa: E402
from tsunagu.notifications.service import SenderConfig  # noqa: E402
from tsunagu_local.resources import create_resources  # noqa: E402
from tsunagu_local.sandbox import LineSandbox  # noqa: E402
from tsunagu_local.stack import Ports  # noqa: E402

CONTENT = {"messages": [{"type": "text", "text": "{{name}}様、ご注文{{order}}を発送しました。"}]}


class MemStore:
    """The notification store's send-path methods over a dict (no AWS)."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, object]] = {}
        self.batches: dict[str, dict[str, object]] = {}
        self.ledger: set[str] = set()

    def batch(self, account_id: str, batch_id: str) -> dict[str, object] | None:
        return self.batches.get(batch_id)

    def claim(self, account_id: str, tag: str, lease_ms: int) -> tuple[str | None, dict[str, object] | None]:
        item = self.items[tag]
        if item["state"] != n.ACCEPTED:
            return None, item
        item["state"] = n.SENDING
        return "c", item

    def mark_sent(self, account_id: str, tag: str, claim: str, route: str, kind: str, send_id: str, at: int) -> str:
        self.items[tag].update(state=n.SENT, route=route, sent_at=at)
        self.ledger.add(send_id)
        return "sent"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200, help="notifications per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--moto-n", type=int, default=30, help="notifications per round through moto")
    args = ap.parse_args()

    sandbox = LineSandbox()
    port = Ports.random().sandbox
    server = sandbox.serve("127.0.0.1", port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ch = sandbox.new_channel()  # no webhook URL: no delivery events to distract the measurement
    base = f"http://127.0.0.1:{port}"

    with mock_aws():
        stack = create_resources(params={"LineApiBaseUrl": base})
        for spec in stack.functions.values():
            os.environ.update(spec.environment)
        os.environ["LINE_API_BASE_URL"] = base
        wiring.reset()
        aid = "acct_" + "0" * 16
        wiring.channel_secrets().put(aid, ch.secret, ch.token)
        store = wiring.notification_store()
        sender = wiring.notification_sender()
        sender.config = SenderConfig(rate_per_second=1e9)
        line = LineClient(base)

        def prepare(round_no: int) -> list[dict[str, object]]:
            batch_id = f"nb_{round_no:021d}"
            store.put_batch(
                aid,
                {"batch_id": batch_id, "template_id": "t", "kind": n.FLEXIBLE, "content": CONTENT, "routing": "x"},
            )
            msgs = []
            for i in range(args.n):
                ref = f"r{round_no}-{i}"
                e164 = f"+8190{round_no % 9 + 1}{i:07d}"
                item = n.AcceptedItem(i, ref, n.delivery_tag(aid, ref), e164, "JP", {"name": "客", "order": ref})
                store.add(aid, batch_id, i, item, {})
                msgs.append({"a": aid, "b": batch_id, "t": item.tag, "to": line_hash(e164), "p": item.params})
            return msgs

        body = n.render(n.FLEXIBLE, CONTENT, {"name": "客", "order": "r"})
        mem = MemStore()
        mem_sender = type(sender)(mem, None, None, None, sender.secrets, sender.line, sender.config)
        mem_rates, line_rates, moto_rates = [], [], []
        for r in range(args.rounds):
            msgs = prepare(r)
            for m in msgs:
                mem.items[str(m["t"])] = {"state": n.ACCEPTED}
            mem.batches[str(msgs[0]["b"])] = store.batch(aid, str(msgs[0]["b"]))
            t = time.perf_counter()
            for m in msgs:
                assert mem_sender.send(m) == "sent"
            mem_rates.append(args.n / (time.perf_counter() - t))
            t = time.perf_counter()
            for m in msgs:
                line.pnp_push(ch.token, str(m["to"]), body, str(m["t"]))
            line_rates.append(args.n / (time.perf_counter() - t))
            t = time.perf_counter()
            for m in msgs[: args.moto_n]:
                assert sender.send(m) == "sent"
            moto_rates.append(args.moto_n / (time.perf_counter() - t))
        server.shutdown()

    a, b, c = statistics.median(mem_rates), statistics.median(line_rates), statistics.median(moto_rates)
    print(f"notifications per round: {args.n} ({args.moto_n} on moto), rounds: {args.rounds} (interleaved)")
    print(f"(a) sender, store in memory : {a:8.0f} notifications/s  {1000 / a:6.2f} ms each (median)")
    print(f"(b) LINE call alone         : {b:8.0f} calls/s          {1000 / b:6.2f} ms each (median)")
    print(f"(c) sender on moto DynamoDB : {c:8.0f} notifications/s  {1000 / c:6.2f} ms each (median)")
    print(f"a/b = {a / b:.2f} (tsunagu's bookkeeping keeps this share of the bare LINE pace)")


if __name__ == "__main__":
    main()
