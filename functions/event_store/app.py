"""SQS consumer for ``delivery`` events (a LINE notification message reached its user: the
notification is marked delivered by its delivery tag) and for event kinds no worker acts on
(unknown or future kinds). Every event is kept once (redacted) and counted, never lost."""

import json

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tsunagu import wiring
from tsunagu.observability import logger
from tsunagu.workers import sqs_handler

events = wiring.event_store_service()
deliveries = wiring.delivery_reconciler()


def record_handler(record: SQSRecord) -> str:
    msg = json.loads(record.body)
    event = msg["event"]
    if event.get("type") == "delivery":
        delivered = deliveries.delivered(msg["accountId"], event)
        logger.info("delivery", extra={"outcome": delivered})
    outcome = events.keep(msg["accountId"], event)
    logger.info("event stored", extra={"outcome": outcome, "type": event.get("type")})
    return f"StoredEvent_{outcome}"


lambda_handler = sqs_handler(record_handler)
