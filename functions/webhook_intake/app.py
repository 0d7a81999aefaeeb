"""POST /line/{accountId}/webhook: verify LINE's signature, fan events out to SQS, answer 200.

Deliberately no event-handler framework and no LINE SDK: this is the hottest, most
latency-sensitive path (LINE times out after 2 s), so it imports as little as possible."""

from typing import Any

from tsunagu import wiring
from tsunagu.config import get_settings
from tsunagu.errors import DomainError
from tsunagu.http import Request, error_response, json_response
from tsunagu.observability import instrumented, logger, metrics

# Built at init (clients included), so the first webhook pays no import or client set-up.
intake = wiring.webhook_intake()
public_base_url = get_settings().public_base_url


@instrumented()
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    req = Request.of(event)
    logger.append_keys(account_id=req.account_id)
    try:
        result = intake.accept(
            req.account_id, req.body, req.headers.get("x-line-signature"), req.origin(public_base_url)
        )
    except DomainError as e:
        logger.warning("webhook refused", extra={"code": e.code, "status": e.status})
        return error_response(e)
    metrics.add_metric(name="WebhookEvents", unit="Count", value=result.events)
    return json_response(200, {"accepted": result.events})
