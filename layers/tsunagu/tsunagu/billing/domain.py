"""What a LINE Official Account costs in a month: plans, billable messages, graduated prices
for additional messages, plan changes, options, tax and an invoice (R-MSG-2, R-PLAN-1 ...
R-PLAN-6), plus LINE points on a monthly fee (R-PTS-1). Pure: no I/O, no pydantic.

Money is exact. Every line item is ``quantity x unit_price / divisor`` (divisor 30 for a
prorated option fee, R-PLAN-5, else 1); unit prices are Decimal yen (tier prices have one
decimal place), and line amounts are summed as exact fractions.

Rounding happens once per invoice, at the end, and nowhere else (no line, tier or prorated fee
is rounded): the exact sum of the lines is truncated to whole yen (the subtotal), and the 10 %
consumption tax on that subtotal is truncated to whole yen (the tax). Total = subtotal + tax.
Truncation (切り捨て) never charges a customer for a fraction of a yen.

Counts come in already aggregated (one integer per month and kind): no cost here depends on how
many messages were sent, only on how many tiers they span. docs/billing.md has the tables."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from itertools import pairwise
from types import MappingProxyType
from typing import Final

from tsunagu.billing import usage

TAX_RATE: Final = Decimal("0.10")  # R-PLAN-6: every price excludes Japan's 10 % consumption tax
PRORATION_DAYS: Final = 30  # R-PLAN-5: "monthly fee / 30 x days used", in every month
LIST_PRICE_LIMIT: Final = 10_000_000  # R-PLAN-2: beyond this many additional messages, by contract
POINTS_RATE_PERCENT: Final = 1  # R-PTS-1
POINTS_GRANT_DAY: Final = 10  # R-PTS-1: granted around the 10th of each month


class ContractPriceRequired(ValueError):
    """More than 10,000,000 additional messages in a month have no list price (R-PLAN-2)."""


class InvalidPlanChange(ValueError):
    """A plan history that breaks R-PLAN-3 (a downgrade taking effect mid-month)."""


# --- plans (R-PLAN-1) -------------------------------------------------------------------------


class Plan(StrEnum):
    """R-PLAN-1 (account settings use this enum too)."""

    COMMUNICATION = "communication"
    LIGHT = "light"
    STANDARD = "standard"


@dataclass(frozen=True, slots=True)
class PlanSpec:
    plan: Plan
    monthly_fee: Decimal
    free_messages: int
    additional_allowed: bool  # False: sending stops when the free messages are used up
    rank: int  # a higher rank is an upgrade (R-PLAN-3)


PLANS: Final = MappingProxyType(
    {
        Plan.COMMUNICATION: PlanSpec(Plan.COMMUNICATION, Decimal(0), 200, False, 0),
        Plan.LIGHT: PlanSpec(Plan.LIGHT, Decimal(5_000), 5_000, False, 1),
        Plan.STANDARD: PlanSpec(Plan.STANDARD, Decimal(15_000), 30_000, True, 2),
    }
)


def plan_spec(plan: Plan | str) -> PlanSpec:
    return PLANS[Plan(plan)]


def is_upgrade(old: Plan | str, new: Plan | str) -> bool:
    """R-PLAN-3: communication -> light/standard and light -> standard."""
    return plan_spec(new).rank > plan_spec(old).rank


# --- messages (R-MSG-2) -----------------------------------------------------------------------


class MessageKind(StrEnum):
    PUSH = "push"
    MULTICAST = "multicast"
    BROADCAST = "broadcast"  # OA Manager broadcasts (targeted too) and the Broadcast API
    NARROWCAST = "narrowcast"
    STEP = "step"
    REPLY = "reply"
    GREETING = "greeting"
    AUTO_RESPONSE = "auto_response"
    CHAT = "chat"  # 1:1 LINE chat, Chat Plus operators included (R-PLAN-5)
    NOTIFICATION = "notification"  # LINE notification messages: priced separately, not a plan message


# R-MSG-2: the messages counted against the plan's free messages and priced as additional ones.
# One source of truth: the usage ledger's vocabulary (``domain.usage``, light enough for senders).
BILLABLE_KINDS: Final = frozenset(MessageKind(k) for k in usage.BILLABLE_KINDS)


def is_billable(kind: MessageKind | str) -> bool:
    """R-MSG-2. An unknown kind is an error, not a free message."""
    return MessageKind(kind) in BILLABLE_KINDS


def billable_count(counts: Mapping[str, int] | Mapping[MessageKind, int]) -> int:
    """The billable messages among per-kind counts (R-MSG-2)."""
    total = 0
    for kind, n in counts.items():
        if n < 0:
            raise ValueError(f"negative count for {kind!r}")
        if is_billable(kind):
            total += n
    return total


def remaining_free(allowance: int, sent: int) -> int:
    """Free messages left this month (never negative)."""
    return max(0, allowance - sent)


# --- additional messages (R-PLAN-2) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tier:
    """Additional messages number ``first`` ... ``last`` of the month (1-based) cost ``unit_price`` each."""

    first: int
    last: int | None  # None: no upper end (the contract price beyond the list)
    unit_price: Decimal


# R-PLAN-2, as the source prints it: (last additional message of the tier, yen per message).
_TIER_TABLE: Final = (
    (50_000, "3.0"),
    (100_000, "2.8"),
    (200_000, "2.6"),
    (300_000, "2.4"),
    (400_000, "2.2"),
    (500_000, "2.0"),
    (600_000, "1.9"),
    (700_000, "1.8"),
    (800_000, "1.7"),
    (900_000, "1.6"),
    (1_000_000, "1.5"),
    (3_000_000, "1.4"),
    (5_000_000, "1.3"),
    (7_000_000, "1.2"),
    (LIST_PRICE_LIMIT, "1.1"),
)
TIERS: Final = tuple(
    Tier(prev + 1, last, Decimal(price))
    for prev, (last, price) in zip((0, *(t[0] for t in _TIER_TABLE)), _TIER_TABLE, strict=False)
)


@dataclass(frozen=True, slots=True)
class TierUsage:
    """The part of a run of additional messages that falls in one tier."""

    first: int
    last: int
    unit_price: Decimal

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    @property
    def amount(self) -> Decimal:
        return self.unit_price * self.count


def additional_message_breakdown(
    n: int, *, already: int = 0, contract_unit_price: Decimal | None = None
) -> tuple[TierUsage, ...]:
    """R-PLAN-2: additional messages ``already + 1`` ... ``already + n`` split by tier."""
    if n < 0 or already < 0:
        raise ValueError("message counts must be >= 0")
    lo, hi = already + 1, already + n
    tiers = TIERS
    if hi > LIST_PRICE_LIMIT:
        if contract_unit_price is None:
            raise ContractPriceRequired(f"{hi:,} additional messages: over {LIST_PRICE_LIMIT:,} is priced by contract")
        tiers += (Tier(LIST_PRICE_LIMIT + 1, None, contract_unit_price),)
    parts = []
    for t in tiers:
        a, b = max(lo, t.first), hi if t.last is None else min(hi, t.last)
        if a <= b:
            parts.append(TierUsage(a, b, t.unit_price))
    return tuple(parts)


def additional_message_cost(n: int, *, already: int = 0, contract_unit_price: Decimal | None = None) -> Decimal:
    """R-PLAN-2: the price of ``n`` additional messages, after ``already`` additional ones this
    month. Each message is priced by the tier its running count falls in: 200,000 -> 550,000."""
    parts = additional_message_breakdown(n, already=already, contract_unit_price=contract_unit_price)
    return sum((p.amount for p in parts), Decimal(0))


# --- months -----------------------------------------------------------------------------------

_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


def month_bounds(month: str) -> tuple[date, date]:
    """First and last day of ``YYYY-MM``."""
    m = _MONTH.fullmatch(month)
    if m is None:
        raise ValueError(f"not a month like 2026-05: {month!r}")
    first = date(int(m[1]), int(m[2]), 1)
    return first, _next_month(first) - timedelta(days=1)


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


# --- plan history (R-PLAN-3) ------------------------------------------------------------------


def _timeline(history: Iterable[tuple[date, Plan | str]]) -> list[tuple[date, Plan]]:
    """Sorted, one entry per day (the last one given for a day wins), repeats dropped, and
    checked against R-PLAN-3: a downgrade takes effect only on the 1st of a month."""
    by_day: dict[date, Plan] = {}
    for day, plan in history:
        by_day[day] = Plan(plan)
    out: list[tuple[date, Plan]] = []
    for day in sorted(by_day):
        plan = by_day[day]
        if out and out[-1][1] == plan:
            continue
        if out and day.day != 1 and not is_upgrade(out[-1][1], plan):
            raise InvalidPlanChange(
                f"{out[-1][1]} -> {plan} on {day}: a downgrade takes effect on the 1st of a month (R-PLAN-3)"
            )
        out.append((day, plan))
    return out


def plan_on(history: Iterable[tuple[date, Plan | str]], day: date) -> Plan | None:
    """The plan in force on ``day`` (None before the account's first plan)."""
    current = None
    for start, plan in _timeline(history):
        if start > day:
            break
        current = plan
    return current


def change_plan(history: Iterable[tuple[date, Plan | str]], on: date, plan: Plan | str) -> list[tuple[date, Plan]]:
    """R-PLAN-3: the history after the customer asks for ``plan`` on ``on``. An upgrade (or a
    first plan) takes effect that day, a downgrade on the 1st of next month. A request replaces
    any change still pending (taking effect after ``on``); asking for the current plan only
    cancels a pending one."""
    new = Plan(plan)
    kept = [(d, p) for d, p in _timeline(history) if d <= on]
    current = kept[-1][1] if kept else None
    if current is None or is_upgrade(current, new):
        kept.append((on, new))
    elif new != current:
        kept.append((_next_month(on), new))
    return kept


@dataclass(frozen=True, slots=True)
class PlanSegment:
    plan: Plan
    start: date
    end: date  # inclusive


@dataclass(frozen=True, slots=True)
class Upgrade:
    """R-PLAN-3: a mid-month upgrade charges the fee difference and grants the free-message
    difference; messages already sent this month still count."""

    on: date
    from_plan: Plan
    to_plan: Plan

    @property
    def fee_difference(self) -> Decimal:
        return plan_spec(self.to_plan).monthly_fee - plan_spec(self.from_plan).monthly_fee

    @property
    def free_difference(self) -> int:
        return plan_spec(self.to_plan).free_messages - plan_spec(self.from_plan).free_messages


@dataclass(frozen=True, slots=True)
class MonthPlan:
    """The plans in force in one month, and what they cost and allow.

    The base fee is that of the plan in force on the month's first day (or, for an account opened
    mid-month, of its first plan: plan fees are never prorated); each later change is an upgrade.
    """

    month: str
    segments: tuple[PlanSegment, ...]
    upgrades: tuple[Upgrade, ...]

    @property
    def base_plan(self) -> Plan | None:
        return self.segments[0].plan if self.segments else None

    @property
    def final_plan(self) -> Plan | None:
        return self.segments[-1].plan if self.segments else None

    @property
    def base_fee(self) -> Decimal:
        return plan_spec(self.base_plan).monthly_fee if self.base_plan else Decimal(0)

    @property
    def fees(self) -> Decimal:
        """Base fee plus every upgrade's fee difference (= the final plan's monthly fee)."""
        return self.base_fee + sum((u.fee_difference for u in self.upgrades), Decimal(0))

    @property
    def free_messages(self) -> int:
        """The month's free messages: the base plan's plus every upgrade's difference."""
        base = plan_spec(self.base_plan).free_messages if self.base_plan else 0
        return base + sum(u.free_difference for u in self.upgrades)

    @property
    def additional_allowed(self) -> bool:
        return self.final_plan is not None and plan_spec(self.final_plan).additional_allowed

    def plan_on(self, day: date) -> Plan | None:
        for s in self.segments:
            if s.start <= day <= s.end:
                return s.plan
        return None


def month_plan(history: Iterable[tuple[date, Plan | str]], month: str) -> MonthPlan:
    """R-PLAN-3: the plan segments in force in ``month`` (``YYYY-MM``) and the upgrades in it."""
    first, last = month_bounds(month)
    timeline = _timeline(history)
    starts: list[tuple[date, Plan]] = []
    for day, plan in timeline:
        if day <= first:
            starts = [(first, plan)]
        elif day <= last:
            starts.append((day, plan))
    segments = tuple(
        PlanSegment(plan, start, starts[i + 1][0] - timedelta(days=1) if i + 1 < len(starts) else last)
        for i, (start, plan) in enumerate(starts)
    )
    upgrades = tuple(Upgrade(b.start, a.plan, b.plan) for a, b in pairwise(segments))
    return MonthPlan(month, segments, upgrades)


# --- quota forecast ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Forecast:
    """What sending ``requested`` more billable messages on ``day`` would do."""

    day: date
    plan: Plan
    allowance: int  # the month's free messages as of ``day``
    sent_before: int  # billable messages already sent this month
    requested: int
    sendable: int  # capped plans (Communication, Light) stop at the allowance (R-PLAN-1)
    free: int  # of the sendable ones, within the free messages
    additional: int  # of the sendable ones, priced by R-PLAN-2
    cost: Decimal  # of those additional messages, tax excluded, exact

    @property
    def blocked(self) -> int:
        return self.requested - self.sendable

    @property
    def remaining_free_after(self) -> int:
        return remaining_free(self.allowance, self.sent_before + self.sendable)


def forecast(
    history: Iterable[tuple[date, Plan | str]],
    day: date,
    sent_this_month: int,
    n: int,
    *,
    contract_unit_price: Decimal | None = None,
) -> Forecast:
    """The cost and quota effect of ``n`` more billable messages on ``day`` (JST), given the
    month's billable count so far and the plan in force that day (R-PLAN-1 ... R-PLAN-3)."""
    if n < 0 or sent_this_month < 0:
        raise ValueError("message counts must be >= 0")
    mp = month_plan(history, month_of(day))
    plan = mp.plan_on(day)
    if plan is None:
        raise ValueError(f"no plan in force on {day}")
    upgrades = [u for u in mp.upgrades if u.on <= day]
    allowance = MonthPlan(mp.month, mp.segments, tuple(upgrades)).free_messages
    left = remaining_free(allowance, sent_this_month)
    free = min(n, left)
    if plan_spec(plan).additional_allowed:
        additional = n - free
        already = max(0, sent_this_month - allowance)
        cost = additional_message_cost(additional, already=already, contract_unit_price=contract_unit_price)
    else:
        additional, cost = 0, Decimal(0)
    return Forecast(day, plan, allowance, sent_this_month, n, free + additional, free, additional, cost)


# --- options (R-PLAN-4, R-PLAN-5) -------------------------------------------------------------


class Option(StrEnum):
    PREMIUM_ID = "premium_id"
    CHAT_PLUS = "chat_plus"
    CALL_PLUS = "call_plus"


PREMIUM_ID_MONTHLY: Final = Decimal(100)
PREMIUM_ID_YEARLY: Final = Decimal(1_200)
CHAT_PLUS_MONTHLY: Final = Decimal(200_000)
CHAT_PLUS_INITIAL: Final = Decimal(200_000)
CALL_PLUS_MONTHLY: Final = Decimal(100_000)
CALL_PLUS_PER_MINUTE: Final = Decimal(5)


@dataclass(frozen=True, slots=True)
class Subscription:
    """One contract for an option. ``end`` is the contract's last day (None: running)."""

    option: Option
    start: date
    end: date | None = None
    yearly: bool = False  # premium ID bought yearly (1,200 yen in the month it starts and renews)
    first_use: bool = True  # Chat Plus: the initial fee is charged only on the account's first use

    def __post_init__(self) -> None:
        if self.end is not None and self.end < self.start:
            raise ValueError("a subscription cannot end before it starts")
        if self.yearly and self.option is not Option.PREMIUM_ID:
            raise ValueError("only the premium ID is sold yearly")

    def active_in(self, first: date, last: date) -> bool:
        return self.start <= last and (self.end is None or self.end >= first)


def _anniversary(start: date, years: int) -> date:
    try:
        return start.replace(year=start.year + years)
    except ValueError:  # 29 February
        return date(start.year + years, 2, 28)


# --- invoice ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineItem:
    """``amount = quantity x unit_price / divisor``; divisor 30 only for a prorated fee (R-PLAN-5)."""

    description: str
    quantity: int
    unit_price: Decimal
    divisor: int = 1

    @property
    def exact_amount(self) -> Fraction:
        return Fraction(self.unit_price) * self.quantity / self.divisor

    @property
    def amount(self) -> Decimal:
        """Exact, except a prorated fee whose exact value (``exact_amount``) has no finite
        decimal form: that one is shown to 28 significant digits and never summed."""
        if self.divisor == 1:
            return self.unit_price * self.quantity
        return self.unit_price * self.quantity / self.divisor


@dataclass(frozen=True, slots=True)
class LateUsage:
    """Billable messages of an already invoiced month that were counted after it closed."""

    month: str
    invoiced: int  # billable messages that month's invoice counted
    late: int  # billable messages found since


@dataclass(frozen=True, slots=True)
class Invoice:
    month: str
    plan: MonthPlan
    lines: tuple[LineItem, ...]
    billable_messages: int
    additional_messages: int
    over_quota: int  # messages past a capped plan's free messages (this month's and late ones): not charged
    subtotal: Decimal  # whole yen, tax excluded
    tax: Decimal  # whole yen
    total: Decimal  # whole yen, tax included

    @property
    def free_messages(self) -> int:
        return self.plan.free_messages

    @property
    def exact_subtotal(self) -> Fraction:
        return sum((li.exact_amount for li in self.lines), Fraction(0))


def round_invoice(exact_subtotal: Fraction) -> tuple[Decimal, Decimal, Decimal]:
    """The invoice's one rounding step: (subtotal, tax, total) in whole yen, both truncated."""
    if exact_subtotal < 0:
        raise ValueError("an invoice cannot be negative")
    subtotal = math.floor(exact_subtotal)
    tax = math.floor(subtotal * Fraction(TAX_RATE))
    return Decimal(subtotal), Decimal(tax), Decimal(subtotal + tax)


def _message_lines(label: str, parts: Iterable[TierUsage]) -> list[LineItem]:
    return [LineItem(f"{label} {p.first:,}-{p.last:,}", p.count, p.unit_price) for p in parts]


def _plan_lines(mp: MonthPlan) -> list[LineItem]:
    lines = []
    if mp.base_plan is not None:
        lines.append(LineItem(f"{mp.base_plan} plan, {mp.month}", 1, plan_spec(mp.base_plan).monthly_fee))
    for u in mp.upgrades:
        lines.append(LineItem(f"upgrade {u.from_plan} -> {u.to_plan} on {u.on}: fee difference", 1, u.fee_difference))
    return lines


def overlapping_option(subs: Sequence[Subscription]) -> Option | None:
    """The first option with two subscriptions whose periods overlap, if any."""
    by_option: dict[Option, list[Subscription]] = {}
    for s in subs:
        by_option.setdefault(s.option, []).append(s)
    for group in by_option.values():
        group.sort(key=lambda s: s.start)
        for a, b in pairwise(group):
            if a.end is None or a.end >= b.start:
                return a.option
    return None


def _option_lines(subs: Sequence[Subscription], first: date, last: date) -> list[LineItem]:
    if (overlap := overlapping_option(subs)) is not None:
        raise ValueError(f"overlapping {overlap} subscriptions")
    lines = []
    for s in sorted(subs, key=lambda s: (list(Option).index(s.option), s.start)):
        if not s.active_in(first, last):
            continue
        if s.option is Option.PREMIUM_ID:
            lines.extend(_premium_id_lines(s, first))
            continue
        fee = CHAT_PLUS_MONTHLY if s.option is Option.CHAT_PLUS else CALL_PLUS_MONTHLY
        name = "Chat Plus" if s.option is Option.CHAT_PLUS else "Call Plus"
        if first < s.start:  # R-PLAN-5: starts on the 2nd or later -> fee / 30 x days used
            days = last.day - s.start.day + 1
            lines.append(LineItem(f"{name} monthly fee, from {s.start}: {days}/{PRORATION_DAYS} days", days, fee, 30))
        else:  # a full month, the month it starts on the 1st, and the month it ends in (no proration)
            lines.append(LineItem(f"{name} monthly fee", 1, fee))
        if s.option is Option.CHAT_PLUS and s.first_use and first <= s.start:
            lines.append(LineItem("Chat Plus initial fee (first use)", 1, CHAT_PLUS_INITIAL))
    return lines


def _premium_id_lines(s: Subscription, first: date) -> list[LineItem]:
    if not s.yearly:
        return [LineItem("premium ID (monthly)", 1, PREMIUM_ID_MONTHLY)]
    months = (first.year - s.start.year) * 12 + first.month - s.start.month
    if months % 12 == 0:
        renewal = _anniversary(s.start, months // 12)
        if s.end is None or renewal <= s.end:
            label = "premium ID (yearly)" if months == 0 else f"premium ID (yearly, renewed {renewal})"
            return [LineItem(label, 1, PREMIUM_ID_YEARLY)]
    return []


def compute_invoice(
    month: str,
    history: Iterable[tuple[date, Plan | str]],
    messages: int | Mapping[str, int] | Mapping[MessageKind, int] = 0,
    *,
    options: Iterable[Subscription] = (),
    call_minutes: int = 0,
    adjustments: Iterable[LateUsage] = (),
    contract_unit_price: Decimal | None = None,
) -> Invoice:
    """The invoice for ``month`` (``YYYY-MM``).

    ``messages`` is the month's billable count, or per-kind counts (non-billable kinds are
    ignored, R-MSG-2). ``call_minutes`` are Call Plus minutes (5 yen each). ``adjustments``
    bill late usage of closed months at the price it would have had in its own month."""
    first, last = month_bounds(month)
    history = list(history)
    sent = messages if isinstance(messages, int) else billable_count(messages)
    if sent < 0 or call_minutes < 0:
        raise ValueError("counts must be >= 0")
    mp = month_plan(history, month)
    lines = _plan_lines(mp)
    allowance = mp.free_messages
    over_quota = 0
    additional = 0
    if mp.additional_allowed:
        additional = max(0, sent - allowance)
        parts = additional_message_breakdown(additional, contract_unit_price=contract_unit_price)
        lines += _message_lines("additional messages", parts)
    else:
        over_quota += max(0, sent - allowance)
    for adj in adjustments:
        if adj.invoiced < 0 or adj.late < 0:
            raise ValueError("counts must be >= 0")
        if month_bounds(adj.month)[0] >= first:
            raise ValueError(f"late usage must belong to a month before {month}: {adj.month}")
        closed = month_plan(history, adj.month)
        before, after = adj.invoiced - closed.free_messages, adj.invoiced + adj.late - closed.free_messages
        if closed.additional_allowed:
            parts = additional_message_breakdown(
                max(0, after) - max(0, before), already=max(0, before), contract_unit_price=contract_unit_price
            )
            lines += _message_lines(f"late usage {adj.month}: additional messages", parts)
        else:
            over_quota += max(0, after) - max(0, before)
    lines += _option_lines(list(options), first, last)
    if call_minutes:
        lines.append(LineItem("Call Plus calls (minutes)", call_minutes, CALL_PLUS_PER_MINUTE))
    items = tuple(lines)
    subtotal, tax, total = round_invoice(sum((li.exact_amount for li in items), Fraction(0)))
    return Invoice(month, mp, items, sent, additional, over_quota, subtotal, tax, total)


# --- points (R-PTS-1) -------------------------------------------------------------------------


def points_for(monthly_base_fee_yen: int) -> int:
    """R-PTS-1: LINE points (1 point = 1 yen) for a contractor-linked customer: 1 % of the monthly
    base fee, fractions of a point dropped (points are whole; the source gives no rounding, and
    truncation never grants a point that was not earned)."""
    if monthly_base_fee_yen < 0:
        raise ValueError("a fee cannot be negative")
    return math.floor(Fraction(monthly_base_fee_yen) * POINTS_RATE_PERCENT / 100)
