"""SQS consumer for event kinds no worker acts on yet (accountLink, delivery) and for unknown
or future kinds: each is kept once (redacted) and counted, never lost, never a crash."""

import json

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tsunagu import wiring
from tsunagu.observability import logger
from tsunagu.workers import sqs_handler

events = wiring.event_store_service()


def record_handler(record: SQSRecord) -> str:
    msg = json.loads(record.body)
    outcome = events.keep(msg["accountId"], msg["event"])
    logger.info("event stored", extra={"outcome": outcome, "type": msg["event"].get("type")})
    return f"StoredEvent_{outcome}"


lambda_handler = sqs_handler(record_handler)
