"""SQS consumer of the campaign queue: a ``launch`` message takes the snapshot, makes the one
reservation and queues the chunks; a ``chunk`` message sends one multicast of <= 500 users, once."""

import json

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tsunagu import wiring
from tsunagu.observability import logger
from tsunagu.workers import sqs_handler

campaigns = wiring.campaigns()


def record_handler(record: SQSRecord) -> str:
    msg = json.loads(record.body)
    logger.append_keys(account_id=msg["a"], campaign_id=msg["c"])
    if msg["k"] == "launch":
        outcome = campaigns.launch(msg["a"], msg["c"])
    else:
        outcome = campaigns.send_chunk(msg["a"], msg["c"], int(msg["i"]))
    logger.info("campaign message", extra={"kind": msg["k"], "outcome": outcome, "chunk": msg.get("i")})
    return f"Campaign_{msg['k']}_{outcome}"


lambda_handler = sqs_handler(record_handler)
