"""The link page over HTTP: ``GET /link/{accountId}?s=…`` shows the form, ``POST /link/{accountId}``
checks the factors and redirects to LINE's account-link dialog (R-LINK-1 … R-LINK-14). CSRF: a
per-session token in an HttpOnly cookie that the form must echo."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from tsunagu.http import Request, cookie, html_response
from tsunagu.linking.domain import LinkRefused
from tsunagu.linking.pages import link_form
from tsunagu.observability import metrics
from tsunagu.pages import message_page

if TYPE_CHECKING:
    from tsunagu.linking.service import LinkingService

COOKIE = "tsunagu_link_csrf"
STATUS = {"session_expired": 410, "csrf": 403, "locked_out": 429}


@dataclass
class LinkPageHttp:
    linking: LinkingService
    public_base_url: str
    line_access_base_url: str

    def _html(
        self, status: int, html: str, location: str | None = None, cookies: list[str] | None = None
    ) -> dict[str, Any]:
        csp = (
            f"default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {self.line_access_base_url}; "
            "frame-ancestors 'none'"
        )
        return html_response(status, html, csp, {"location": location} if location else None, cookies)

    def _cookie(self, account_id: str, value: str, max_age: int) -> str:
        return cookie(COOKIE, value, f"/link/{account_id}", max_age, self.public_base_url)

    def _refused(self, e: LinkRefused) -> dict[str, Any]:
        return self._html(STATUS.get(e.code, 422), message_page("連携できません", e.message, e.code))

    def handle(self, req: Request) -> dict[str, Any]:
        account_id = req.account_id
        if req.method == "GET":
            try:
                page = self.linking.open(account_id, req.query.get("s", ""))
            except LinkRefused as e:
                return self._refused(e)
            return self._html(200, link_form(page), cookies=[self._cookie(account_id, page.csrf, 600)])
        form = dict(parse_qsl(req.body.decode(errors="replace"), keep_blank_values=True))
        try:
            result = self.linking.submit(account_id, form.get("s", ""), req.cookies.get(COOKIE), form)
        except LinkRefused as e:
            metrics.add_metric(name=f"LinkRefused_{e.code}", unit="Count", value=1)
            try:
                page = self.linking.open(account_id, form.get("s", ""))
            except LinkRefused:
                return self._refused(e)
            return self._html(STATUS.get(e.code, 422), link_form(page, (e.code, e.message), form))
        if result.location is None:  # the next one-time-code step
            return self._html(200, link_form(self.linking.open(account_id, form.get("s", "")), notice=result.notice))
        metrics.add_metric(name="LinkRedirected", unit="Count", value=1)
        return self._html(302, "", location=result.location, cookies=[self._cookie(account_id, "", 0)])
