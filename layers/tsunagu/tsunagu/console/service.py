"""Staff members and their console sessions: invitation by an admin (or by the account's API
key, for the first admin), setting a password from the invitation, login with throttling,
sessions with idle and absolute timeouts, and the audit trail of staff actions."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tsunagu.console import domain as d
from tsunagu.errors import Conflict, DomainError, NotFound
from tsunagu.linking.domain import hash_password, password_matches

if TYPE_CHECKING:
    from tsunagu.console.ports import StaffStore


def _now_s() -> int:
    return int(time.time())


@dataclass
class StaffService:
    store: StaffStore

    # -- staff ---------------------------------------------------------------------------
    def invite(self, account_id: str, email: str, name: str, scopes: list[str], invited_by: str) -> tuple[d.Staff, str]:
        """A new staff member (or a fresh invitation for one who has not set a password yet):
        the invitation token, valid 72 hours, is returned once and kept only as a hash."""
        address = d.normalize_email(email)
        staff_id = d.email_id(address)
        existing = self.store.get_staff(account_id, staff_id)
        if existing is not None and existing.status == "active":
            raise Conflict("このメールアドレスのスタッフはすでに登録されています", code="staff_exists")
        staff = d.Staff(
            account_id=account_id,
            staff_id=staff_id,
            email=address,
            name=(name or "").strip()[:60] or address.split("@")[0],
            scopes=d.parse_scopes(scopes),
            status="invited",
            created_at_ms=int(time.time() * 1000),
            invited_by=invited_by,
        )
        self.store.put_staff(staff, new=False)
        token = d.new_token()
        self.store.put_invite(account_id, d.token_hash(token), staff_id, _now_s() + d.INVITE_SECONDS)
        self.record(account_id, invited_by, "staff_invited", staff_id, {"scopes": sorted(staff.scopes)})
        return staff, token

    def accept_invite(self, account_id: str, token: str, password: str) -> d.Staff:
        staff_id = self.store.take_invite(account_id, d.token_hash(token or ""), _now_s()) if token else None
        staff = self.store.get_staff(account_id, staff_id) if staff_id else None
        if staff is None or staff.status == "disabled":
            raise NotFound("招待リンクが無効か、有効期限が切れています", code="invite_invalid")
        try:
            d.check_new_password(password, staff.email)
        except DomainError:
            # The invitation is single use; a refused password must not burn it.
            self.store.put_invite(account_id, d.token_hash(token), staff.staff_id, _now_s() + d.INVITE_SECONDS)
            raise
        active = replace(staff, status="active", password_hash=hash_password(password))
        self.store.put_staff(active, new=False)
        self.record(account_id, f"staff:{staff.email}", "staff_activated", staff.staff_id, {})
        return active

    def members(self, account_id: str) -> list[dict[str, Any]]:
        return [s.view() for s in self.store.list_staff(account_id)]

    def disable(self, account_id: str, staff_id: str, by: str) -> dict[str, Any]:
        staff = self.store.get_staff(account_id, staff_id)
        if staff is None:
            raise NotFound("スタッフが見つかりません", code="staff_not_found")
        d.require_not_last_admin(self.store.list_staff(account_id), staff_id)
        self.store.put_staff(replace(staff, status="disabled"), new=False)
        self.record(account_id, by, "staff_disabled", staff_id, {})
        return replace(staff, status="disabled").view()

    # -- login and sessions --------------------------------------------------------------
    def login(self, account_id: str, email: str, password: str, now_s: int | None = None) -> tuple[str, d.Session]:
        now = now_s if now_s is not None else _now_s()
        try:
            address = d.normalize_email(email)
        except DomainError:
            raise d.LoginRefused("メールアドレスまたはパスワードが正しくありません") from None
        staff_id = d.email_id(address)
        window = d.login_window(now)
        if self.store.login_failures(account_id, staff_id, window) >= d.LOGIN_MAX_FAILURES:
            raise d.LoginThrottled(
                "ログインの失敗が続いたため、しばらくログインできません。15分ほど待ってからお試しください"
            )
        staff = self.store.get_staff(account_id, staff_id)
        ok = password_matches(password or "", staff.password_hash if staff else None)
        if not ok or staff is None or staff.status != "active":
            expires = (window + 1) * d.LOGIN_WINDOW_SECONDS + 60
            self.store.add_login_failure(account_id, staff_id, window, expires)
            raise d.LoginRefused("メールアドレスまたはパスワードが正しくありません")
        token = d.new_token()
        session = d.Session(account_id, staff.staff_id, staff.name, staff.email, staff.scopes, now, now)
        self.store.put_session(d.token_hash(token), session)
        self.record(account_id, f"staff:{staff.email}", "login", staff.staff_id, {})
        return token, session

    def session(self, account_id: str, token: str | None, now_s: int | None = None) -> d.Session:
        """The live session of ``token``, with the staff member's current name and scopes (a
        disabled member's sessions end at once); refreshes last-seen at most once a minute."""
        now = now_s if now_s is not None else _now_s()
        if not token:
            raise d.SessionEnded("ログインしてください", code="login_required")
        h = d.token_hash(token)
        s = self.store.get_session(account_id, h)
        if s is None:
            raise d.SessionEnded("ログインしてください", code="login_required")
        why = s.ended(now)
        staff = self.store.get_staff(account_id, s.staff_id)
        if why or staff is None or staff.status != "active":
            self.store.delete_session(account_id, h)
            raise d.SessionEnded("一定時間操作がなかったため、ログアウトしました。もう一度ログインしてください")
        if now - s.seen_s >= d.TOUCH_EVERY_SECONDS:
            self.store.touch_session(account_id, h, now)
        return replace(s, name=staff.name, scopes=staff.scopes, seen_s=now)

    def logout(self, account_id: str, token: str, session: d.Session) -> None:
        self.store.delete_session(account_id, d.token_hash(token))
        self.record(account_id, f"staff:{session.email}", "logout", session.staff_id, {})

    # -- audit ---------------------------------------------------------------------------
    def record(self, account_id: str, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
        """One line of the staff audit trail: who did what to which target."""
        self.store.audit(account_id, {"actor": actor, "action": action, "target": target, "detail": detail})

    def audit_trail(self, account_id: str, limit: int = 100) -> list[dict[str, Any]]:
        return self.store.audit_trail(account_id, limit)
