"""SQS consumer: follow / unfollow events keep friend state and counts.

Exactly once per webhookEventId: the service writes an event marker in the same DynamoDB
transaction as the state change. Failed records are reported as partial batch failures."""

import json

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tsunagu import wiring
from tsunagu.observability import logger, mask_user_id
from tsunagu.workers import sqs_handler

friendships = wiring.friendship_service()


def record_handler(record: SQSRecord) -> str:
    msg = json.loads(record.body)
    event = msg["event"]
    outcome = friendships.handle(msg["accountId"], event, int(msg.get("receivedAt", 0)))
    user = mask_user_id((event.get("source") or {}).get("userId"))
    logger.info("friendship event", extra={"outcome": outcome, "type": event.get("type"), "user": user})
    return f"Friendship_{outcome}"


lambda_handler = sqs_handler(record_handler)
