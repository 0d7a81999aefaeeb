"""GET /coupon/{accountId}?c=<couponId> and …/code: the member's coupon page with LINE Login
(R-CPN-6). The flow lives in ``tsunagu.coupons.web``; lean on purpose (no pydantic)."""

from typing import Any

from tsunagu import wiring
from tsunagu.http import Request, error_response, refuse_malformed
from tsunagu.observability import instrumented, logger

page = wiring.coupon_page_http()


@instrumented()
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    req = Request.of(event)
    logger.append_keys(account_id=req.account_id)
    refused = refuse_malformed(req)  # the page's requests are GETs; a body, if any, must be JSON
    if refused is not None:
        return error_response(refused)
    return page.handle(req)
