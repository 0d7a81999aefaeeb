"""GET/POST /link/{accountId}: the link page opened from LINE, then LINE's account-link dialog
(R-LINK-1 … R-LINK-14). The flow lives in ``tsunagu.linking.web``."""

from typing import Any

from tsunagu import wiring
from tsunagu.http import FORM, Request, error_response, refuse_malformed
from tsunagu.observability import instrumented, logger

page = wiring.link_page_http()


@instrumented()
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    req = Request.of(event)
    logger.append_keys(account_id=req.account_id)
    refused = refuse_malformed(req, (FORM,))  # the page posts its form, nothing else
    if refused is not None:
        return error_response(refused)
    return page.handle(req)
