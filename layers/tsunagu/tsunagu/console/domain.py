"""The operator console's rules: staff scopes, what each scope may see and do, sessions with idle
and absolute timeouts, CSRF tokens bound to the session, login throttling, e-mail and password
checks. Pure: no store, no HTTP.

Scopes are those of the API keys (issue 16 names them): ``admin`` may do everything, ``read``
may see every page and do nothing, the others may see and act on their own capability."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from tsunagu.errors import Conflict, DomainError, Forbidden, ValidationFailed

SCOPES: tuple[str, ...] = ("admin", "members", "messaging", "coupons", "pos", "billing", "read")
SCOPE_LABELS: dict[str, str] = {
    "admin": "管理者",
    "members": "会員・友だち",
    "messaging": "メッセージ配信",
    "coupons": "クーポン",
    "pos": "店舗レジ",
    "billing": "請求",
    "read": "閲覧のみ",
}

IDLE_SECONDS = 30 * 60  # a session unused for 30 minutes ends
ABSOLUTE_SECONDS = 12 * 60 * 60  # and every session ends 12 hours after login
TOUCH_EVERY_SECONDS = 60  # last-seen is written at most once a minute (one write, not one per page)
INVITE_SECONDS = 72 * 60 * 60
LOGIN_WINDOW_SECONDS = 15 * 60
LOGIN_MAX_FAILURES = 5  # per e-mail address and window; the 6th try waits for the next window
MIN_PASSWORD = 12
MAX_PASSWORD = 200
EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9.\-]{1,190}\.[A-Za-z]{2,24}$")


class LoginRefused(DomainError):
    """A login that did not succeed; the page says so without telling which part was wrong."""

    status = 401
    code = "login_failed"


class LoginThrottled(DomainError):
    status = 429
    code = "login_throttled"


class SessionEnded(DomainError):
    status = 401
    code = "session_expired"


def may_view(scopes: frozenset[str], page_scopes: tuple[str, ...]) -> bool:
    """Admin and read see every page; the others the pages of their scopes (no scopes: everyone)."""
    return not page_scopes or bool(scopes & {"admin", "read", *page_scopes})


def may_act(scopes: frozenset[str], action_scope: str) -> bool:
    return "admin" in scopes or action_scope in scopes


def require_action(scopes: frozenset[str], action_scope: str) -> None:
    if not may_act(scopes, action_scope):
        raise Forbidden(
            f"この操作には「{SCOPE_LABELS.get(action_scope, action_scope)}」の権限が必要です", code="scope_required"
        )


def parse_scopes(values: list[str] | tuple[str, ...]) -> frozenset[str]:
    scopes = frozenset(v.strip() for v in values if v and v.strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown:
        raise ValidationFailed(f"unknown scope(s): {', '.join(unknown)}", code="invalid_scope")
    if not scopes:
        raise ValidationFailed("give the staff member at least one scope", code="invalid_scope")
    return scopes


def normalize_email(value: str) -> str:
    email = (value or "").strip().lower()
    if not EMAIL.match(email):
        raise ValidationFailed("メールアドレスの形式が正しくありません", code="invalid_email")
    return email


def email_id(email: str) -> str:
    """The stored id of a staff member: a hash of the address (keys never carry the address)."""
    return hashlib.sha256(f"staff:{email}".encode()).hexdigest()[:32]


def check_new_password(password: str, email: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValidationFailed(
            f"パスワードは{MIN_PASSWORD}文字以上{MAX_PASSWORD}文字以内で設定してください", code="weak_password"
        )
    local = email.split("@", maxsplit=1)[0]
    if len(set(password)) < 4 or (len(local) >= 3 and local in password.lower()):
        raise ValidationFailed("推測されやすいパスワードです。別のパスワードを設定してください", code="weak_password")


def token_hash(token: str) -> str:
    """Session and invitation tokens are kept at rest only as this hash."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_token(session_token: str) -> str:
    """The session's CSRF token: derived from the session token (no extra storage), useless
    without the HttpOnly session cookie, and different from it."""
    return hmac.new(session_token.encode(), b"tsunagu-console-csrf", hashlib.sha256).hexdigest()


def csrf_matches(session_token: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(csrf_token(session_token), str(sent))


def login_window(now_s: int) -> int:
    return now_s // LOGIN_WINDOW_SECONDS


@dataclass(frozen=True)
class Staff:
    account_id: str
    staff_id: str
    email: str
    name: str
    scopes: frozenset[str]
    status: str  # invited | active | disabled
    password_hash: str | None = None
    created_at_ms: int = 0
    invited_by: str = ""

    def view(self) -> dict[str, Any]:
        return {
            "staff_id": self.staff_id,
            "email": self.email,
            "name": self.name,
            "scopes": sorted(self.scopes),
            "status": self.status,
            "created_at_ms": self.created_at_ms,
            "invited_by": self.invited_by,
        }


@dataclass(frozen=True)
class Session:
    account_id: str
    staff_id: str
    name: str
    email: str
    scopes: frozenset[str]
    created_s: int
    seen_s: int
    extra: dict[str, Any] = field(default_factory=dict)

    def ended(self, now_s: int) -> str | None:
        """Why the session is over at ``now_s`` (idle or absolute), or None."""
        if now_s - self.created_s >= ABSOLUTE_SECONDS:
            return "absolute"
        if now_s - self.seen_s >= IDLE_SECONDS:
            return "idle"
        return None

    def expires_s(self) -> int:
        return self.created_s + ABSOLUTE_SECONDS


def require_active(staff: Staff | None) -> Staff:
    if staff is None or staff.status != "active":
        raise LoginRefused("メールアドレスまたはパスワードが正しくありません")
    return staff


def require_not_last_admin(staff: list[Staff], removed_id: str) -> None:
    admins = [s for s in staff if s.status != "disabled" and "admin" in s.scopes and s.staff_id != removed_id]
    if not admins:
        raise Conflict("管理者が一人もいなくなるため、この操作はできません", code="last_admin")
