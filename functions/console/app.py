"""GET/POST /console/{accountId}/…: the operator console for the business's staff (Japanese,
server-rendered), and its versioned assets. The gate and the pages live in ``tsunagu.console``."""

from typing import Any

from tsunagu import wiring
from tsunagu.http import Request
from tsunagu.observability import instrumented, logger

console = wiring.console_http()
wiring.ready(wiring.staff_service, wiring.account_service)


@instrumented()
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    req = Request.of(event)
    logger.append_keys(account_id=req.account_id)
    return console.handle(req)
