"""The member's coupon page over HTTP (R-CPN-6): ``GET /coupon/{accountId}?c=<couponId>`` and the
code it polls, ``GET /coupon/{accountId}/code?c=<couponId>``, with the LINE Login flow.

Login: no session store. The page sends the member to LINE Login with a fresh state and nonce
(kept in a short-lived HttpOnly cookie); the callback exchanges the code for the ID token,
checks it (signature, audience = the account's login channel, expiry, nonce) and keeps the
token itself as the HttpOnly session cookie, re-checked on every request until it expires.
Lean (no pydantic): it is opened from LINE on a phone in a queue at the register."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from tsunagu.coupons.domain import IdTokenError
from tsunagu.coupons.pages import coupon_page, qr_svg
from tsunagu.errors import DomainError, NotFound
from tsunagu.http import Request, cookie, error_body, html_response, json_response
from tsunagu.observability import logger, metrics
from tsunagu.pages import message_page

if TYPE_CHECKING:
    from tsunagu.coupons.service import CouponPage

SESSION, LOGIN = "tsunagu_coupon", "tsunagu_coupon_login"
COUPON_RE = re.compile(r"^cpn_[0-9a-f]{16}$")
SESSION_MAX_SECONDS = 3600


def _csp(nonce: str) -> str:
    script = f"'nonce-{nonce}'" if nonce else "'none'"
    return (
        f"default-src 'none'; style-src 'unsafe-inline'; script-src {script}; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def _html(
    status: int, html: str, nonce: str = "", location: str | None = None, cookies: list[str] | None = None
) -> dict[str, Any]:
    return html_response(status, html, _csp(nonce), {"location": location} if location else None, cookies)


def _refusal(status: int, title: str, message: str, code: str) -> dict[str, Any]:
    return _html(status, message_page(title, message, code))


@dataclass
class CouponPageHttp:
    page: CouponPage
    public_base_url: str

    def _cookie(self, account_id: str, name: str, value: str, max_age: int) -> str:
        return cookie(name, value, f"/coupon/{account_id}", max_age, self.public_base_url)

    def handle(self, req: Request, now: datetime | None = None) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        account_id, q = req.account_id, req.query
        base = req.origin(self.public_base_url)
        polling = req.path.endswith("/code")
        coupon_id = q.get("c", "")
        try:
            if not polling and ("code" in q or "error" in q):
                if "error" in q:  # the member cancelled LINE Login
                    return _refusal(401, "ログインできません", "LINEログインが完了しませんでした。", "login_cancelled")
                return self._callback(account_id, base, q, req.cookies, now)
            if not COUPON_RE.fullmatch(coupon_id):
                raise NotFound("クーポンが見つかりません。", code="coupon_not_found")
            try:
                user = self.page.member(account_id, _id_token(req), now)
            except IdTokenError as e:
                if polling:
                    return json_response(401, error_body(e.code, "ログインの有効期限が切れました。"))
                return self._login(account_id, base, coupon_id)
            view = self.page.show(account_id, coupon_id, user, now)
        except DomainError as e:
            logger.info("coupon page refused", extra={"code": e.code})
            if polling:
                return json_response(e.status, error_body(e.code, e.message))
            return _refusal(e.status, "クーポンを表示できません", e.message, e.code)
        if polling:
            if view.get("refusal") is None:
                view["qr_svg"] = qr_svg(view["qr_payload"])
            return json_response(200, view)
        nonce = secrets.token_urlsafe(12)
        code_url = f"/coupon/{account_id}/code?c={quote(coupon_id)}"
        return _html(200, coupon_page(view, code_url, nonce), nonce)

    def _login(self, account_id: str, base: str, coupon_id: str) -> dict[str, Any]:
        state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        url = self.page.authorize_url(account_id, f"{base}/coupon/{account_id}", state, nonce)
        login = self._cookie(account_id, LOGIN, f"{state}.{nonce}.{coupon_id}", 600)
        return _html(303, "", location=url, cookies=[login])

    def _callback(
        self, account_id: str, base: str, q: dict[str, str], cookies: dict[str, str], now: datetime
    ) -> dict[str, Any]:
        state, _, rest = cookies.get(LOGIN, "").partition(".")
        nonce, _, coupon_id = rest.partition(".")
        state_ok = bool(state) and secrets.compare_digest(state.encode(), q.get("state", "").encode())
        if not state_ok or not COUPON_RE.fullmatch(coupon_id):
            metrics.add_metric(name="CouponLoginRefused_state", unit="Count", value=1)
            return _refusal(400, "ログインできません", "もう一度LINEからクーポンを開いてください。", "login_state")
        token, exp = self.page.sign_in(account_id, q["code"], f"{base}/coupon/{account_id}", nonce, now)
        age = max(1, min(SESSION_MAX_SECONDS, exp - int(now.timestamp())))
        out = [self._cookie(account_id, SESSION, token, age), self._cookie(account_id, LOGIN, "", 0)]
        return _html(303, "", location=f"/coupon/{account_id}?c={coupon_id}", cookies=out)


def _id_token(req: Request) -> str:
    """The member's ID token: ``Authorization: Bearer`` from a LIFF app (``liff.getIDToken()``,
    ES256) or the session cookie set after LINE Login (HS256)."""
    scheme, _, value = req.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return req.cookies.get(SESSION, "")
