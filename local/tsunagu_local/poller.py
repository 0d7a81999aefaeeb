"""SQS event source mappings, polled as Lambda's pollers do: the template's batch size and
batching window, records in Lambda's SQS event shape, and partial batch responses.

Succeeded records are deleted; failed ones go back to the queue (visible again after
``retry_delay`` seconds - shorter than the queue's visibility timeout so local runs don't
wait minutes) and the queue's redrive policy moves them to the DLQ after maxReceiveCount.
A function error fails the whole batch, as on AWS."""

from __future__ import annotations

import threading
import time
from typing import Any

from tsunagu_local.resources import REGION
from tsunagu_local.runtime import LocalFunction


class SqsPoller:
    def __init__(self, sqs: Any, fn: LocalFunction, source: dict[str, Any], queue_url: str, retry_delay: int = 1):
        self.sqs, self.fn, self.source, self.queue_url = sqs, fn, source, queue_url
        self.arn = source["Queue"]
        self.batch_size = int(source.get("BatchSize", 10))
        self.window = float(source.get("MaximumBatchingWindowInSeconds", 0))
        self.partial = "ReportBatchItemFailures" in (source.get("FunctionResponseTypes") or [])
        self.retry_delay = retry_delay
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"poll-{fn.name}", daemon=True)
        self.invocations = 0
        self.idle = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _receive(self) -> list[dict[str, Any]]:
        msgs: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.window
        while len(msgs) < self.batch_size and not self._stop.is_set():
            r = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.batch_size - len(msgs)),
                WaitTimeSeconds=0 if msgs else 1,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            got = r.get("Messages", [])
            msgs += got
            if not got or time.monotonic() >= deadline:
                break
        return msgs

    def poll_once(self) -> int:
        msgs = self._receive()
        if not msgs:
            self.idle.set()
            return 0
        self.idle.clear()
        records = [self._record(m) for m in msgs]
        failed_ids: set[str]
        try:
            result = self.fn.invoke({"Records": records})
            failed_ids = (
                {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])} if self.partial else set()
            )
        except Exception as e:
            print(f"[poller] {self.fn.name} failed the whole batch: {type(e).__name__}: {e}", flush=True)
            failed_ids = {m["MessageId"] for m in msgs}
        self.invocations += 1
        ok = [m for m in msgs if m["MessageId"] not in failed_ids]
        bad = [m for m in msgs if m["MessageId"] in failed_ids]
        if ok:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(ok)],
            )
        for m in bad:
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=self.retry_delay
            )
        return len(msgs)

    def _record(self, m: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m.get("Attributes", {}),
            "messageAttributes": m.get("MessageAttributes", {}),
            "md5OfBody": m.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.arn,
            "awsRegion": REGION,
        }

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as e:  # keep polling: the local stack must not die on one bad call
                print(f"[poller] {self.fn.name}: {type(e).__name__}: {e}", flush=True)
                time.sleep(0.5)
