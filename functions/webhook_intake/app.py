"""POST /line/{accountId}/webhook: verify LINE's signature, fan events out to SQS, answer 200.

Deliberately no event-handler framework and no LINE SDK: this is the hottest, most
latency-sensitive path (LINE times out after 2 s), so it imports as little as possible."""

import base64
import json
from typing import Any

from tsunagu import wiring
from tsunagu.config import get_settings
from tsunagu.errors import DomainError
from tsunagu.observability import logger, metrics, tracer

tracing = tracer()
# Built at init (clients included), so the first webhook pays no import or client set-up.
intake = wiring.webhook_intake()


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@metrics.log_metrics
@tracing.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    account_id = (event.get("pathParameters") or {}).get("accountId", "")
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    logger.append_keys(account_id=account_id)
    try:
        origin = get_settings().public_base_url or f"https://{event['requestContext'].get('domainName', '')}"
        result = intake.accept(account_id, body, headers.get("x-line-signature"), origin)
    except DomainError as e:
        logger.warning("webhook refused", extra={"code": e.code, "status": e.status})
        return _response(e.status, {"error": {"code": e.code, "message": e.message}})
    metrics.add_metric(name="WebhookEvents", unit="Count", value=result.events)
    return _response(200, {"accepted": result.events})
