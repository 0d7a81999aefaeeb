"""SQS consumer: follow / unfollow events keep friend state and counts.

Exactly once per webhookEventId: the service writes an event marker in the same DynamoDB
transaction as the state change. Failed records are reported as partial batch failures."""

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tsunagu import wiring
from tsunagu.observability import logger, mask_user_id, metrics, tracer

tracing = tracer()
friendships = wiring.friendship_service()

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> str:
    msg = json.loads(record.body)
    event = msg["event"]
    outcome = friendships.handle(msg["accountId"], event, int(msg.get("receivedAt", 0)))
    logger.info(
        "friendship event",
        extra={
            "outcome": outcome,
            "type": event.get("type"),
            "user": mask_user_id((event.get("source") or {}).get("userId")),
        },
    )
    metrics.add_metric(name=f"Friendship_{outcome}", unit="Count", value=1)
    return outcome


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracing.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
