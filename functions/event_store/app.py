"""SQS consumer for event kinds no worker acts on yet (accountLink, delivery) and for unknown
or future kinds: each is kept once (redacted) and counted, never lost, never a crash."""

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tsunagu import wiring
from tsunagu.observability import logger, metrics, tracer

tracing = tracer()
events = wiring.event_store_service()
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> str:
    msg = json.loads(record.body)
    outcome = events.keep(msg["accountId"], msg["event"])
    logger.info("event stored", extra={"outcome": outcome, "type": msg["event"].get("type")})
    metrics.add_metric(name=f"StoredEvent_{outcome}", unit="Count", value=1)
    return outcome


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracing.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
