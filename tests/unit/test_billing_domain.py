"""Billing rules: plans (R-PLAN-1), billable kinds (R-MSG-2), graduated additional-message prices
(R-PLAN-2), plan changes (R-PLAN-3), options and proration (R-PLAN-4, R-PLAN-5), tax (R-PLAN-6),
late usage, quota forecasts and LINE points (R-PTS-1)."""

import math
from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest

from tsunagu.billing.domain import (
    BILLABLE_KINDS,
    PLANS,
    TIERS,
    ContractPriceRequired,
    InvalidPlanChange,
    LateUsage,
    LineItem,
    MessageKind,
    Option,
    Plan,
    Subscription,
    additional_message_breakdown,
    additional_message_cost,
    billable_count,
    change_plan,
    compute_invoice,
    forecast,
    is_billable,
    month_bounds,
    month_plan,
    plan_on,
    points_for,
    remaining_free,
    round_invoice,
)

C, L, S = Plan.COMMUNICATION, Plan.LIGHT, Plan.STANDARD


def d(s: str) -> date:
    return date.fromisoformat(s)


def amounts(invoice) -> dict[str, Fraction]:
    return {li.description: li.exact_amount for li in invoice.lines}


# --- R-PLAN-1 / R-MSG-2 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "fee", "free", "additional"),
    [(C, 0, 200, False), (L, 5_000, 5_000, False), (S, 15_000, 30_000, True)],
)
def test_r_plan_1_plans(plan, fee, free, additional):
    spec = PLANS[plan]
    assert (spec.monthly_fee, spec.free_messages, spec.additional_allowed) == (Decimal(fee), free, additional)


@pytest.mark.parametrize(
    ("kind", "billable"),
    [
        ("push", True),
        ("multicast", True),
        ("broadcast", True),
        ("narrowcast", True),
        ("step", True),
        ("reply", False),
        ("greeting", False),
        ("auto_response", False),
        ("chat", False),
        ("notification", False),
    ],
)
def test_r_msg_2_billable_kinds(kind, billable):
    assert is_billable(kind) is billable
    assert is_billable(MessageKind(kind)) is billable


def test_r_msg_2_every_kind_is_classified_and_unknown_ones_refuse():
    assert len(MessageKind) == 10
    assert BILLABLE_KINDS < set(MessageKind)
    with pytest.raises(ValueError):
        is_billable("sms")
    assert billable_count({"push": 10, "reply": 1_000, "broadcast": 5, "chat": 7}) == 15
    with pytest.raises(ValueError):
        billable_count({"push": -1})


@pytest.mark.parametrize(("allowance", "sent", "left"), [(200, 0, 200), (200, 199, 1), (200, 200, 0), (200, 250, 0)])
def test_remaining_free(allowance, sent, left):
    assert remaining_free(allowance, sent) == left


# --- R-PLAN-2 -----------------------------------------------------------------------------------

# Cost of the first n additional messages at each upper tier boundary, worked by hand from the table.
CUMULATIVE = [
    (50_000, "150000", "2.8"),
    (100_000, "290000", "2.6"),
    (200_000, "550000", "2.4"),
    (300_000, "790000", "2.2"),
    (400_000, "1010000", "2.0"),
    (500_000, "1210000", "1.9"),
    (600_000, "1400000", "1.8"),
    (700_000, "1580000", "1.7"),
    (800_000, "1750000", "1.6"),
    (900_000, "1910000", "1.5"),
    (1_000_000, "2060000", "1.4"),
    (3_000_000, "4860000", "1.3"),
    (5_000_000, "7460000", "1.2"),
    (7_000_000, "9860000", "1.1"),
]


def test_r_plan_2_source_example_200000_is_550000_yen():
    assert additional_message_cost(200_000) == Decimal(550_000)


@pytest.mark.parametrize(
    ("n", "cost"),
    [(0, "0"), (1, "3.0"), (2, "6.0"), (49_999, "149997")]
    + [(b, total) for b, total, _ in CUMULATIVE]
    + [(b + 1, str(Decimal(total) + Decimal(nxt))) for b, total, nxt in CUMULATIVE]
    + [(b - 1, str(Decimal(total) - TIERS[i].unit_price)) for i, (b, total, _) in enumerate(CUMULATIVE)]
    + [(10_000_000, "13160000"), (9_999_999, "13159998.9")],
)
def test_r_plan_2_every_tier_boundary_is_exact(n, cost):
    assert additional_message_cost(n) == Decimal(cost)


# The source's "配信単価 (目安)" column: the average price at each tier's top, printed to 2 places.
AVERAGE_COLUMN = [
    (50_000, "3.00"),
    (100_000, "2.90"),
    (200_000, "2.75"),
    (300_000, "2.63"),
    (400_000, "2.53"),
    (500_000, "2.42"),
    (600_000, "2.33"),
    (700_000, "2.26"),
    (800_000, "2.19"),
    (900_000, "2.12"),
    (1_000_000, "2.06"),
    (3_000_000, "1.62"),
    (5_000_000, "1.49"),
    (7_000_000, "1.40"),
    (10_000_000, "1.31"),
]


@pytest.mark.parametrize(("n", "average"), AVERAGE_COLUMN)
def test_r_plan_2_agrees_with_the_sources_average_price_column(n, average):
    # The source rounds that column inconsistently (2.525 -> 2.53 but 1.4086 -> 1.40): within a sen.
    assert abs(additional_message_cost(n) / n - Decimal(average)) < Decimal("0.01")


@pytest.mark.parametrize(
    ("n", "already"),
    [(1, 0), (1, 50_000), (2, 49_999), (150_000, 40_000), (2_500_000, 999_999), (3, 9_999_997), (123_457, 654_321)],
)
def test_r_plan_2_marginal_cost_continues_the_running_count(n, already):
    assert additional_message_cost(n, already=already) == additional_message_cost(
        n + already
    ) - additional_message_cost(already)


def test_r_plan_2_breakdown_is_per_tier_not_per_message():
    parts = additional_message_breakdown(10_000_000)
    assert len(parts) == 15
    assert [(p.first, p.last, p.unit_price) for p in parts[:2]] == [
        (1, 50_000, Decimal("3.0")),
        (50_001, 100_000, Decimal("2.8")),
    ]
    assert sum(p.count for p in parts) == 10_000_000
    assert [(p.first, p.last, p.unit_price) for p in additional_message_breakdown(2, already=49_999)] == [
        (50_000, 50_000, Decimal("3.0")),
        (50_001, 50_001, Decimal("2.8")),
    ]


def test_r_plan_2_over_10_million_is_priced_by_contract():
    with pytest.raises(ContractPriceRequired):
        additional_message_cost(10_000_001)
    assert additional_message_cost(10_000_002, contract_unit_price=Decimal("0.9")) == Decimal("13160001.8")
    with pytest.raises(ValueError):
        additional_message_cost(-1)


# --- R-PLAN-3 -----------------------------------------------------------------------------------

HISTORY = [(d("2024-01-10"), C), (d("2024-03-01"), L), (d("2024-05-15"), S), (d("2024-08-01"), C)]


@pytest.mark.parametrize(
    ("day", "plan"),
    [
        ("2024-01-09", None),
        ("2024-01-10", C),
        ("2024-02-29", C),
        ("2024-03-01", L),
        ("2024-05-14", L),
        ("2024-05-15", S),
        ("2024-07-31", S),
        ("2024-08-01", C),
        ("2030-01-01", C),
    ],
)
def test_r_plan_3_plan_on(day, plan):
    assert plan_on(HISTORY, d(day)) == plan
    assert plan_on(reversed(HISTORY), d(day)) == plan


@pytest.mark.parametrize(
    ("old", "new", "fees", "free"),
    [(C, L, 5_000, 5_000), (C, S, 15_000, 30_000), (L, S, 15_000, 30_000)],
)
def test_r_plan_3_every_upgrade_takes_effect_mid_month(old, new, fees, free):
    history = change_plan([(d("2024-04-01"), old)], d("2024-05-17"), new)
    assert history == [(d("2024-04-01"), old), (d("2024-05-17"), new)]
    mp = month_plan(history, "2024-05")
    assert [(s.plan, s.start, s.end) for s in mp.segments] == [
        (old, d("2024-05-01"), d("2024-05-16")),
        (new, d("2024-05-17"), d("2024-05-31")),
    ]
    assert mp.base_fee == PLANS[old].monthly_fee
    assert mp.fees == Decimal(fees)  # base fee + the difference
    assert mp.free_messages == free  # the old allowance + the difference
    assert [(u.from_plan, u.to_plan, u.fee_difference) for u in mp.upgrades] == [
        (old, new, PLANS[new].monthly_fee - PLANS[old].monthly_fee)
    ]
    assert month_plan(history, "2024-06").fees == PLANS[new].monthly_fee
    assert month_plan(history, "2024-06").upgrades == ()


@pytest.mark.parametrize(("old", "new"), [(L, C), (S, L), (S, C)])
def test_r_plan_3_every_downgrade_takes_effect_next_month(old, new):
    history = change_plan([(d("2024-04-01"), old)], d("2024-05-17"), new)
    assert history == [(d("2024-04-01"), old), (d("2024-06-01"), new)]
    assert month_plan(history, "2024-05").final_plan == old
    assert month_plan(history, "2024-05").fees == PLANS[old].monthly_fee
    assert month_plan(history, "2024-06").base_plan == new
    assert month_plan(history, "2024-06").fees == PLANS[new].monthly_fee
    with pytest.raises(InvalidPlanChange):
        month_plan([(d("2024-04-01"), old), (d("2024-05-17"), new)], "2024-05")


def test_r_plan_3_downgrade_requested_on_the_last_day_of_december():
    assert change_plan([(d("2024-01-01"), S)], d("2024-12-31"), L)[-1] == (d("2025-01-01"), L)


def test_r_plan_3_a_new_request_replaces_a_pending_downgrade():
    pending = change_plan([(d("2024-04-01"), S)], d("2024-05-10"), C)
    assert change_plan(pending, d("2024-05-20"), S) == [(d("2024-04-01"), S)]  # cancelled
    assert change_plan(pending, d("2024-05-20"), L) == [(d("2024-04-01"), S), (d("2024-06-01"), L)]
    light = change_plan([(d("2024-04-01"), L)], d("2024-05-10"), C)
    assert change_plan(light, d("2024-05-20"), S) == [(d("2024-04-01"), L), (d("2024-05-20"), S)]


def test_r_plan_3_two_upgrades_in_one_month():
    history = [(d("2024-04-01"), C), (d("2024-05-10"), L), (d("2024-05-20"), S)]
    mp = month_plan(history, "2024-05")
    assert [u.fee_difference for u in mp.upgrades] == [Decimal(5_000), Decimal(10_000)]
    assert (mp.fees, mp.free_messages) == (Decimal(15_000), 30_000)
    assert mp.plan_on(d("2024-05-15")) == L


def test_r_plan_3_account_opened_mid_month_and_months_without_a_plan():
    history = [(d("2024-05-20"), L)]
    mp = month_plan(history, "2024-05")
    assert [(s.start, s.end) for s in mp.segments] == [(d("2024-05-20"), d("2024-05-31"))]
    assert (mp.fees, mp.free_messages, mp.upgrades) == (Decimal(5_000), 5_000, ())  # plan fees are not prorated
    empty = month_plan(history, "2024-04")
    assert (empty.segments, empty.fees, empty.free_messages, empty.base_plan) == ((), Decimal(0), 0, None)


def test_r_plan_3_change_on_the_first_is_the_months_plan_not_an_upgrade():
    mp = month_plan([(d("2024-04-10"), C), (d("2024-05-01"), S)], "2024-05")
    assert (mp.base_plan, mp.upgrades, mp.fees) == (S, (), Decimal(15_000))


def test_months_are_validated():
    assert month_bounds("2024-02") == (d("2024-02-01"), d("2024-02-29"))
    assert month_bounds("2023-12") == (d("2023-12-01"), d("2023-12-31"))
    for bad in ("2024-13", "2024-5", "24-05", "2024-05-01"):
        with pytest.raises(ValueError):
            month_bounds(bad)


# --- invoices: plans and messages ---------------------------------------------------------------


def test_invoice_standard_with_additional_messages_and_tax():
    inv = compute_invoice("2024-06", [(d("2024-01-01"), S)], 30_000 + 50_001)
    assert inv.additional_messages == 50_001
    assert [(li.quantity, li.unit_price) for li in inv.lines] == [
        (1, Decimal(15_000)),
        (50_000, Decimal("3.0")),
        (1, Decimal("2.8")),
    ]
    assert inv.exact_subtotal == Fraction("165002.8")
    assert (inv.subtotal, inv.tax, inv.total) == (Decimal(165_002), Decimal(16_500), Decimal(181_502))


@pytest.mark.parametrize(
    ("sent", "over"),
    [(0, 0), (200, 0), (201, 1), (5_000, 4_800)],
)
def test_invoice_capped_plan_never_charges_past_the_free_messages(sent, over):
    inv = compute_invoice("2024-06", [(d("2024-01-01"), C)], sent)
    assert (inv.total, inv.additional_messages, inv.over_quota) == (Decimal(0), 0, over)


def test_invoice_counts_only_billable_kinds():
    inv = compute_invoice("2024-06", [(d("2024-01-01"), S)], {"push": 30_000, "reply": 99_999, "step": 10})
    assert (inv.billable_messages, inv.additional_messages, inv.subtotal) == (30_010, 10, Decimal(15_030))


def test_r_plan_3_upgrade_invoice_keeps_messages_already_sent():
    # 5,000 sent on Light, then upgraded to Standard on the 20th and 26,000 more sent: 31,000 in all.
    history = [(d("2024-01-01"), L), (d("2024-05-20"), S)]
    inv = compute_invoice("2024-05", history, 31_000)
    assert [(li.description, li.exact_amount) for li in inv.lines] == [
        ("light plan, 2024-05", 5_000),
        ("upgrade light -> standard on 2024-05-20: fee difference", 10_000),
        ("additional messages 1-1,000", 3_000),
    ]
    assert (inv.free_messages, inv.subtotal, inv.tax, inv.total) == (30_000, 18_000, 1_800, 19_800)


def test_r_plan_3_downgrade_mid_month_invoice():
    history = change_plan([(d("2024-01-01"), S)], d("2024-05-17"), C)
    may = compute_invoice("2024-05", history, 31_000)
    june = compute_invoice("2024-06", history, 250)
    assert (may.subtotal, may.additional_messages) == (Decimal(18_000), 1_000)
    assert (june.subtotal, june.over_quota, june.free_messages) == (Decimal(0), 50, 200)


# --- R-PLAN-4 / R-PLAN-5: options and proration -------------------------------------------------

BASE = [(d("2020-01-01"), C)]  # a free plan, so an invoice's subtotal is its options alone


@pytest.mark.parametrize(
    ("option", "start", "month", "expected"),
    [
        # Starting on the 1st: the full fee, whatever the month's length.
        (Option.CALL_PLUS, "2024-05-01", "2024-05", 100_000),
        (Option.CALL_PLUS, "2023-02-01", "2023-02", 100_000),
        # From the 2nd: fee / 30 x days used, in every month.
        (Option.CALL_PLUS, "2024-05-02", "2024-05", Fraction(100_000 * 30, 30)),  # 31-day month: 30 days
        (Option.CALL_PLUS, "2024-06-02", "2024-06", Fraction(100_000 * 29, 30)),  # 30-day month
        (Option.CALL_PLUS, "2023-02-02", "2023-02", Fraction(100_000 * 27, 30)),  # 28-day month
        (Option.CALL_PLUS, "2024-02-02", "2024-02", Fraction(100_000 * 28, 30)),  # leap February
        (Option.CALL_PLUS, "2024-05-31", "2024-05", Fraction(100_000, 30)),
        (Option.CHAT_PLUS, "2024-05-15", "2024-05", Fraction(200_000 * 17, 30)),
        (Option.CHAT_PLUS, "2023-02-15", "2023-02", Fraction(200_000 * 14, 30)),
        # Months after the start: full.
        (Option.CALL_PLUS, "2024-05-20", "2024-06", 100_000),
        (Option.CHAT_PLUS, "2024-01-31", "2024-02", 200_000),
    ],
)
def test_r_plan_5_monthly_fee_and_proration(option, start, month, expected):
    sub = Subscription(option, d(start), first_use=False)
    inv = compute_invoice(month, BASE, options=[sub])
    assert inv.exact_subtotal == expected
    assert inv.subtotal == math.floor(expected)


def test_r_plan_5_prorated_line_is_days_over_30():
    inv = compute_invoice("2024-05", BASE, options=[Subscription(Option.CHAT_PLUS, d("2024-05-15"), first_use=False)])
    (line,) = inv.lines[1:]
    assert (line.quantity, line.unit_price, line.divisor) == (17, Decimal(200_000), 30)
    assert line.exact_amount == Fraction(340_000, 3)
    assert line.amount.quantize(Decimal("0.01")) == Decimal("113333.33")


@pytest.mark.parametrize(
    ("month", "expected"),
    [
        ("2024-04", 0),
        ("2024-05", Fraction(100_000 * 22, 30)),  # started 5/10
        ("2024-06", 100_000),
        ("2024-07", 100_000),  # ends 7/3: no proration, the fee runs to the end of July
        ("2024-08", 0),
    ],
)
def test_r_plan_5_cancellation_is_not_prorated(month, expected):
    sub = Subscription(Option.CALL_PLUS, d("2024-05-10"), end=d("2024-07-03"))
    assert compute_invoice(month, BASE, options=[sub]).exact_subtotal == expected


def test_r_plan_5_start_and_cancel_in_the_same_month():
    sub = Subscription(Option.CALL_PLUS, d("2024-05-10"), end=d("2024-05-12"))
    assert compute_invoice("2024-05", BASE, options=[sub]).exact_subtotal == Fraction(100_000 * 22, 30)


@pytest.mark.parametrize(
    ("first_use", "month", "expected"),
    [
        (True, "2024-05", 400_000),  # monthly + initial
        (True, "2024-06", 200_000),
        (False, "2024-05", 200_000),  # used before: no initial fee
    ],
)
def test_r_plan_5_chat_plus_initial_fee_on_first_use_only(first_use, month, expected):
    sub = Subscription(Option.CHAT_PLUS, d("2024-05-01"), first_use=first_use)
    assert compute_invoice(month, BASE, options=[sub]).exact_subtotal == expected


def test_r_plan_5_call_plus_minutes():
    sub = Subscription(Option.CALL_PLUS, d("2024-01-01"))
    inv = compute_invoice("2024-05", BASE, options=[sub], call_minutes=1_234)
    assert amounts(inv)["Call Plus calls (minutes)"] == 6_170
    assert inv.subtotal == Decimal(106_170)


@pytest.mark.parametrize(
    ("sub", "charged"),
    [
        (Subscription(Option.PREMIUM_ID, d("2024-03-20")), {"2024-03": 100, "2024-04": 100, "2025-03": 100}),
        (
            Subscription(Option.PREMIUM_ID, d("2024-03-20"), end=d("2024-04-02")),
            {"2024-02": 0, "2024-03": 100, "2024-04": 100, "2024-05": 0},
        ),
        (
            Subscription(Option.PREMIUM_ID, d("2024-03-20"), yearly=True),
            {"2024-02": 0, "2024-03": 1_200, "2024-04": 0, "2025-02": 0, "2025-03": 1_200, "2026-03": 1_200},
        ),
        (  # cancelled before the renewal date: not renewed
            Subscription(Option.PREMIUM_ID, d("2024-03-20"), end=d("2025-03-19"), yearly=True),
            {"2024-03": 1_200, "2025-03": 0},
        ),
        (
            Subscription(Option.PREMIUM_ID, d("2024-02-29"), yearly=True),
            {"2024-02": 1_200, "2025-02": 1_200, "2025-03": 0},
        ),
    ],
)
def test_r_plan_4_premium_id(sub, charged):
    for month, expected in charged.items():
        assert compute_invoice(month, BASE, options=[sub]).exact_subtotal == expected, month


def test_options_are_validated():
    with pytest.raises(ValueError):
        Subscription(Option.CHAT_PLUS, d("2024-05-10"), end=d("2024-05-09"))
    with pytest.raises(ValueError):
        Subscription(Option.CALL_PLUS, d("2024-05-10"), yearly=True)
    overlapping = [Subscription(Option.CALL_PLUS, d("2024-01-01")), Subscription(Option.CALL_PLUS, d("2024-05-01"))]
    with pytest.raises(ValueError, match="overlapping"):
        compute_invoice("2024-05", BASE, options=overlapping)


# --- R-PLAN-6: one rounding per invoice ---------------------------------------------------------


@pytest.mark.parametrize(
    ("exact", "subtotal", "tax", "total"),
    [
        (Fraction(0), 0, 0, 0),
        (Fraction(15_000), 15_000, 1_500, 16_500),
        (Fraction(15_009), 15_009, 1_500, 16_509),  # tax 1,500.9 -> 1,500
        (Fraction("165002.8"), 165_002, 16_500, 181_502),
        (Fraction(340_000, 3), 113_333, 11_333, 124_666),
    ],
)
def test_r_plan_6_tax_is_10_percent_truncated_once(exact, subtotal, tax, total):
    assert round_invoice(exact) == (Decimal(subtotal), Decimal(tax), Decimal(total))


def test_r_plan_6_lines_are_never_rounded_before_the_sum():
    # Chat Plus and Call Plus both from the 31st: 200,000/30 + 100,000/30 = 6,666.67 + 3,333.33 = exactly
    # 10,000 (rounding each line down first would give 9,999).
    subs = [
        Subscription(Option.CHAT_PLUS, d("2024-05-31"), first_use=False),
        Subscription(Option.CALL_PLUS, d("2024-05-31")),
    ]
    inv = compute_invoice("2024-05", [(d("2024-01-01"), S)], 30_001, options=subs)
    # 15,000 + 3.0 + 10,000
    assert (inv.subtotal, inv.tax, inv.total) == (Decimal(25_003), Decimal(2_500), Decimal(27_503))
    assert inv.subtotal == math.floor(sum(li.exact_amount for li in inv.lines))


def test_line_item_amounts_are_exact_decimals():
    assert LineItem("x", 50_001, Decimal("2.8")).amount == Decimal("140002.8")
    assert LineItem("x", 15, Decimal(200_000), 30).amount == Decimal(100_000)


# --- late usage ---------------------------------------------------------------------------------


def test_late_usage_is_priced_in_its_own_month():
    # April on Standard closed at 80,000 billable (50,000 additional); 10 more turn up in May, when the
    # account is on Light: they cost what they would have cost in April, at the 2.8 tier.
    history = [(d("2024-01-01"), S), (d("2024-05-01"), L)]
    inv = compute_invoice("2024-05", history, 100, adjustments=[LateUsage("2024-04", 80_000, 10)])
    assert amounts(inv)["late usage 2024-04: additional messages 50,001-50,010"] == 28
    assert inv.exact_subtotal == 5_028


@pytest.mark.parametrize(
    ("invoiced", "late", "expected"),
    [
        (29_000, 500, 0),  # still within April's free messages
        (29_999, 3, Fraction(6)),  # 2 additional at 3.0
        (79_999, 2, Fraction("5.8")),  # one at 3.0, one at 2.8
        (30_000, 0, 0),
    ],
)
def test_late_usage_across_the_free_allowance_and_tiers(invoiced, late, expected):
    inv = compute_invoice("2024-05", [(d("2024-01-01"), S)], 0, adjustments=[LateUsage("2024-04", invoiced, late)])
    assert inv.exact_subtotal - 15_000 == expected


def test_late_usage_on_a_capped_month_is_flagged_not_charged():
    inv = compute_invoice("2024-05", [(d("2024-01-01"), L)], 0, adjustments=[LateUsage("2024-04", 4_990, 30)])
    assert (inv.subtotal, inv.over_quota) == (Decimal(5_000), 20)


def test_late_usage_must_be_from_a_closed_month():
    with pytest.raises(ValueError, match="before"):
        compute_invoice("2024-05", [(d("2024-01-01"), S)], adjustments=[LateUsage("2024-05", 0, 1)])


# --- forecast -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("history", "day", "sent", "n", "sendable", "additional", "cost", "left_after"),
    [
        ([(d("2024-01-01"), C)], "2024-05-10", 190, 20, 10, 0, "0", 0),  # capped: 10 blocked
        ([(d("2024-01-01"), C)], "2024-05-10", 200, 5, 0, 0, "0", 0),
        ([(d("2024-01-01"), L)], "2024-05-10", 0, 5_000, 5_000, 0, "0", 0),
        ([(d("2024-01-01"), L)], "2024-05-10", 4_000, 500, 500, 0, "0", 500),
        # The upgrade on the 15th grants the difference; what was sent before it still counts.
        ([(d("2024-01-01"), C), (d("2024-05-15"), L)], "2024-05-14", 150, 100, 50, 0, "0", 0),
        ([(d("2024-01-01"), C), (d("2024-05-15"), L)], "2024-05-15", 150, 100, 100, 0, "0", 4_750),
        ([(d("2024-01-01"), L), (d("2024-05-15"), S)], "2024-05-20", 4_990, 25_020, 25_020, 10, "30", 0),
        ([(d("2024-01-01"), S)], "2024-05-10", 29_990, 20, 20, 10, "30", 0),
        ([(d("2024-01-01"), S)], "2024-05-10", 80_000, 1, 1, 1, "2.8", 0),
        ([(d("2024-01-01"), S)], "2024-05-10", 129_999, 2, 2, 2, "5.4", 0),  # additional no. 100,000 and 100,001
    ],
)
def test_forecast(history, day, sent, n, sendable, additional, cost, left_after):
    f = forecast(history, d(day), sent, n)
    assert (f.sendable, f.blocked, f.additional, f.cost) == (sendable, n - sendable, additional, Decimal(cost))
    assert f.free == sendable - additional
    assert f.remaining_free_after == left_after


def test_forecast_needs_a_plan():
    with pytest.raises(ValueError, match="no plan"):
        forecast([(d("2024-06-01"), S)], d("2024-05-10"), 0, 1)


# --- R-PTS-1 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fee", "points"),
    [(0, 0), (99, 0), (100, 1), (199, 1), (1_200, 12), (1_690, 16), (5_000, 50), (15_000, 150)],
)
def test_r_pts_1_points_are_1_percent_truncated(fee, points):
    assert points_for(fee) == points


def test_r_pts_1_negative_fee_refuses():
    with pytest.raises(ValueError):
        points_for(-1)
