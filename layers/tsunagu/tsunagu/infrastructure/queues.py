"""SQS fan-out of webhook events: as few SendMessageBatch calls as the batch limits allow."""

from __future__ import annotations

from typing import Any

from tsunagu.errors import UpstreamError
from tsunagu.infrastructure.aws import client
from tsunagu.intake.webhook import batches


class SqsEventQueues:
    def __init__(self, urls: dict[str, str]):
        self.urls = urls

    @property
    def sqs(self) -> Any:
        return client("sqs")

    def send(self, route: str, bodies: list[str]) -> int:
        calls = 0
        for group in batches(bodies):
            entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(group)]
            r = self.sqs.send_message_batch(QueueUrl=self.urls[route], Entries=entries)
            calls += 1
            failed = r.get("Failed") or []
            if failed:
                # Retry the failed entries once; if SQS still refuses, fail the request so LINE
                # redelivers (workers are idempotent on webhookEventId, so resends are harmless).
                retry = [e for e in entries if e["Id"] in {f["Id"] for f in failed}]
                r = self.sqs.send_message_batch(QueueUrl=self.urls[route], Entries=retry)
                calls += 1
                if r.get("Failed"):
                    raise UpstreamError("could not enqueue webhook events", code="enqueue_failed")
        return calls

    def send_later(self, route: str, body: str, delay_s: int) -> None:
        """One message that becomes visible after ``delay_s`` seconds (an SQS message timer,
        at most 900)."""
        self.sqs.send_message(QueueUrl=self.urls[route], MessageBody=body, DelaySeconds=min(900, max(0, delay_s)))
