"""POST /accounts/{accountId}/redemptions: the POS redeems a coupon (R-CPN-3/4/5).

Lean on purpose (no event-handler framework, no pydantic): the cashier waits on this call. The
service validates the body by hand; refusals are 422 with a stable code and a Japanese message
(English in details), and a retry with the same idempotency key gets the original answer."""

import base64
import json
from typing import Any

from tsunagu import wiring
from tsunagu.errors import DomainError
from tsunagu.observability import logger, metrics, tracer
from tsunagu.text import has_lone_surrogate

tracing = tracer()
redemptions = wiring.redemptions()


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json; charset=utf-8", "cache-control": "no-store"},
        "body": json.dumps(body, ensure_ascii=False),
    }


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@metrics.log_metrics
@tracing.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    account_id = (event.get("pathParameters") or {}).get("accountId", "")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    logger.append_keys(account_id=account_id)
    try:
        redemptions.authenticate(headers.get("authorization"), account_id)
        raw = event.get("body") or ""
        try:
            doc = json.loads(base64.b64decode(raw) if event.get("isBase64Encoded") else raw)
        except (ValueError, RecursionError):
            return _response(400, {"error": {"code": "invalid_json", "message": "request body is not valid JSON"}})
        if has_lone_surrogate(doc):
            return _response(
                422, {"error": {"code": "invalid_text", "message": "the body holds a lone UTF-16 surrogate"}}
            )
        result = redemptions.redeem(account_id, doc)
    except DomainError as e:
        metrics.add_metric(name=f"RedemptionRefused_{e.code}", unit="Count", value=1)
        logger.info("redemption refused", extra={"code": e.code, "status": e.status})
        err: dict[str, Any] = {"code": e.code, "message": e.message}
        if e.details is not None:
            err["details"] = e.details
        return _response(e.status, {"error": err})
    metrics.add_metric(name="RedemptionReplayed" if result["replayed"] else "Redeemed", unit="Count", value=1)
    return _response(201, result)
