"""GET /coupon/{accountId}?c=<couponId>: the member's coupon page (R-CPN-6: LINE Login), and
GET /coupon/{accountId}/code?c=<couponId>: the current code as JSON (the page polls it).

Login: no session store. The page sends the member to LINE Login with a fresh state and nonce
(kept in a short-lived HttpOnly cookie); the callback exchanges the code for the ID token,
checks it (signature, audience = the account's login channel, expiry, nonce) and keeps the
token itself as the HttpOnly session cookie, re-checked on every request until it expires.
Lean (no pydantic): it is opened from LINE on a phone in a queue at the register."""

import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from tsunagu import wiring
from tsunagu.config import get_settings
from tsunagu.coupons.domain import IdTokenError
from tsunagu.coupons.pages import coupon_page, qr_svg
from tsunagu.errors import DomainError, NotFound
from tsunagu.linking.pages import message_page
from tsunagu.observability import logger, metrics, tracer

tracing = tracer()
page = wiring.coupon_page()
SESSION, LOGIN = "tsunagu_coupon", "tsunagu_coupon_login"
COUPON_RE = re.compile(r"^cpn_[0-9a-f]{16}$")
SESSION_MAX_SECONDS = 3600


def _respond(status: int, body: str, ctype: str, headers: dict[str, str], cookies: list[str]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": ctype, "cache-control": "no-store", "referrer-policy": "no-referrer", **headers},
        "body": body,
        "cookies": cookies,
    }


def _html(
    status: int, html: str, nonce: str = "", extra: dict[str, str] | None = None, cookies: list[str] | None = None
):  # type: ignore[no-untyped-def]
    script = f"'nonce-{nonce}'" if nonce else "'none'"
    csp = (
        f"default-src 'none'; style-src 'unsafe-inline'; script-src {script}; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    headers = {"content-security-policy": csp, "x-frame-options": "DENY", **(extra or {})}
    return _respond(status, html, "text/html; charset=utf-8", headers, cookies or [])


def _json(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return _respond(status, json.dumps(body, ensure_ascii=False), "application/json; charset=utf-8", {}, [])


def _cookie(account_id: str, name: str, value: str, max_age: int) -> str:
    secure = "" if get_settings().public_base_url.startswith("http://") else "; Secure"
    return f"{name}={value}; Path=/coupon/{account_id}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"


def _error_page(e: DomainError) -> dict[str, Any]:
    return _html(e.status, message_page("クーポンを表示できません", e.message, e.code))


def _login(account_id: str, base: str, coupon_id: str) -> dict[str, Any]:
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    url = page.authorize_url(account_id, f"{base}/coupon/{account_id}", state, nonce)
    cookie = _cookie(account_id, LOGIN, f"{state}.{nonce}.{coupon_id}", 600)
    return _html(303, "", extra={"location": url}, cookies=[cookie])


def _callback(account_id: str, base: str, q: dict[str, str], cookies: dict[str, str]) -> dict[str, Any]:
    state, _, rest = cookies.get(LOGIN, "").partition(".")
    nonce, _, coupon_id = rest.partition(".")
    state_ok = bool(state) and secrets.compare_digest(state.encode(), q.get("state", "").encode())
    if not state_ok or not COUPON_RE.fullmatch(coupon_id):
        metrics.add_metric(name="CouponLoginRefused_state", unit="Count", value=1)
        return _html(
            400, message_page("ログインできません", "もう一度LINEからクーポンを開いてください。", "login_state")
        )
    now = datetime.now(UTC)
    token, exp = page.sign_in(account_id, q["code"], f"{base}/coupon/{account_id}", nonce, now)
    age = max(1, min(SESSION_MAX_SECONDS, exp - int(now.timestamp())))
    cookies_out = [_cookie(account_id, SESSION, token, age), _cookie(account_id, LOGIN, "", 0)]
    return _html(303, "", extra={"location": f"/coupon/{account_id}?c={coupon_id}"}, cookies=cookies_out)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@metrics.log_metrics
@tracing.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    account_id = (event.get("pathParameters") or {}).get("accountId", "")
    q = event.get("queryStringParameters") or {}
    cookies = dict(c.split("=", 1) for c in event.get("cookies", []) if "=" in c)
    logger.append_keys(account_id=account_id)
    base = get_settings().public_base_url or f"https://{event['requestContext'].get('domainName', '')}"
    polling = event.get("rawPath", "").endswith("/code")
    coupon_id = q.get("c", "")
    now = datetime.now(UTC)
    try:
        if not polling and ("code" in q or "error" in q):
            if "error" in q:  # the member cancelled LINE Login
                return _html(
                    401, message_page("ログインできません", "LINEログインが完了しませんでした。", "login_cancelled")
                )
            return _callback(account_id, base, q, cookies)
        if not COUPON_RE.fullmatch(coupon_id):
            raise NotFound("クーポンが見つかりません。", code="coupon_not_found")
        try:
            user = page.member(account_id, cookies.get(SESSION, ""), now)
        except IdTokenError as e:
            if polling:
                return _json(401, {"error": {"code": e.code, "message": "ログインの有効期限が切れました。"}})
            return _login(account_id, base, coupon_id)
        view = page.show(account_id, coupon_id, user, now)
    except DomainError as e:
        logger.info("coupon page refused", extra={"code": e.code})
        if polling:
            return _json(e.status, {"error": {"code": e.code, "message": e.message}})
        return _error_page(e)
    if polling:
        if view.get("refusal") is None:
            view["qr_svg"] = qr_svg(view["qr_payload"])
        return _json(200, view)
    nonce = secrets.token_urlsafe(12)
    code_url = f"/coupon/{account_id}/code?c={quote(coupon_id)}"
    return _html(200, coupon_page(view, code_url, nonce), nonce)
