"""Member linking through LINE's account-link flow (line-platform.md 3; R-LINK-1 ... R-LINK-14).

start (OA menu / keyword) -> link token + a 10-minute page session -> the member proves who
they are on the page -> a single-use nonce bound to the member and the LINE user -> LINE's
dialog -> the ``accountLink`` event consumes the nonce and links, in one transaction that holds
R-LINK-3 (one member, one LINE account), R-LINK-10 (user link after contractor link) and
R-LINK-11 (one usage code per LINE account) under any concurrency."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from tsunagu.errors import BadRequest
from tsunagu.linking.domain import (
    LINK_SESSION_SECONDS,
    OTP_MAX_TRIES,
    OTP_SECONDS,
    LinkRefused,
    factor_hash,
    factor_matches,
    new_nonce,
    new_otp,
    new_token,
    normalize_email,
    normalize_login_id,
    normalize_otp,
    normalize_phone_jp,
    parse_birth_date,
    parse_member_number,
    parse_usage_code,
    password_matches,
    refuse,
)
from tsunagu.observability import logger, metrics

if TYPE_CHECKING:
    from tsunagu.accounts.ports import AccountStore, ChannelSecrets
    from tsunagu.linking.ports import FactTagger, KeyRing, LinkStore, MemberRegister
    from tsunagu.messaging.ports import LineMessaging

# Which link kind each accepted factor combination proves.
KIND_OF = {
    ("member_number_phone_birthdate",): "member",
    ("login_id_password",): "contractor",
    ("usage_code",): "user",
    ("email_otp", "phone_otp"): "otp",
}
KIND_LABELS = {"member": "組合員番号で連携", "contractor": "契約者連携(My-Page ID)", "user": "利用者連携(利用コード)"}
CONFIRMATION = (
    "連携が完了しました。会員向けのお知らせやクーポンが届くようになります。"
    "連携はメニューの「連携解除」からいつでも解除できます。"
)


@dataclass
class LinkLimits:
    """Attempt limits of the link page (settings; docs/architecture.md "Linking abuse limits").
    Sliding windows: at no instant more than the limit in the last ``window_seconds``.

    - ``per_user``: failed attempts of one LINE user, whatever member number it types; past it
      that LINE user (only) is refused ``locked_out``.
    - ``per_member``: failed attempts of one LINE user against one member number. Per pair, so
      another LINE user's failures never stop the real member (R-LINK-1, R-LINK-3).
    - ``guess_slow_after`` / ``guess_alert_after`` in ``guess_window_seconds``: failures against
      one member from all LINE users. Past the first, each LINE user gets ``slow_per_member``
      attempt(s) per window against it instead of ``per_member``; past the second, from at least
      ``guess_alert_users`` LINE users, a staff alert enters the link audit (once an hour)."""

    per_member: int = 5
    per_user: int = 10
    window_seconds: int = 900
    slow_per_member: int = 1
    guess_slow_after: int = 10
    guess_alert_after: int = 20
    guess_alert_users: int = 3
    guess_window_seconds: int = 3600


@dataclass
class LinkPage:
    account_id: str
    session_id: str
    csrf: str
    kinds: list[str]
    expires_at: int
    otp_stage: str = ""


@dataclass
class SubmitResult:
    """Either the redirect to LINE's dialog, or the page again with a notice (one-time codes)."""

    location: str | None = None
    notice: str | None = None


def target_of(kind: str, member_number: str, line_id: str | None = None) -> str:
    if kind in ("member", "otp"):
        return f"MEMBER#{member_number}"
    if kind == "contractor":
        return f"CONTRACTOR#{member_number}"
    return f"LINE#{member_number}#{line_id}"


def offered_kinds(policy: tuple[tuple[str, ...], ...]) -> list[str]:
    return [KIND_OF[combo] for combo in policy if combo in KIND_OF]


@dataclass
class LinkingService:
    accounts: AccountStore
    members: MemberRegister
    links: LinkStore
    factor_keys: KeyRing
    secrets: ChannelSecrets
    line: LineMessaging
    access_base_url: str = "https://access.line.me"
    limits: LinkLimits = field(default_factory=LinkLimits)
    otps: Any = None  # DynamoOtpStore
    otp_sender: Any = None  # HttpOtpSender
    tagger: FactTagger | None = None  # automatic tags on link / unlink (campaigns room)

    def _tag(self, account_id: str, user_id: str, on: str) -> None:
        if self.tagger is not None:
            self.tagger.on_fact(account_id, user_id, on)  # set ADD / DELETE: a repeat changes nothing

    # -- 1. the member asks to link (message worker) -------------------------------------
    def start(self, account_id: str, user_id: str, reply_token: str, base_url: str) -> str:
        profile = self.accounts.profile(account_id)
        token = self.secrets.access_token(account_id)
        if profile is None or token is None or not offered_kinds(profile.link_policy):
            return "linking_not_offered"
        link_token = self.line.issue_link_token(token, user_id)
        session_id, csrf = new_token(), new_token()
        self.links.put_session(
            account_id, session_id, user_id, link_token, csrf, int(time.time()) + LINK_SESSION_SECONDS
        )
        url = f"{base_url.rstrip('/')}/link/{account_id}?s={quote(session_id)}"
        self.line.reply(token, reply_token, [f"下のリンクから連携手続きを行ってください(10分間有効です)。\n{url}"])
        return "link_started"

    # -- 2. the page --------------------------------------------------------------------
    def _session(self, account_id: str, session_id: str) -> dict[str, Any]:
        s = self.links.get_session(account_id, session_id) if session_id else None
        if s is None or int(s["expires_at"]) <= time.time():
            raise refuse("session_expired")
        return {**s, "_sid": session_id}

    def open(self, account_id: str, session_id: str) -> LinkPage:
        s = self._session(account_id, session_id)
        profile = self.accounts.profile(account_id)
        return LinkPage(
            account_id,
            session_id,
            s["csrf"],
            offered_kinds(profile.link_policy if profile else ()),
            int(s["expires_at"]),
            str(s.get("otp_stage") or ""),
        )

    # -- 3. the member proves who they are ------------------------------------------------
    def submit(self, account_id: str, session_id: str, csrf_cookie: str | None, form: dict[str, str]) -> SubmitResult:
        """Check the factors; the result is the URL of LINE's account-link dialog, or (one-time
        codes) the next step of the page."""
        s = self._session(account_id, session_id)
        if not csrf_cookie or csrf_cookie != s["csrf"] or form.get("csrf") != s["csrf"]:
            raise refuse("csrf")
        profile = self.accounts.profile(account_id)
        kind = form.get("kind", "")
        if kind not in offered_kinds(profile.link_policy if profile else ()):
            raise refuse("policy_not_allowed")
        user_id = s["user_id"]
        # Each attempt takes a slot of the LINE user's sliding window atomically before anything
        # is verified, so parallel attempts cannot all pass a read-then-record check; an attempt
        # that does not count (right factors, a format error) gives it back.
        user_subject, token = f"USER#{user_id}", new_token()
        if not self._claim(account_id, user_subject, self.limits.per_user, token):
            raise refuse("locked_out")
        counted = False
        try:
            key = self.factor_keys.key(account_id)
            if kind == "otp":
                return self._otp_step(account_id, s, form, key)
            try:
                member_number, line_id = self._identify(account_id, key, kind, form, user_id)
            except LinkRefused as e:
                counted = e.code != "locked_out" and not e.code.endswith("_format")
                raise
            return SubmitResult(self._to_dialog(account_id, s, kind, member_number, line_id))
        except LinkRefused as e:
            counted = counted or e.code == "otp_invalid"
            raise
        finally:
            if not counted:
                self.links.release_attempt(account_id, user_subject, token)

    def _claim(self, account_id: str, subject: str, limit: int, token: str) -> bool:
        return self.links.claim_attempt(account_id, subject, token, self.limits.window_seconds, limit)

    def _member_limit(self, account_id: str, member_number: str) -> int:
        """Attempts a LINE user may make against this member per window: fewer while many LINE
        users are failing against it (distributed guessing is slowed, the member not locked)."""
        guessed = self.links.guesses(account_id, member_number, self.limits.guess_window_seconds)
        return self.limits.slow_per_member if guessed >= self.limits.guess_slow_after else self.limits.per_member

    def _verify_member(self, account_id: str, member_number: str, user_id: str, check: Any) -> None:
        """Run ``check()`` (raises LinkRefused on a wrong factor) inside a slot of this LINE
        user's attempts against this member: a wrong factor keeps the slot (it counts) and is
        counted against the member for detection; anything else gives it back. The slot is
        taken for a member number whether or not it exists, so the limits do not tell."""
        subject, token = f"PAIR#{member_number}#{user_id}", new_token()
        if not self._claim(account_id, subject, self._member_limit(account_id, member_number), token):
            raise refuse("locked_out")
        try:
            check()
        except LinkRefused as e:
            self._note_guess(account_id, member_number, user_id, exists=e.details is not None)
            raise
        except BaseException:
            self.links.release_attempt(account_id, subject, token)
            raise
        self.links.release_attempt(account_id, subject, token)

    def _note_guess(self, account_id: str, member_number: str, user_id: str, exists: bool) -> None:
        """A failed attempt against a member, from any LINE user; many of them from several LINE
        users raise a staff alert in the link audit (never a lockout of the member)."""
        lim = self.limits
        failures, users = self.links.note_guess(account_id, member_number, user_id, lim.guess_window_seconds)
        if exists and failures >= lim.guess_alert_after and users >= lim.guess_alert_users:
            reason = f"distributed guessing: about {int(failures)} failed attempts from {users} LINE users in 1 h"
            if self.links.raise_guess_alert(account_id, member_number, lim.guess_window_seconds, reason):
                logger.warning("link guessing alert", extra={"account_id": account_id, "users": users})
                metrics.add_metric(name="LinkGuessingAlert", unit="Count", value=1)

    def _to_dialog(self, account_id: str, s: dict[str, Any], kind: str, member_number: str, line_id: str | None) -> str:
        """The last checks, then a nonce bound to the member target and the LINE user."""
        user_id = s["user_id"]
        target = target_of(kind, member_number, line_id)
        existing = self.links.target(account_id, target)
        if existing is not None:
            # The same user again is told so, not that another account holds the number.
            raise refuse("member_already_linked" if existing["user_id"] != user_id else "already_linked")
        contractor = None
        if kind == "user":
            contractor = target_of("contractor", member_number)
            if self.links.target(account_id, contractor) is None:
                raise refuse("contractor_link_required")
            held = [lk for lk in self.links.user_links(account_id, user_id) if lk["target"].startswith("LINE#")]
            if held and held[0]["target"] != target:
                raise refuse("usage_code_already_held")
        nonce = new_nonce()
        # R-LINK-4: the nonce lives no longer than the 10-minute session that issued it.
        expires = min(int(time.time()) + LINK_SESSION_SECONDS, int(s["expires_at"]))
        self.links.put_nonce(account_id, nonce, user_id, target, member_number, expires)
        return (
            f"{self.access_base_url.rstrip('/')}/dialog/bot/accountLink"
            f"?linkToken={quote(s['link_token'], safe='')}&nonce={quote(nonce, safe='')}"
        )

    def _otp_step(self, account_id: str, s: dict[str, Any], form: dict[str, str], key: bytes) -> SubmitResult:
        """R-LINK-14: a 6-digit code to the e-mail address proves the address (and finds the
        member); a 5-digit code to the registered phone (voice call / SMS, delivered by the
        business's own system) proves the person. Codes: keyed hashes, 5 minutes, 5 tries, once."""
        if self.otps is None or self.otp_sender is None:
            raise refuse("otp_unavailable")
        sid, user_id, action = s["_sid"], s["user_id"], form.get("action", "")
        stage = str(s.get("otp_stage") or "")
        now = int(time.time())
        if action == "send_email":
            email = normalize_email(form.get("email", ""))
            found = self.members.find(account_id, "email", factor_hash(key, "email", email))
            code = new_otp(6)
            self.otps.put(
                account_id, sid, "email", factor_hash(key, "otp", code), found[0] if found else None, now + OTP_SECONDS
            )
            # An unknown address gets the same answer: the page must not reveal who is registered.
            if found and not self.otp_sender.send(account_id, "email", {"email": email}, code):
                raise refuse("otp_unavailable")
            self.otps.set_stage(account_id, sid, "email_sent", None)
            return SubmitResult(notice="ご登録のメールアドレスに6ケタの確認コードを送りました(5分間有効)。")
        if action == "verify_email" and stage == "email_sent":
            mn = self._code(account_id, sid, "email", form, key, user_id)
            pair = f"PAIR#{mn}#{user_id}"
            if self.links.attempts(account_id, pair, self.limits.window_seconds) >= self._member_limit(account_id, mn):
                raise refuse("locked_out")
            code = new_otp(5)
            self.otps.put(account_id, sid, "phone", factor_hash(key, "otp", code), mn, now + OTP_SECONDS)
            if not self.otp_sender.send(account_id, "phone", {"member_number": mn}, code):
                raise refuse("otp_unavailable")
            self.otps.set_stage(account_id, sid, "phone_sent", mn)
            return SubmitResult(notice="ご登録の電話番号に5ケタの確認コードをお知らせしました(5分間有効)。")
        if action == "verify_phone" and stage == "phone_sent":
            mn = self._code(account_id, sid, "phone", form, key, user_id)
            return SubmitResult(self._to_dialog(account_id, s, "otp", mn, None))
        raise refuse("csrf")  # a step out of order

    def _code(self, account_id: str, sid: str, channel: str, form: dict[str, str], key: bytes, user_id: str) -> str:
        """Check the one-time code the member typed; a miss counts towards the limits."""
        typed = factor_hash(key, "otp", normalize_otp(form.get("code", "")))
        ok, mn = self.otps.take(account_id, sid, channel, typed, OTP_MAX_TRIES)
        if not ok or mn is None:
            if mn:  # the user's attempt is counted by submit's slot; this user against the member here
                self._claim(account_id, f"PAIR#{mn}#{user_id}", self.limits.per_member, new_token())
                self._note_guess(account_id, str(mn), user_id, exists=True)
            raise refuse("otp_invalid")
        return str(mn)

    def _identify(
        self, account_id: str, key: bytes, kind: str, form: dict[str, str], user_id: str
    ) -> tuple[str, str | None]:
        if kind == "member":
            mn = parse_member_number(form.get("member_number", ""))
            phone = normalize_phone_jp(form.get("phone", ""))
            birth = parse_birth_date(form.get("birth_date", ""))

            def check_member() -> None:
                rec = self.members.get(account_id, mn)
                # R-LINK-1 without an oracle: a member number that does not exist is answered as
                # a wrong phone number (same code, message, status, limits and hashing work), so
                # the page never tells which numbers exist. The distinct birth-date answers come
                # only after the phone matched: only who already knows number and phone sees them.
                phone_ok = factor_matches(key, "phone", phone, rec.phone_hash if rec else _NO_HASH)
                birth_ok = factor_matches(key, "birth", birth, rec.birth_hash if rec else _NO_HASH)
                if rec is None or not phone_ok:
                    raise _with(refuse("phone_mismatch"), mn if rec else None)
                if rec.birth_hash is None:
                    raise _with(refuse("birth_date_not_registered"), mn)
                if not birth_ok:
                    raise _with(refuse("birth_date_mismatch"), mn)

            self._verify_member(account_id, mn, user_id, check_member)
            return mn, None
        if kind == "contractor":
            login_id, password = normalize_login_id(form.get("login_id", "")), form.get("password", "")
            found = (
                self.members.find(account_id, "login_id", factor_hash(key, "login_id", login_id)) if login_id else None
            )
            rec = self.members.get(account_id, found[0]) if found else None

            def check_password() -> None:
                if not password_matches(password, rec.password_hash if rec else None) or rec is None:
                    raise _with(refuse("login_failed"), found[0] if found else None)

            if found:
                self._verify_member(account_id, found[0], user_id, check_password)
            else:
                check_password()  # same work and answer for an unknown login ID (no enumeration)
            assert rec is not None
            return rec.member_number, None
        code = parse_usage_code(form.get("usage_code", ""))
        found = self.members.find(account_id, "usage_code", factor_hash(key, "usage_code", code))
        if found is None or found[1] is None:
            raise refuse("usage_code_invalid")
        return found[0], found[1]

    # -- 4. LINE's accountLink event (linking worker) ---------------------------------------
    def complete(self, account_id: str, event: dict[str, Any]) -> str:
        link = event.get("link") or {}
        if link.get("result") != "ok":
            return "failed"  # LINE could not verify the user: link nothing
        user_id = (event.get("source") or {}).get("userId")
        nonce = str(link.get("nonce") or "")
        record = self.links.get_nonce(account_id, nonce) if nonce and user_id else None
        if record is None:
            return "unknown_nonce"  # never issued, already used, or expired
        if record["user_id"] != user_id:
            return "nonce_user_mismatch"
        contractor = target_of("contractor", record["member_number"]) if record["target"].startswith("LINE#") else None
        failure = self.links.link(account_id, nonce, user_id, record["target"], record["member_number"], contractor)
        if failure is None:
            self._tag(account_id, user_id, "linked")
        text = CONFIRMATION if failure is None else refuse(failure).message if failure in _MEMBER_FACING else None
        token = self.secrets.access_token(account_id)
        if text and token and event.get("replyToken"):
            try:
                self.line.reply(token, event["replyToken"], [text])
            except BadRequest:
                pass  # an expired reply token: the link itself is done
        return "linked" if failure is None else failure

    # -- unlink and status --------------------------------------------------------------
    def unlink_self(self, account_id: str, user_id: str) -> list[str]:
        """R-LINK-5 / R-LINK-13: a member releases their member and user links from the OA menu
        (a contractor link is released from the company's own My-Page, i.e. by staff)."""
        done = []
        for lk in self.links.user_links(account_id, user_id):
            if lk["target"].startswith(("MEMBER#", "LINE#")) and self.links.unlink(
                account_id, lk["target"], "member", None, expected_user=user_id
            ):
                done.append(lk["target"])
        if done:
            self._tag(account_id, user_id, "unlinked")
        return done

    def unlink_staff(self, account_id: str, target: str, reason: str) -> str | None:
        """R-LINK-6: staff release a link after checking identity; the reason is audited."""
        user = self.links.unlink(account_id, target, "staff", reason)
        if user is not None:
            self._tag(account_id, user, "unlinked")
        return user

    def status(self, account_id: str, user_id: str) -> list[dict[str, Any]]:
        return [
            {"target": lk["target"], "member_number": lk["member_number"], "linked_at": int(lk["linked_at"])}
            for lk in self.links.user_links(account_id, user_id)
        ]


_MEMBER_FACING = {"member_already_linked", "usage_code_already_held", "contractor_link_required", "nonce_stale"}
_NO_HASH = "0" * 64  # compared against when there is no member: the same HMAC work either way


def _with(e: LinkRefused, member_number: str | None) -> LinkRefused:
    e.details = member_number
    return e
