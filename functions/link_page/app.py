"""GET /link/{accountId}?s=... shows the link page; POST /link/{accountId} checks the factors and
redirects to LINE's account-link dialog (R-LINK-1 ... R-LINK-14). CSRF: a per-session token in
an HttpOnly cookie that the form must echo."""

import base64
from typing import Any
from urllib.parse import parse_qsl

from tsunagu import wiring
from tsunagu.config import get_settings
from tsunagu.linking.domain import LinkRefused
from tsunagu.linking.pages import link_form, message_page
from tsunagu.observability import logger, metrics, tracer

tracing = tracer()
linking = wiring.linking_service()
COOKIE = "tsunagu_link_csrf"
STATUS = {"session_expired": 410, "csrf": 403, "locked_out": 429}


def _html(
    status: int, html: str, extra: dict[str, str] | None = None, cookies: list[str] | None = None
) -> dict[str, Any]:
    access = get_settings().line_access_base_url
    headers = {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
        "referrer-policy": "no-referrer",  # the session id is in the URL
        "x-frame-options": "DENY",
        "content-security-policy": f"default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {access}; "
        "frame-ancestors 'none'",
        **(extra or {}),
    }
    return {"statusCode": status, "headers": headers, "body": html, "cookies": cookies or []}


def _cookie(account_id: str, value: str, max_age: int) -> str:
    secure = "" if get_settings().public_base_url.startswith("http://") else "; Secure"
    return f"{COOKIE}={value}; Path=/link/{account_id}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@metrics.log_metrics
@tracing.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    account_id = (event.get("pathParameters") or {}).get("accountId", "")
    logger.append_keys(account_id=account_id)
    if event["requestContext"]["http"]["method"] == "GET":
        try:
            page = linking.open(account_id, (event.get("queryStringParameters") or {}).get("s", ""))
        except LinkRefused as e:
            return _html(STATUS.get(e.code, 422), message_page("連携できません", e.message, e.code))
        return _html(200, link_form(page), cookies=[_cookie(account_id, page.csrf, 600)])
    raw = event.get("body") or ""
    body = base64.b64decode(raw).decode(errors="replace") if event.get("isBase64Encoded") else raw
    form = dict(parse_qsl(body, keep_blank_values=True))
    cookies = dict(c.split("=", 1) for c in event.get("cookies", []) if "=" in c)
    try:
        result = linking.submit(account_id, form.get("s", ""), cookies.get(COOKIE), form)
    except LinkRefused as e:
        metrics.add_metric(name=f"LinkRefused_{e.code}", unit="Count", value=1)
        try:
            page = linking.open(account_id, form.get("s", ""))
        except LinkRefused:
            return _html(STATUS.get(e.code, 422), message_page("連携できません", e.message, e.code))
        return _html(STATUS.get(e.code, 422), link_form(page, (e.code, e.message), form))
    if result.location is None:  # the next one-time-code step
        return _html(200, link_form(linking.open(account_id, form.get("s", "")), notice=result.notice))
    metrics.add_metric(name="LinkRedirected", unit="Count", value=1)
    return _html(302, "", {"location": result.location}, [_cookie(account_id, "", 0)])
