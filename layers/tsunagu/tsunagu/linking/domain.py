"""Member linking rules (R-LINK-1 ... R-LINK-14): input formats, keyed hashes of verification
factors, attempt limits, and the member-facing errors (Japanese, each with a stable code).

Nothing raw is kept: phone, birth date, e-mail, login id and usage codes are stored as keyed
HMACs with a per-account secret (a plain hash of a phone number or a birth date is reversible
by brute force); passwords with scrypt and a random salt."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import unicodedata
from datetime import date

from tsunagu.errors import DomainError
from tsunagu.notifications.phone import MAX_PHONE_CHARS, to_ascii

MEMBER_NUMBER_RE = re.compile(r"^(?:\d{4,12}|N\d{10})$", re.ASCII)  # co-op style, or N + 10 digits (R-LINK-14)
USAGE_CODE_RE = re.compile(r"^\d{16}$", re.ASCII)  # R-LINK-9
LINK_SESSION_SECONDS = 600  # R-LINK-4: the link screen expires 10 minutes after it was opened
MAX_TYPED_CHARS = 40  # a verification field as typed, separators and padding included
LOGIN_ID_CHARS = 64
# Full-width ASCII (U+FF01-U+FF5E) to ASCII; full-width digits and dashes are mapped by to_ascii.
_FULL_WIDTH_ASCII = str.maketrans({chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)})
NONCE_BYTES = 24  # 192 bits (LINE asks for at least 128), base64url: 32 characters


class LinkRefused(DomainError):
    """A member-facing refusal: ``message`` is Japanese, ``code`` is stable."""

    status = 422


MESSAGES = {
    "member_not_found": "組合員番号が見つかりません。番号をご確認ください。",
    "phone_mismatch": (
        "電話番号が登録内容と一致しません。登録されている電話番号が古い可能性があります。"
        "お手数ですが、お問い合わせ窓口までご連絡ください。"
    ),
    "birth_date_not_registered": ("生年月日が登録されていません。お手数ですが、お問い合わせ窓口までご連絡ください。"),
    "birth_date_mismatch": "生年月日が登録内容と一致しません。",
    "birth_date_format": "生年月日は西暦4ケタ・月2ケタ・日2ケタの8ケタで入力してください(例: 19710401)。",
    "phone_format": "電話番号を数字で入力してください(例: 09012345678)。",
    "member_number_format": "組合員番号の形式が正しくありません。",
    "session_expired": (
        "連携画面の有効期限(10分)が切れました。画面を閉じて、もう一度LINEのメニューから連携を始めてください。"
    ),
    "member_already_linked": (
        "この番号はすでに別のLINEアカウントと連携されています。機種変更などでお困りの場合はお問い合わせ窓口へ"
        "ご連絡ください(ご本人確認のうえ解除します)。"
    ),
    "already_linked": (
        "この番号は、すでにこのLINEアカウントと連携済みです。連携状況は「連携状況」と送ると確認できます。"
    ),
    "login_failed": "ログインIDまたはパスワードが正しくありません。",
    "usage_code_format": "利用コードは16ケタの数字で入力してください。",
    "usage_code_invalid": "利用コードが正しくありません。",
    "contractor_link_required": "利用者連携の前に、この契約の契約者連携を完了してください。",
    "usage_code_already_held": "このLINEアカウントはすでに別の利用コードと連携しています(1アカウント1回線まで)。",
    "locked_out": "入力の誤りが続いたため、しばらくの間お手続きできません。時間をおいて再度お試しください。",
    "nonce_stale": (
        "連携手続きの途中で、この番号の連携状況が変わりました。お手数ですが、もう一度LINEのメニューから連携を始めてください。"
    ),
    "csrf": "画面の有効期限が切れたか、不正な操作です。LINEのメニューからやり直してください。",
    "policy_not_allowed": "この連携方法はご利用いただけません。",
    "email_format": "メールアドレスの形式が正しくありません。",
    "otp_invalid": "確認コードが正しくないか、有効期限(5分)が切れています。",
    "otp_unavailable": "現在、確認コードを送信できません。時間をおいて再度お試しください。",
}

OTP_SECONDS = 300
OTP_MAX_TRIES = 5


def new_otp(digits: int) -> str:
    """A one-time code: 6 digits by e-mail, 5 digits by voice call or SMS (R-LINK-14)."""
    return f"{secrets.randbelow(10**digits):0{digits}d}"


def refuse(code: str) -> LinkRefused:
    return LinkRefused(MESSAGES[code], code=code)


def typed(raw: str, limit: int = MAX_TYPED_CHARS) -> str:
    """What a member typed into a field of digits and Latin letters (phone, member number,
    birth date, usage code, login id), in ASCII: full-width letters, digits and signs to their
    ASCII forms, the ideographic space to a space, and the dashes a Japanese keyboard gives
    (``‐`` ``―`` ``−`` ``ー`` ``－``) to ``-``. Not NFKC: it turns circled ``①``, superscript
    ``²`` and other styled digits into digits, and those are refused (the same digit forms as
    ``notifications.phone.to_e164``, so the member register and the notification batch hash a
    number alike). Longer than ``limit`` as typed - before spaces and dashes are dropped - is
    refused: padding must not turn an over-long entry into an accepted one."""
    if len(raw) > limit:
        raise _TooLong
    return to_ascii(raw).translate(_FULL_WIDTH_ASCII)


class _TooLong(Exception):
    """Raised by ``typed``; each parser answers with its own format error."""


def normalize_phone_jp(raw: str) -> str:
    """Domestic digits: full-width to half-width, no separators, +81 -> 0 (R-LINK-1). The digit
    forms are those of ``to_e164`` (R-PNP-4): ASCII and full-width only; at most
    ``MAX_PHONE_CHARS`` characters as typed."""
    try:
        s = typed(raw, MAX_PHONE_CHARS).strip()
    except _TooLong:
        raise refuse("phone_format") from None
    s = re.sub(r"[\s\-()（）.]", "", s)
    if s.startswith("+81"):
        s = "0" + s[3:].lstrip("0")
    if not re.fullmatch(r"0\d{9,10}", s, re.ASCII):
        raise refuse("phone_format")
    return s


EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{2,}$")


def normalize_email(raw: str) -> str:
    s = unicodedata.normalize("NFKC", raw).strip().lower()
    if not EMAIL_RE.fullmatch(s):
        raise refuse("email_format")
    return s


def parse_birth_date(raw: str) -> str:
    """R-LINK-2: exactly 8 digits, YYYYMMDD, a real date."""
    try:
        s = typed(raw).strip()
    except _TooLong:
        raise refuse("birth_date_format") from None
    if not re.fullmatch(r"\d{8}", s, re.ASCII):  # Arabic-Indic digits would never match typed ones
        raise refuse("birth_date_format")
    try:
        born = date(int(s[:4]), int(s[4:6]), int(s[6:]))
    except ValueError:
        raise refuse("birth_date_format") from None
    if not date(1900, 1, 1) <= born <= date.today():
        raise refuse("birth_date_format")
    return s


def age_band(birth_yyyymmdd: str, today: date) -> str:
    """The decade of age on ``today`` (``"30s"``; ``"under_20"``, ``"70_plus"``): what a segment
    may know of a birth date (the date itself is kept only as a keyed hash)."""
    born = date(int(birth_yyyymmdd[:4]), int(birth_yyyymmdd[4:6]), int(birth_yyyymmdd[6:]))
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if age < 20:
        return "under_20"
    if age >= 70:
        return "70_plus"
    return f"{age // 10 * 10}s"


def parse_member_number(raw: str) -> str:
    """R-LINK-1 / R-LINK-14: a co-op number (4-12 digits) or N + 10 digits."""
    try:
        s = typed(raw).strip().upper()
    except _TooLong:
        raise refuse("member_number_format") from None
    if not MEMBER_NUMBER_RE.fullmatch(s):
        raise refuse("member_number_format")
    return s


def parse_usage_code(raw: str) -> str:
    """R-LINK-9: 16 digits, spaces and dashes between groups allowed."""
    try:
        s = re.sub(r"[\s\-]", "", typed(raw))
    except _TooLong:
        raise refuse("usage_code_format") from None
    if not USAGE_CODE_RE.fullmatch(s):
        raise refuse("usage_code_format")
    return s


def normalize_login_id(raw: str) -> str:
    """R-LINK-9: the My-Page login ID as typed, in ASCII (``ｔａｒｏ`` is ``taro``), trimmed; the
    register and the link page read it alike. Empty when it is longer than a login ID can be."""
    try:
        return typed(raw, LOGIN_ID_CHARS).strip()
    except _TooLong:
        return ""


def normalize_otp(raw: str) -> str:
    """R-LINK-14: a one-time code as typed (full-width digits as typed on a phone keyboard are
    the same code); empty when it is too long to be one."""
    try:
        return typed(raw).strip()
    except _TooLong:
        return ""


def factor_hash(key: bytes, kind: str, value: str) -> str:
    """Keyed hash of a verification factor; ``kind`` separates the domains (phone vs birth)."""
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def factor_matches(key: bytes, kind: str, value: str, stored: str | None) -> bool:
    return stored is not None and hmac.compare_digest(factor_hash(key, kind, value), stored)


# scrypt: memory-hard; n=2**14, r=8, p=1 costs ~50 ms and 16 MiB per check on one core.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    dk = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    b64 = base64.urlsafe_b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(dk).decode()}"


def password_matches(password: str, stored: str | None) -> bool:
    if not stored:
        # Same work as a real check, so timing does not tell whether the login id exists.
        hash_password(password)
        return False
    _, n, r, p, salt, dk = stored.split("$")
    got = hashlib.scrypt(password.encode(), salt=base64.urlsafe_b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    return hmac.compare_digest(got, base64.urlsafe_b64decode(dk))


def new_nonce() -> str:
    """LINE's account-link nonce: single use, unpredictable, 10-255 chars; base64url so it
    needs no escaping in the dialog URL."""
    return secrets.token_urlsafe(NONCE_BYTES)


def new_token() -> str:
    return secrets.token_urlsafe(32)


# -- attempt limits (issue 16; see docs/architecture.md "Linking abuse limits") ---------------


def sliding_admit(hits: list[str], now_ms: int, window_ms: int, limit: int, token: str) -> list[str] | None:
    """A sliding-window log: ``hits`` are ``"<ms>:<token>"`` of the attempts counted so far.
    Returns the log with this attempt added (entries older than the window dropped), or None
    when ``limit`` attempts already fall in the last ``window_ms`` - at any instant, never
    more than ``limit`` in any window (a fixed window allows twice the limit across its edge)."""
    kept = [h for h in hits if int(h.split(":", 1)[0]) > now_ms - window_ms]
    if len(kept) >= limit:
        return None
    return [*kept, f"{now_ms}:{token}"]


def sliding_estimate(previous: int, current: int, now: int, window_seconds: int) -> float:
    """A sliding count from two fixed buckets (the previous one weighted by how much of it
    still lies in the window): atomic ADDs only, never a conflict - used where many LINE users
    write one counter at once and an estimate is enough (detecting distributed guessing)."""
    elapsed = (now % window_seconds) / window_seconds
    return previous * (1 - elapsed) + current
