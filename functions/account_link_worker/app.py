"""SQS consumer: LINE's accountLink events complete a link (result ok + a known, unused nonce
bound to the same LINE user) and send the confirmation (R-LINK-14); anything else links nothing.
A redelivered event finds its nonce consumed and changes nothing."""

import json

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tsunagu import wiring
from tsunagu.observability import logger, mask_user_id
from tsunagu.workers import sqs_handler

linking = wiring.linking_service()


def record_handler(record: SQSRecord) -> str:
    msg = json.loads(record.body)
    event = msg["event"]
    outcome = linking.complete(msg["accountId"], event)
    user = mask_user_id((event.get("source") or {}).get("userId"))
    logger.info("account link event", extra={"outcome": outcome, "user": user})
    return f"AccountLink_{outcome}"


lambda_handler = sqs_handler(record_handler)
