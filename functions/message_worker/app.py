"""SQS consumer: message, postback and unsend events. Archives inbound 1:1 messages and the
replies sent (R-HIST-1); answers keyword and catch-all auto-responses with the free reply API
(R-MSG-2). Idempotent on webhookEventId through the Powertools idempotency table, so a
redelivered event never replies twice."""

import json
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from tsunagu import wiring
from tsunagu.config import get_settings
from tsunagu.observability import logger
from tsunagu.workers import sqs_handler

messages = wiring.message_service()
get_settings().required("idempotency_table_name")  # fail fast: the persistence layer is built on first use
idempotency = IdempotencyConfig(event_key_jmespath="[accountId, event.webhookEventId]", expires_after_seconds=86_400)


def handle_once(msg: dict[str, Any]) -> str:
    return messages.handle(msg["accountId"], msg["event"], int(msg.get("receivedAt", 0)), msg.get("origin", ""))


@cache
def idempotent_handle() -> Any:
    # Built on first use: the persistence layer creates its DynamoDB client eagerly.
    persistence = DynamoDBPersistenceLayer(
        table_name=get_settings().required("idempotency_table_name"), boto3_client=wiring.dynamodb_client()
    )
    return idempotent_function(data_keyword_argument="msg", config=idempotency, persistence_store=persistence)(
        handle_once
    )


def record_handler(record: SQSRecord) -> str:
    outcome = idempotent_handle()(msg=json.loads(record.body))
    logger.info("message event", extra={"outcome": outcome})
    return f"Message_{outcome}"


lambda_handler = sqs_handler(record_handler, on_invoke=idempotency.register_lambda_context)
