"""Coupons (R-CPN-1 ... R-CPN-7, R-LINK-7): the coupon definition, which basket unit a coupon
discounts, lottery draws, rotating redemption codes and LINE Login ID tokens.

Pure and stdlib only (no pydantic, no I/O): the redemption path and the coupon page import it
and must start fast. Storage, the exactly-once bookkeeping (one use per person, caps, lottery
results) and HTTP belong to the service layer; this module gives it the rules and the codes."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal, Protocol

from tsunagu.errors import DomainError

JST = timezone(timedelta(hours=9))
DiscountKind = Literal["yen", "percent"]
DISCOUNT_KINDS: tuple[str, ...] = ("yen", "percent")

# ---------------------------------------------------------------------------------------------
# Refusals: stable codes, with the Japanese / English text the POS and the coupon page show.
# ---------------------------------------------------------------------------------------------

EXPIRED = "expired"
NOT_YET_VALID = "not_yet_valid"
NOT_ELIGIBLE = "not_eligible"
ONLY_MARKED_DOWN = "only_marked_down"
ZERO_DISCOUNT = "zero_discount"
NOT_COMBINABLE = "not_combinable"
ALREADY_USED = "already_used"
NOT_A_MEMBER = "not_a_member"
LOTTERY_LOST = "lottery_lost"
CAP_REACHED = "cap_reached"
CODE_EXPIRED = "code_expired"
CODE_INVALID = "code_invalid"
NOT_GRANTED = "not_granted"
NOT_VOIDABLE = "not_voidable"
VOID_WINDOW_CLOSED = "void_window_closed"


@dataclass(frozen=True, slots=True)
class Message:
    ja: str
    en: str


REFUSALS: dict[str, Message] = {
    EXPIRED: Message("このクーポンは有効期限が切れています。", "This coupon has expired."),
    NOT_YET_VALID: Message("このクーポンはまだ利用期間前です。", "This coupon is not valid yet."),
    NOT_ELIGIBLE: Message("お買い上げ商品にクーポン対象商品がありません。", "No item in the basket is eligible."),
    ONLY_MARKED_DOWN: Message(
        "値引きシールの貼られた商品にはクーポンをご利用いただけません。",
        "The coupon cannot be used on marked-down items.",
    ),
    ZERO_DISCOUNT: Message(
        "対象商品の割引額が0円になるため、クーポンをご利用いただけません。",
        "The discount on the eligible item would be 0 yen.",
    ),
    NOT_COMBINABLE: Message(
        "このクーポンは他のクーポン・割引券と併用できません。",
        "This coupon cannot be combined with other coupons or vouchers.",
    ),
    ALREADY_USED: Message("このクーポンはすでにご利用済みです。", "This coupon has already been used."),
    NOT_A_MEMBER: Message("このクーポンは会員連携済みの方限定です。", "This coupon is for linked members only."),
    LOTTERY_LOST: Message("残念ながら抽選にはずれました。", "Sorry, you did not win the lottery."),
    CAP_REACHED: Message("このクーポンは配布上限に達したため終了しました。", "This coupon has reached its limit."),
    CODE_EXPIRED: Message(
        "コードの有効期限が切れています。クーポン画面を開き直して新しいコードを表示してください。",
        "The code has expired. Reopen the coupon page to show a new code.",
    ),
    CODE_INVALID: Message("コードが正しくありません。", "The code is not valid."),
    NOT_GRANTED: Message("このクーポンはお持ちではありません。", "This coupon has not been granted to you."),
    NOT_VOIDABLE: Message("このクーポンの利用は取り消せません。", "This redemption cannot be voided."),
    VOID_WINDOW_CLOSED: Message(
        "取り消しできる期間を過ぎています。", "The period for voiding this redemption has passed."
    ),
}


class CouponRefused(DomainError):
    """A refusal shown to the customer / the POS: ``message`` is Japanese, ``code`` is stable."""

    status = 422


def refuse(code: str) -> CouponRefused:
    return CouponRefused(REFUSALS[code].ja, code=code, details={"en": REFUSALS[code].en})


# ---------------------------------------------------------------------------------------------
# Definition
# ---------------------------------------------------------------------------------------------


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value


def _int(value: object, name: str) -> int:
    """An int from storage: DynamoDB numbers arrive as Decimal; bools and fractions are refused."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    raise ValueError(f"{name} must be an integer")


def _when(value: object, name: str) -> datetime:
    """ISO 8601 from storage; a value without an offset is read as JST (validity is a JST rule)."""
    if isinstance(value, datetime):
        d = value
    elif isinstance(value, str):
        d = datetime.fromisoformat(value)
    else:
        raise ValueError(f"{name} must be an ISO 8601 date-time")
    return d if d.tzinfo is not None else d.replace(tzinfo=JST)


def jst_days(first: date, last: date) -> tuple[datetime, datetime]:
    """``valid_from`` / ``valid_until`` for a coupon valid on the JST calendar days first..last
    inclusive: from 00:00 JST on ``first`` to 00:00 JST the day after ``last`` (exclusive)."""
    return (
        datetime.combine(first, time(), JST),
        datetime.combine(last + timedelta(days=1), time(), JST),
    )


@dataclass(frozen=True, slots=True)
class Lottery:
    """LINE's lottery acquisition (line-platform.md 6.2): win probability 1-99 %, and at most
    ``max_winners`` winners (None = unlimited, LINE's -1)."""

    probability_percent: int
    max_winners: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.probability_percent <= 99:
            raise ValueError("lottery probability must be 1-99 %")
        if self.max_winners is not None and not 1 <= self.max_winners <= 999_999:
            raise ValueError("lottery max_winners must be 1-999999 (or None for unlimited)")


@dataclass(frozen=True, slots=True)
class CouponDefinition:
    """One coupon (R-CPN-1). ``amount`` is yen for ``kind="yen"`` and 1-100 for ``"percent"``.

    Eligibility: an item is eligible when its code is in ``eligible_items`` or its category is in
    ``eligible_categories``; when both are empty every item is eligible ("any one item").
    Validity is half-open, ``valid_from <= now < valid_until``, compared as instants; build JST
    calendar days with :func:`jst_days` (a coupon "until 11/30" ends at 12/01 00:00 JST)."""

    coupon_id: str
    title: str
    kind: DiscountKind
    amount: int
    valid_from: datetime
    valid_until: datetime
    eligible_items: frozenset[str] = frozenset()
    eligible_categories: frozenset[str] = frozenset()
    per_person_limit: int = 1  # R-CPN-5: one use per person
    total_cap: int | None = None
    members_only: bool = False  # R-CPN-7 / R-LINK-7: better coupons for linked members
    combinable: bool = True  # R-CPN-2: LINE coupons combine with other coupons and vouchers
    excludes_marked_down: bool = True  # R-CPN-3: never on items with a markdown sticker
    lottery: Lottery | None = None
    voidable: bool = False
    void_within: timedelta | None = None  # after the redemption
    void_until: datetime | None = None  # absolute deadline

    def __post_init__(self) -> None:
        if not self.coupon_id:
            raise ValueError("coupon_id is required")
        if self.kind not in DISCOUNT_KINDS:
            raise ValueError(f"kind must be one of {DISCOUNT_KINDS}")
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise ValueError("amount must be an integer")
        if self.kind == "yen" and self.amount < 1:
            raise ValueError("a yen discount must be at least 1 yen")
        if self.kind == "percent" and not 1 <= self.amount <= 100:
            raise ValueError("a percent discount must be 1-100")
        _aware(self.valid_from, "valid_from")
        _aware(self.valid_until, "valid_until")
        if self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        if self.per_person_limit < 1:
            raise ValueError("per_person_limit must be at least 1")
        if self.total_cap is not None and self.total_cap < 1:
            raise ValueError("total_cap must be at least 1 (or None)")
        if self.void_until is not None:
            _aware(self.void_until, "void_until")
        if self.void_within is not None and self.void_within <= timedelta(0):
            raise ValueError("void_within must be positive")
        # Accept any iterable of codes from callers; store frozensets (hashable, order-free).
        object.__setattr__(self, "eligible_items", frozenset(self.eligible_items))
        object.__setattr__(self, "eligible_categories", frozenset(self.eligible_categories))

    def is_eligible(self, item_code: str, category: str | None) -> bool:
        if not self.eligible_items and not self.eligible_categories:
            return True
        return item_code in self.eligible_items or (category is not None and category in self.eligible_categories)

    def to_dict(self) -> dict[str, Any]:
        """Storage form: JSON-safe scalars (ISO 8601 in JST, seconds, sorted lists)."""
        out: dict[str, Any] = {
            "coupon_id": self.coupon_id,
            "title": self.title,
            "kind": self.kind,
            "amount": self.amount,
            "valid_from": self.valid_from.astimezone(JST).isoformat(),
            "valid_until": self.valid_until.astimezone(JST).isoformat(),
            "eligible_items": sorted(self.eligible_items),
            "eligible_categories": sorted(self.eligible_categories),
            "per_person_limit": self.per_person_limit,
            "total_cap": self.total_cap,
            "members_only": self.members_only,
            "combinable": self.combinable,
            "excludes_marked_down": self.excludes_marked_down,
            "lottery": None,
            "voidable": self.voidable,
            "void_within_seconds": None,
            "void_until": None,
        }
        if self.lottery is not None:
            out["lottery"] = {
                "probability_percent": self.lottery.probability_percent,
                "max_winners": self.lottery.max_winners,
            }
        if self.void_within is not None:
            out["void_within_seconds"] = int(self.void_within.total_seconds())
        if self.void_until is not None:
            out["void_until"] = self.void_until.astimezone(JST).isoformat()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CouponDefinition:
        """The inverse of :meth:`to_dict`; also takes DynamoDB's Decimal numbers and string sets."""
        kind = data["kind"]
        if kind not in DISCOUNT_KINDS:
            raise ValueError(f"kind must be one of {DISCOUNT_KINDS}")
        lottery_data = data.get("lottery")
        lottery = None
        if lottery_data is not None:
            max_winners = lottery_data.get("max_winners")
            lottery = Lottery(
                probability_percent=_int(lottery_data["probability_percent"], "lottery.probability_percent"),
                max_winners=None if max_winners is None else _int(max_winners, "lottery.max_winners"),
            )
        total_cap = data.get("total_cap")
        within = data.get("void_within_seconds")
        until = data.get("void_until")
        return cls(
            coupon_id=str(data["coupon_id"]),
            title=str(data.get("title", "")),
            kind="yen" if kind == "yen" else "percent",
            amount=_int(data["amount"], "amount"),
            valid_from=_when(data["valid_from"], "valid_from"),
            valid_until=_when(data["valid_until"], "valid_until"),
            eligible_items=frozenset(str(x) for x in data.get("eligible_items") or ()),
            eligible_categories=frozenset(str(x) for x in data.get("eligible_categories") or ()),
            per_person_limit=_int(data.get("per_person_limit", 1), "per_person_limit"),
            total_cap=None if total_cap is None else _int(total_cap, "total_cap"),
            members_only=bool(data.get("members_only", False)),
            combinable=bool(data.get("combinable", True)),
            excludes_marked_down=bool(data.get("excludes_marked_down", True)),
            lottery=lottery,
            voidable=bool(data.get("voidable", False)),
            void_within=None if within is None else timedelta(seconds=_int(within, "void_within_seconds")),
            void_until=None if until is None else _when(until, "void_until"),
        )


# ---------------------------------------------------------------------------------------------
# Basket evaluation (R-CPN-2, R-CPN-3, R-CPN-4)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BasketLine:
    item_code: str
    quantity: int
    unit_price: int  # yen, tax handling is the POS's business
    category: str | None = None
    marked_down: bool = False  # carries a markdown sticker (R-CPN-3)

    def __post_init__(self) -> None:
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int) or self.quantity < 1:
            raise ValueError("quantity must be an integer >= 1")
        if isinstance(self.unit_price, bool) or not isinstance(self.unit_price, int) or self.unit_price < 0:
            raise ValueError("unit_price must be an integer >= 0 (yen)")


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of :func:`evaluate`: either one unit of one line discounted, or a refusal."""

    refusal: str | None = None
    line_index: int | None = None
    item_code: str | None = None
    unit_price: int = 0
    discount_yen: int = 0

    @property
    def ok(self) -> bool:
        return self.refusal is None

    @property
    def message_ja(self) -> str:
        return "" if self.refusal is None else REFUSALS[self.refusal].ja

    @property
    def message_en(self) -> str:
        return "" if self.refusal is None else REFUSALS[self.refusal].en


def unit_discount(definition: CouponDefinition, unit_price: int) -> int:
    """The discount on one unit, never more than its price. Percent rounds DOWN to whole yen
    (切り捨て): 15 % of 199 yen is 29 yen, and 100 % is the whole price."""
    if definition.kind == "yen":
        return min(definition.amount, unit_price)
    return unit_price * definition.amount // 100


def validity_refusal(definition: CouponDefinition, now: datetime) -> str | None:
    """``not_yet_valid`` before ``valid_from``, ``expired`` from ``valid_until`` on, else None."""
    _aware(now, "now")
    if now < definition.valid_from:
        return NOT_YET_VALID
    if now >= definition.valid_until:
        return EXPIRED
    return None


def evaluate(
    definition: CouponDefinition,
    basket_lines: Sequence[BasketLine],
    now: datetime,
    *,
    other_coupons: int = 0,
) -> Decision:
    """Which unit the coupon discounts, or why it cannot be used.

    - validity first: ``not_yet_valid`` / ``expired``;
    - ``not_combinable`` when other coupons are already on the transaction and the coupon does
      not combine (LINE coupons combine by default, R-CPN-2);
    - one coupon discounts ONE unit of ONE item (R-CPN-4), whatever the quantities;
    - never a marked-down item while ``excludes_marked_down`` (R-CPN-3): ``only_marked_down``
      when every eligible line is marked down, ``not_eligible`` when no line is eligible;
    - the unit with the largest discount wins (``min(amount, price)`` for yen, the rounded-down
      percentage for percent); ties go to the first line;
    - ``zero_discount`` when the best discount is 0 yen (a 0-yen item, or a percentage that
      rounds to 0), so the customer's single use (R-CPN-5) is not spent on nothing."""
    refusal = validity_refusal(definition, now)
    if refusal is not None:
        return Decision(refusal=refusal)
    if other_coupons > 0 and not definition.combinable:
        return Decision(refusal=NOT_COMBINABLE)
    eligible = [
        (i, line) for i, line in enumerate(basket_lines) if definition.is_eligible(line.item_code, line.category)
    ]
    if not eligible:
        return Decision(refusal=NOT_ELIGIBLE)
    if definition.excludes_marked_down:
        eligible = [(i, line) for i, line in eligible if not line.marked_down]
        if not eligible:
            return Decision(refusal=ONLY_MARKED_DOWN)
    best_index, best_line = eligible[0]
    best = unit_discount(definition, best_line.unit_price)
    for i, line in eligible[1:]:
        d = unit_discount(definition, line.unit_price)
        if d > best:  # strictly larger: a tie keeps the earlier line
            best_index, best_line, best = i, line, d
    if best <= 0:
        return Decision(refusal=ZERO_DISCOUNT)
    return Decision(
        line_index=best_index, item_code=best_line.item_code, unit_price=best_line.unit_price, discount_yen=best
    )


def precheck(
    definition: CouponDefinition,
    now: datetime,
    *,
    is_member: bool,
    used_by_person: int,
    used_in_total: int,
) -> str | None:
    """The person-level refusals the service applies before looking at a basket, from counts it
    has read: validity, ``not_a_member`` (members-only coupons, R-CPN-7 / R-LINK-7),
    ``already_used`` (R-CPN-5, ``per_person_limit``), ``cap_reached`` (``total_cap``). The
    counts must still be enforced atomically when the redemption is written."""
    refusal = validity_refusal(definition, now)
    if refusal is not None:
        return refusal
    if definition.members_only and not is_member:
        return NOT_A_MEMBER
    if used_by_person >= definition.per_person_limit:
        return ALREADY_USED
    if definition.total_cap is not None and used_in_total >= definition.total_cap:
        return CAP_REACHED
    return None


def void_refusal(definition: CouponDefinition, redeemed_at: datetime, now: datetime) -> str | None:
    """May a redemption be voided (given back) now? None when it may. ``void_within`` counts from
    the redemption and ``void_until`` is a fixed deadline, both exclusive; with neither, a
    voidable coupon can be voided at any time."""
    _aware(redeemed_at, "redeemed_at")
    _aware(now, "now")
    if not definition.voidable:
        return NOT_VOIDABLE
    if definition.void_within is not None and now >= redeemed_at + definition.void_within:
        return VOID_WINDOW_CLOSED
    if definition.void_until is not None and now >= definition.void_until:
        return VOID_WINDOW_CLOSED
    return None


# ---------------------------------------------------------------------------------------------
# Lottery (LINE lottery coupons: probability 1-99 %, max winners)
# ---------------------------------------------------------------------------------------------


class RandomSource(Protocol):
    """``random.Random`` / ``secrets.SystemRandom``: production passes ``SystemRandom()``."""

    def randrange(self, stop: int, /) -> int: ...


def draw(probability_percent: int, rng: RandomSource) -> bool:
    """One draw that wins with exactly ``probability_percent`` % (an integer draw from 0..99, no
    float rounding); deterministic for a seeded ``rng``."""
    if not 1 <= probability_percent <= 99:
        raise ValueError("probability must be 1-99 %")
    return rng.randrange(100) < probability_percent


def lottery_refusal(lottery: Lottery, rng: RandomSource, winners_so_far: int) -> str | None:
    """None = the person won; otherwise ``cap_reached`` (all winners drawn, no draw made) or
    ``lottery_lost``. The service must store the outcome once per person (no re-draws) and
    claim a winner slot atomically (``winners < max_winners``); losing that race is also
    ``cap_reached``."""
    if lottery.max_winners is not None and winners_so_far >= lottery.max_winners:
        return CAP_REACHED
    return None if draw(lottery.probability_percent, rng) else LOTTERY_LOST


# ---------------------------------------------------------------------------------------------
# Rotating redemption codes
# ---------------------------------------------------------------------------------------------

GRANT_DIGITS = 8
MAC_DIGITS = 8
CODE_DIGITS = GRANT_DIGITS + MAC_DIGITS
QR_PREFIX = "TSNG1:"  # uppercase + ':' keeps the QR in alphanumeric mode (version 1-2)
DEFAULT_STEP_SECONDS = 30
EXPIRED_LOOKBACK_STEPS = 240  # how far back a stale code is still recognised as code_expired
_GRANT_RE = re.compile(rf"[0-9]{{{GRANT_DIGITS}}}")
_CODE_RE = re.compile(rf"[0-9]{{{CODE_DIGITS}}}")
_CODE_SEPARATORS = str.maketrans("", "", " -")
_CODE_CONTEXT = b"tsunagu/coupon-code/v1"


@dataclass(frozen=True, slots=True)
class IssuedCode:
    code: str  # 16 digits: a Code 128 (set C) barcode or manual entry at the POS
    qr_payload: str  # QR_PREFIX + code
    step: int
    rotates_at: datetime  # when the coupon page should fetch the next code

    @property
    def display(self) -> str:
        """Grouped for reading aloud / typing: ``1234 5678 9012 3456``."""
        return " ".join(self.code[i : i + 4] for i in range(0, CODE_DIGITS, 4))


@dataclass(frozen=True, slots=True)
class CodeCheck:
    grant_ref: str | None = None
    refusal: str | None = None  # code_expired / code_invalid

    @property
    def ok(self) -> bool:
        return self.grant_ref is not None


def grant_ref_for(serial: int) -> str:
    """The 8-digit grant reference a code carries, from the service's grant serial (0-99999999,
    unique under one code key)."""
    if not 0 <= serial < 10**GRANT_DIGITS:
        raise ValueError(f"grant serial must fit in {GRANT_DIGITS} digits")
    return f"{serial:0{GRANT_DIGITS}d}"


def _step(now: datetime, step_seconds: int) -> int:
    _aware(now, "now")
    if step_seconds < 1:
        raise ValueError("step_seconds must be at least 1")
    return int(now.timestamp()) // step_seconds


def _mac_digits(key: bytes, grant_ref: str, step: int, step_seconds: int) -> str:
    msg = b"|".join((_CODE_CONTEXT, grant_ref.encode(), str(step_seconds).encode(), str(step).encode()))
    mac = hmac.digest(key, msg, "sha256")
    # 64 bits mod 10^8: the bias is below 1e-10, far under the guessing odds documented below.
    return f"{int.from_bytes(mac[:8], 'big') % 10**MAC_DIGITS:0{MAC_DIGITS}d}"


def _check_key(key: bytes) -> None:
    if len(key) < 16:
        raise ValueError("the code key must be at least 16 bytes")


def issue_code(key: bytes, grant_ref: str, now: datetime, step_seconds: int = DEFAULT_STEP_SECONDS) -> IssuedCode:
    """The redemption code shown on the coupon page for ``now``'s time step.

    Format: 16 digits = the 8-digit grant reference + 8 MAC digits, where the MAC is
    HMAC-SHA256(key, context | grant | step length | time step) reduced to 8 decimal digits
    (TOTP-like). The code names its grant, so the POS needs no lookup to find it, and it changes
    every ``step_seconds``: a screenshot passed to someone else (R-CPN-5, one use per person;
    the page itself sits behind LINE Login, R-CPN-6) stops working after the rotation window.

    ``key`` is a server-side secret (>= 16 bytes, e.g. per account); grant references must be
    unique under one key (:func:`grant_ref_for`)."""
    _check_key(key)
    if not _GRANT_RE.fullmatch(grant_ref):
        raise ValueError(f"grant_ref must be {GRANT_DIGITS} ASCII digits")
    step = _step(now, step_seconds)
    code = grant_ref + _mac_digits(key, grant_ref, step, step_seconds)
    rotates_at = datetime.fromtimestamp((step + 1) * step_seconds, now.tzinfo)
    return IssuedCode(code=code, qr_payload=QR_PREFIX + code, step=step, rotates_at=rotates_at)


def check_code(
    key: bytes,
    code: str,
    now: datetime,
    step_seconds: int = DEFAULT_STEP_SECONDS,
    window: int = 1,
    *,
    lookback_steps: int = EXPIRED_LOOKBACK_STEPS,
) -> CodeCheck:
    """Verify a scanned or typed code (bare digits, grouped with spaces/hyphens, or the QR
    payload). Accepted for the current step and the ``window`` steps before it (window=1 at 30 s:
    a code lives 30-60 s). A code that was genuine for one of the ``lookback_steps`` older steps
    is ``code_expired``; anything else (typo, tampered grant or MAC digits) is ``code_invalid``.

    Security trade-off: 8 MAC digits are about 26.6 bits. The key never leaves the server, so
    there is no offline attack; an online guess at a known grant succeeds with probability
    (window + 1) / 10^8 (2e-8 at window=1). At 10 guesses a second that is about 40 days for
    even odds, and the service should lock a grant (or a terminal) after a few ``code_invalid``
    results. More MAC digits would mean fewer grant digits or a longer barcode; a longer MAC in
    the QR alone would not help, since an attacker would use the weakest accepted form."""
    _check_key(key)
    if window < 0 or lookback_steps < 0:
        raise ValueError("window and lookback_steps must be >= 0")
    text = code.strip()
    if text[: len(QR_PREFIX)].upper() == QR_PREFIX:
        text = text[len(QR_PREFIX) :]
    text = text.translate(_CODE_SEPARATORS)
    if not _CODE_RE.fullmatch(text):
        return CodeCheck(refusal=CODE_INVALID)
    grant_ref, got = text[:GRANT_DIGITS], text[GRANT_DIGITS:]
    current = _step(now, step_seconds)
    for back in range(window + 1):
        if hmac.compare_digest(_mac_digits(key, grant_ref, current - back, step_seconds), got):
            return CodeCheck(grant_ref=grant_ref)
    for back in range(window + 1, window + 1 + lookback_steps):
        if hmac.compare_digest(_mac_digits(key, grant_ref, current - back, step_seconds), got):
            return CodeCheck(refusal=CODE_EXPIRED)
    return CodeCheck(refusal=CODE_INVALID)


def verify_code(
    key: bytes, code: str, now: datetime, step_seconds: int = DEFAULT_STEP_SECONDS, window: int = 1
) -> str | None:
    """The grant reference of a currently valid code, else None (see :func:`check_code` for why)."""
    return check_code(key, code, now, step_seconds, window).grant_ref


# ---------------------------------------------------------------------------------------------
# LINE Login ID tokens (R-CPN-6: using a coupon requires LINE Login)
# ---------------------------------------------------------------------------------------------

LINE_ISSUER = "https://access.line.me"
TOKEN_MALFORMED = "token_malformed"
TOKEN_SIGNATURE = "token_signature"
TOKEN_AUDIENCE = "token_audience"
TOKEN_EXPIRED = "token_expired"
TOKEN_ISSUER = "token_issuer"
TOKEN_NONCE = "token_nonce"
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]+")


class IdTokenError(DomainError):
    """The ID token was refused; ``code`` is one of the ``token_*`` constants."""

    code = TOKEN_MALFORMED
    status = 401


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(part: str) -> bytes:
    if not _B64URL_RE.fullmatch(part):
        raise IdTokenError("ID token part is not base64url", code=TOKEN_MALFORMED)
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise IdTokenError("ID token part is not base64url", code=TOKEN_MALFORMED) from None


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise IdTokenError(f"ID token {what} is not JSON", code=TOKEN_MALFORMED) from None
    if not isinstance(value, dict):
        raise IdTokenError(f"ID token {what} is not a JSON object", code=TOKEN_MALFORMED)
    return value


def _secret_bytes(secret: str | bytes) -> bytes:
    raw = secret.encode() if isinstance(secret, str) else secret
    if not raw:
        raise ValueError("the channel secret is empty")
    return raw


def sign_id_token(claims: Mapping[str, Any], secret: str | bytes) -> str:
    """An HS256 JWT over ``claims`` signed with ``secret`` (a LINE Login channel secret): what
    LINE issues for web login. For the local LINE sandbox and tests."""
    header = _b64url(json.dumps({"typ": "JWT", "alg": "HS256"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(dict(claims), separators=(",", ":"), ensure_ascii=False).encode())
    signing_input = f"{header}.{payload}"
    sig = hmac.digest(_secret_bytes(secret), signing_input.encode("ascii"), "sha256")
    return f"{signing_input}.{_b64url(sig)}"


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IdTokenError("ID token exp is not a number", code=TOKEN_MALFORMED)
    return float(value)


def verify_id_token(
    token: str,
    channel_id: str,
    channel_secret: str | bytes,
    now: datetime,
    nonce: str | None = None,
    *,
    leeway_seconds: int = 0,
    jwks: Callable[[str], dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """The claims of a LINE Login v2.1 ID token, or :class:`IdTokenError`.

    Web login tokens are JWTs signed HS256 with the channel secret; LIFF and the native SDKs
    get ES256 tokens signed with LINE's keys (JWKS at https://api.line.me/oauth2/v2.1/certs),
    accepted when ``jwks`` (kid -> JWK) is given. The algorithm decides the key, never the
    other way round: HS256 is checked only with the channel secret (an HS256 token MACed with
    LINE's public key fails), ES256 only with a P-256 key from ``jwks`` named by ``kid``.
    Checks, in order: three base64url parts with a JSON header; ``alg`` exactly ``HS256`` or
    (with ``jwks``) ``ES256`` (``none`` and every other algorithm are ``token_signature``) and
    no ``crit``; the signature (``token_signature``); a JSON payload with a string
    ``sub`` (``token_malformed``); ``iss`` (``token_issuer``); ``aud`` equals the channel ID
    (``token_audience``); ``now < exp + leeway_seconds`` (``token_expired``; no leeway unless
    asked); and, when given, ``nonce`` (``token_nonce``)."""
    _aware(now, "now")
    if not isinstance(token, str) or not token.isascii():
        raise IdTokenError("ID token is not ASCII text", code=TOKEN_MALFORMED)
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise IdTokenError("ID token must have three parts", code=TOKEN_MALFORMED)
    header_b64, payload_b64, sig_b64 = parts
    header = _json_object(_unb64url(header_b64), "header")
    alg = header.get("alg")
    if alg != "HS256" and not (alg == "ES256" and jwks is not None):
        raise IdTokenError("ID token algorithm must be HS256 or ES256", code=TOKEN_SIGNATURE)
    if "crit" in header:
        raise IdTokenError("ID token has critical header extensions", code=TOKEN_MALFORMED)
    signature = _unb64url(sig_b64)
    if alg == "ES256" and jwks is not None:
        kid = header.get("kid")
        jwk = jwks(kid) if isinstance(kid, str) and 0 < len(kid) <= 200 else None
        if jwk is None:
            raise IdTokenError("ID token is signed with a key LINE does not publish", code=TOKEN_SIGNATURE)
        from tsunagu.coupons.es256 import verify_es256  # lazy: cryptography only when needed

        if not verify_es256(token, jwk):
            raise IdTokenError("ID token signature does not match", code=TOKEN_SIGNATURE)
    else:
        expected = hmac.digest(_secret_bytes(channel_secret), f"{header_b64}.{payload_b64}".encode("ascii"), "sha256")
        if not hmac.compare_digest(expected, signature):
            raise IdTokenError("ID token signature does not match", code=TOKEN_SIGNATURE)
    claims = _json_object(_unb64url(payload_b64), "payload")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise IdTokenError("ID token has no subject", code=TOKEN_MALFORMED)
    if claims.get("iss") != LINE_ISSUER:
        raise IdTokenError("ID token issuer is not LINE", code=TOKEN_ISSUER)
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if str(channel_id) not in [a for a in audiences if isinstance(a, str)]:
        raise IdTokenError("ID token is for another channel", code=TOKEN_AUDIENCE)
    if "exp" not in claims:
        raise IdTokenError("ID token has no exp", code=TOKEN_MALFORMED)
    if now.timestamp() >= _number(claims["exp"]) + leeway_seconds:
        raise IdTokenError("ID token has expired", code=TOKEN_EXPIRED)
    if nonce is not None:
        got = claims.get("nonce")
        if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
            raise IdTokenError("ID token nonce does not match", code=TOKEN_NONCE)
    return claims


# ---------------------------------------------------------------------------------------------
# Mirror to LINE's coupon API (line-platform.md 6.2)
# ---------------------------------------------------------------------------------------------


def line_coupon_body(definition: CouponDefinition, usage_condition: str | None = None) -> dict[str, Any]:
    """The ``POST /v2/bot/coupon`` request for a definition, so it can be sent as a LINE coupon
    message. LINE knows validity, use counts and lotteries but not baskets or markdowns: those
    rules stay tsunagu's, and ``usageCondition`` (<= 100 characters) tells the member. LINE's
    percentage is 1-99: a 100 % coupon is LINE's ``free`` reward."""
    if definition.kind == "yen":
        reward: dict[str, Any] = {"type": "discount", "priceInfo": {"type": "fixed", "fixedAmount": definition.amount}}
    elif definition.amount < 100:
        reward = {"type": "discount", "priceInfo": {"type": "percentage", "percentage": definition.amount}}
    else:
        reward = {"type": "free"}
    if definition.lottery is None:
        acquisition: dict[str, Any] = {"type": "normal"}
    else:
        acquisition = {
            "type": "lottery",
            "lotteryProbability": definition.lottery.probability_percent,
            "maxAcquireCount": definition.lottery.max_winners or -1,
        }
    if usage_condition is None:
        usage_condition = (
            "1点のみ割引。値引きシール商品は対象外。" if definition.excludes_marked_down else "1点のみ割引。"
        )
        if definition.per_person_limit == 1:
            usage_condition = "お一人様1回限り。" + usage_condition
    return {
        "title": definition.title[:60],
        "acquisitionCondition": acquisition,
        "maxUseCountPerTicket": 1 if definition.per_person_limit == 1 else -1,
        "startTimestamp": int(definition.valid_from.timestamp()),
        "endTimestamp": int(definition.valid_until.timestamp()),
        "timezone": "ASIA_TOKYO",
        "reward": reward,
        "visibility": "UNLISTED",
        "usageCondition": usage_condition[:100],
    }


def describe_discount(definition: CouponDefinition) -> str:
    """What the member reads on the coupon page: 「30円引き」 / 「15%引き」 (one unit, R-CPN-4)."""
    return f"{definition.amount}円引き" if definition.kind == "yen" else f"{definition.amount}%引き"
