"""SQS consumer: sends one notification per message - a push to a linked friend or a LINE
notification message to the hashed number - at the channel's rate, exactly once."""

import json

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tsunagu import wiring
from tsunagu.observability import logger
from tsunagu.workers import sqs_handler

sender = wiring.notification_sender()


def record_handler(record: SQSRecord) -> str:
    msg = json.loads(record.body)
    logger.append_keys(account_id=msg["a"])
    outcome = sender.send(msg)
    logger.info("notification", extra={"outcome": outcome, "tag": msg["t"], "batch_id": msg["b"]})
    return f"Notification_{outcome}"


lambda_handler = sqs_handler(record_handler)
