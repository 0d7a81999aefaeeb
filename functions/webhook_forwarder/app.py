"""SQS consumer: relays a verified webhook (raw body + LINE's signature) to one downstream URL.
A failed relay fails its record; SQS retries it and finally moves it to the forward DLQ."""

import json

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tsunagu import wiring
from tsunagu.observability import logger
from tsunagu.workers import sqs_handler

forwarding = wiring.forwarding_service()


def record_handler(record: SQSRecord) -> str:
    msg = json.loads(record.body)
    logger.append_keys(account_id=msg.get("accountId"))
    outcome = forwarding.forward(msg)
    logger.info("webhook forwarded", extra={"outcome": outcome, "attempt": record.attributes.approximate_receive_count})
    return f"Forward_{outcome}"


lambda_handler = sqs_handler(record_handler)
