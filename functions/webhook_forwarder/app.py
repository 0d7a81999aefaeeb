"""SQS consumer: relays a verified webhook (raw body + LINE's signature) to one downstream URL.
A failed relay fails its record; SQS retries it and finally moves it to the forward DLQ."""

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tsunagu import wiring
from tsunagu.observability import logger, metrics, tracer

tracing = tracer()
forwarding = wiring.forwarding_service()
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> str:
    msg = json.loads(record.body)
    logger.append_keys(account_id=msg.get("accountId"))
    outcome = forwarding.forward(msg)
    logger.info("webhook forwarded", extra={"outcome": outcome, "attempt": record.attributes.approximate_receive_count})
    metrics.add_metric(name=f"Forward_{outcome}", unit="Count", value=1)
    return outcome


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracing.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
