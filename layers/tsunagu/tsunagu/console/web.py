"""The console over HTTP: ``/console/{accountId}/…`` for the business's staff, in Japanese.

Every request goes through the same gate, in this order: the session cookie (HttpOnly, SameSite=
Strict, Secure off plain http; idle 30 minutes, absolute 12 hours), then for a POST the
same-origin check and the CSRF token (a form field or the ``X-CSRF-Token`` header, derived from
the session), then the page's or the action's scope (403 page). Pages are server-rendered with
Jinja2 (autoescaped); the browser keeps nothing but the session cookie. Static assets are served
by this function under a content-hashed path (``/console/assets/{hash}/{name}``), immutable."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlsplit

from tsunagu.console import domain as d
from tsunagu.console.errors_ja import japanese
from tsunagu.console.registry import Ctx, Download, Html, Json, Redirect, Result, pages
from tsunagu.errors import DomainError
from tsunagu.http import FORM, TEXT_CSV, Request, cookie, html_response, json_response, refuse_malformed, respond
from tsunagu.observability import logger

if TYPE_CHECKING:
    from jinja2 import Environment

    from tsunagu.accounts.service import AccountService
    from tsunagu.console.service import StaffService

HERE = Path(__file__).parent
ASSETS = HERE / "assets"
SESSION_COOKIE = "tsunagu_console"
LOGIN_COOKIE = "tsunagu_console_login"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
JST = timezone(timedelta(hours=9))


def _asset_versions() -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:12]
        for p in sorted(ASSETS.iterdir())
        if p.suffix in ASSET_TYPES
    }


VERSIONS = _asset_versions()


def asset_url(name: str) -> str:
    return f"/console/assets/{VERSIONS[name]}/{name}"


def jst(ms: Any, with_time: bool = True) -> str:
    if ms in (None, ""):
        return "—"
    t = datetime.fromtimestamp(int(ms) / 1000, UTC).astimezone(JST)
    return t.strftime("%Y/%m/%d %H:%M" if with_time else "%Y/%m/%d")


def yen(v: Any) -> str:
    if v in (None, ""):
        return "—"
    return f"{round(float(v)):,}円"


def num(v: Any) -> str:
    return "—" if v in (None, "") else f"{int(v):,}"


@dataclass
class ConsoleHttp:
    staff: StaffService
    accounts: AccountService
    public_base_url: str

    @cached_property
    def env(self) -> Environment:
        from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

        env = Environment(
            loader=FileSystemLoader(str(HERE / "templates")),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            auto_reload=False,
        )
        env.filters.update(jst=jst, yen=yen, num=num, tojson_attr=lambda v: json.dumps(v, ensure_ascii=False))
        env.globals.update(asset=asset_url, scope_labels=d.SCOPE_LABELS, scopes=d.SCOPES)
        return env

    # -- responses -----------------------------------------------------------------------
    def _cookie(self, account_id: str, name: str, value: str, max_age: int) -> str:
        return cookie(name, value, f"/console/{account_id}", max_age, self.public_base_url, same_site="Strict")

    def _page(
        self, http_status: int, template: str, data: dict[str, Any], cookies: list[str] | None = None
    ) -> dict[str, Any]:
        html = self.env.get_template(template).render(**{"error": None, "notice": None, **data})
        # same-origin, not no-referrer: with no-referrer browsers send ``Origin: null`` on form
        # posts, and the same-origin check needs the real one (ids never leave the site).
        headers = {"x-content-type-options": "nosniff", "referrer-policy": "same-origin"}
        return html_response(http_status, html, CSP, headers, cookies)

    def _redirect(self, to: str, cookies: list[str] | None = None) -> dict[str, Any]:
        return respond(303, "", "text/plain; charset=utf-8", {"location": to}, cookies or [])

    def _refusal(self, status: int, title: str, message: str, code: str, **data: Any) -> dict[str, Any]:
        return self._page(status, "refusal.html", {"title": title, "message": message, "code": code, **data})

    # -- entry ---------------------------------------------------------------------------
    def handle(self, req: Request) -> dict[str, Any]:
        parts = [p for p in req.path.split("/") if p][1:]  # after "console"
        if parts[:1] == ["assets"]:
            return self._asset(parts[1:])
        if not parts or not self.accounts.exists(parts[0]):
            return self._refusal(404, "ページが見つかりません", "このアドレスのページはありません。", "not_found")
        account_id, rest = parts[0], parts[1:]
        head = rest[0] if rest else ""
        # The repo's one gate for malformed requests, before any session or page runs (so a
        # refused request writes nothing): forms and the member CSV, nothing else.
        refused = refuse_malformed(req, (FORM, TEXT_CSV))
        if refused is not None:
            if self._wants_json(req):
                return json_response(refused.status, {"error": {"code": refused.code, "message": japanese(refused)}})
            return self._refusal(refused.status, "送信内容を受け付けられません", japanese(refused), refused.code)
        try:
            if head == "login":
                return self._login(req, account_id)
            if head == "invite":
                return self._invite(req, account_id)
            return self._app(req, account_id, rest)
        except DomainError as e:
            return self._refusal(e.status, "操作できません", japanese(e), e.code)

    def _asset(self, parts: list[str]) -> dict[str, Any]:
        if len(parts) != 2 or VERSIONS.get(parts[1]) != parts[0]:
            return respond(404, "not found", "text/plain; charset=utf-8")
        path = ASSETS / parts[1]
        return respond(
            200,
            path.read_text(encoding="utf-8"),
            ASSET_TYPES[path.suffix],
            {"cache-control": "public, max-age=31536000, immutable", "x-content-type-options": "nosniff"},
        )

    # -- the login and invitation pages (no session yet) ---------------------------------
    def _login_form(
        self, account_id: str, status: int = 200, error: tuple[str, str] | None = None, email: str = ""
    ) -> dict[str, Any]:
        token = d.new_token()  # double-submit CSRF token for the login form
        data = {"account_id": account_id, "csrf": token, "error": error, "email": email}
        return self._page(status, "login.html", data, [self._cookie(account_id, LOGIN_COOKIE, token, 900)])

    def _login(self, req: Request, account_id: str) -> dict[str, Any]:
        if req.method != "POST":
            notice = "session_expired" if req.query.get("expired") else None
            if notice:
                msg = "一定時間操作がなかったため、ログアウトしました。もう一度ログインしてください"
                return self._login_form(account_id, 200, (notice, msg))
            return self._login_form(account_id)
        form = self._form(req)
        sent, expected = form.get("csrf"), req.cookies.get(LOGIN_COOKIE)
        if not self._same_origin(req) or not expected or not sent or not hmac.compare_digest(sent, expected):
            return self._login_form(account_id, 403, ("csrf", "画面の有効期限が切れました。もう一度入力してください"))
        try:
            token, _ = self.staff.login(account_id, form.get("email", ""), form.get("password", ""))
        except (d.LoginRefused, d.LoginThrottled) as e:
            return self._login_form(account_id, e.status, (e.code, e.message), form.get("email", "")[:254])
        cookies = [
            self._cookie(account_id, SESSION_COOKIE, token, d.ABSOLUTE_SECONDS),
            self._cookie(account_id, LOGIN_COOKIE, "", 0),
        ]
        return self._redirect(f"/console/{account_id}/dashboard", cookies)

    def _invite(self, req: Request, account_id: str) -> dict[str, Any]:
        if req.method != "POST":
            return self._page(200, "invite.html", {"account_id": account_id, "token": req.query.get("t", "")})
        form = self._form(req)
        token = form.get("t", "")
        if not self._same_origin(req):
            return self._refusal(403, "操作できません", "別のサイトから送信されたため受け付けませんでした。", "csrf")
        if form.get("password", "") != form.get("password2", ""):
            err = ("password_mismatch", "確認用のパスワードが一致しません")
            return self._page(422, "invite.html", {"account_id": account_id, "token": token, "error": err})
        try:
            self.staff.accept_invite(account_id, token, form.get("password", ""))
        except DomainError as e:
            if e.code == "weak_password":
                err = (e.code, e.message)
                return self._page(422, "invite.html", {"account_id": account_id, "token": token, "error": err})
            raise
        return self._redirect(f"/console/{account_id}/login?ok=1")

    # -- the signed-in console -----------------------------------------------------------
    def _app(self, req: Request, account_id: str, rest: list[str]) -> dict[str, Any]:
        token = req.cookies.get(SESSION_COOKIE)
        try:
            session = self.staff.session(account_id, token)
        except d.SessionEnded as e:
            if req.method == "POST" and self._wants_json(req):
                return json_response(401, {"error": {"code": e.code, "message": e.message}})
            expired = "?expired=1" if e.code == "session_expired" else ""
            return self._redirect(
                f"/console/{account_id}/login{expired}", [self._cookie(account_id, SESSION_COOKIE, "", 0)]
            )
        assert token is not None
        csrf = d.csrf_token(token)
        form = self._form(req) if req.method == "POST" else {}
        if req.method == "POST":
            sent = form.get("csrf") or req.headers.get("x-csrf-token")
            if not self._same_origin(req) or not d.csrf_matches(token, sent):
                logger.warning("console csrf refused", extra={"path": req.path})
                return self._refused(req, session, csrf, 403, "csrf", "画面の有効期限が切れたか、不正な送信です。")
        if not rest:
            return self._redirect(f"/console/{account_id}/dashboard")
        if rest == ["logout"] and req.method == "POST":
            self.staff.logout(account_id, token, session)
            return self._redirect(f"/console/{account_id}/login", [self._cookie(account_id, SESSION_COOKIE, "", 0)])
        page = pages().get(rest[0])
        if page is None:
            return self._refused(req, session, csrf, 404, "not_found", "このアドレスのページはありません。")
        if not d.may_view(session.scopes, page.scopes):
            return self._refused(req, session, csrf, 403, "scope_required", "このページを見る権限がありません。")
        ctx = Ctx(account_id, session, csrf, "/".join(rest[1:]), req.query, form, req.body, self.staff)
        if req.method == "POST":
            action = page.actions.get(form.get("do") or req.query.get("do", ""))
            if action is None:
                return self._refused(req, session, csrf, 404, "not_found", "この操作はありません。")
            if not d.may_act(session.scopes, action.scope):
                msg = f"この操作には「{d.SCOPE_LABELS.get(action.scope, action.scope)}」の権限が必要です。"
                return self._refused(req, session, csrf, 403, "scope_required", msg)
            run = action.run
        else:
            run = page.view
        try:
            result = run(ctx)
        except DomainError as e:
            if self._wants_json(req):
                return json_response(e.status, {"error": {"code": e.code, "message": japanese(e)}})
            if req.method == "POST":  # the page again, with what went wrong
                try:
                    again = page.view(ctx)
                except DomainError:
                    again = Html("refusal.html", {"title": "操作できません", "message": "", "code": e.code})
                if isinstance(again, Html):
                    data = {**again.data, "error": (e.code, japanese(e))}
                    return self._render(ctx, page.key, Html(again.template, data, e.status))
            return self._refused(req, session, csrf, e.status, e.code, japanese(e))
        return self._render(ctx, page.key, result)

    def _render(self, ctx: Ctx, key: str, result: Result) -> dict[str, Any]:
        if isinstance(result, Redirect):
            return self._redirect(ctx.url(result.to))
        if isinstance(result, Json):
            return json_response(result.status, result.data)
        if isinstance(result, Download):
            return respond(
                200,
                result.body,
                "text/csv; charset=utf-8",
                {"content-disposition": f'attachment; filename="{quote(result.filename)}"'},
            )
        chrome = self._chrome(ctx.account_id, ctx.session, ctx.csrf, key)
        return self._page(result.status, result.template, {**chrome, **result.data})

    def _chrome(self, account_id: str, session: d.Session, csrf: str, current: str) -> dict[str, Any]:
        menu = [p for p in pages().values() if p.menu and d.may_view(session.scopes, p.scopes)]
        return {
            "account_id": account_id,
            "session": session,
            "csrf": csrf,
            "menu": menu,
            "current": current,
            "may": lambda scope: d.may_act(session.scopes, scope),
        }

    def _refused(
        self, req: Request, session: d.Session, csrf: str, status: int, code: str, message: str
    ) -> dict[str, Any]:
        if self._wants_json(req):
            return json_response(status, {"error": {"code": code, "message": message}})
        title = {403: "権限がありません", 404: "ページが見つかりません"}.get(status, "操作できません")
        chrome = self._chrome(req.account_id or req.path.split("/")[2], session, csrf, "")
        return self._page(status, "refusal.html", {"title": title, "message": message, "code": code, **chrome})

    # -- request helpers -----------------------------------------------------------------
    @staticmethod
    def _form(req: Request) -> dict[str, str]:
        ctype = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return {}
        return dict(parse_qsl(req.body.decode("utf-8", errors="replace"), keep_blank_values=True))

    @staticmethod
    def _wants_json(req: Request) -> bool:
        return "application/json" in (req.headers.get("accept") or "")

    @staticmethod
    def _same_origin(req: Request) -> bool:
        """A POST whose ``Origin`` (or, without one, ``Referer``) names another site is refused
        whatever its token (browsers send Origin on every cross-site POST)."""
        source = req.headers.get("origin") or req.headers.get("referer")
        if not source or source == "null":
            return source is None
        return urlsplit(source).netloc == (req.headers.get("host") or req.domain)
