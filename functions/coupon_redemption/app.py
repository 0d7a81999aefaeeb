"""POST /accounts/{accountId}/redemptions: the POS redeems a coupon (R-CPN-3/4/5).

Lean on purpose (no event-handler framework, no pydantic): the cashier waits on this call. The
service validates the body by hand; refusals are 422 with a stable code and a Japanese message
(English in details), and a retry with the same idempotency key gets the original answer."""

from typing import Any

from tsunagu import wiring
from tsunagu.errors import DomainError
from tsunagu.http import Request, error_response, json_response, refuse_malformed
from tsunagu.observability import instrumented, logger, metrics

redemptions = wiring.redemptions()


@instrumented()
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    req = Request.of(event)
    logger.append_keys(account_id=req.account_id)
    refused = refuse_malformed(req)
    if refused is not None:
        return error_response(refused)
    try:
        redemptions.authenticate(req.headers.get("authorization"), req.account_id)
        result = redemptions.redeem(req.account_id, req.json())
    except DomainError as e:
        metrics.add_metric(name=f"RedemptionRefused_{e.code}", unit="Count", value=1)
        logger.info("redemption refused", extra={"code": e.code, "status": e.status})
        return error_response(e)
    metrics.add_metric(name="RedemptionReplayed" if result["replayed"] else "Redeemed", unit="Count", value=1)
    return json_response(201, result)
