"""Coupon rules (R-CPN-2 ... R-CPN-7, R-LINK-7): which unit a coupon discounts, refusals,
lottery draws, rotating redemption codes and LINE Login ID tokens."""

import base64
import hmac
import json
import random
import secrets
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from tsunagu.coupons import domain as c
from tsunagu.coupons.domain import (
    JST,
    BasketLine,
    CouponDefinition,
    IdTokenError,
    Lottery,
    check_code,
    draw,
    evaluate,
    issue_code,
    jst_days,
    sign_id_token,
    verify_code,
    verify_id_token,
)

FROM, UNTIL = jst_days(date(2026, 11, 1), date(2026, 11, 30))
NOW = datetime(2026, 11, 15, 12, 0, tzinfo=JST)


def coupon(**kw):
    base = {
        "coupon_id": "C1",
        "title": "おにぎり100円引き",
        "kind": "yen",
        "amount": 100,
        "valid_from": FROM,
        "valid_until": UNTIL,
        "eligible_items": frozenset({"ONIGIRI", "BENTO", "TEA"}),
    }
    base.update(kw)
    return CouponDefinition(**base)


def line(code, price, qty=1, *, category=None, marked_down=False):
    return BasketLine(item_code=code, quantity=qty, unit_price=price, category=category, marked_down=marked_down)


# --- refusal codes ------------------------------------------------------------------------------


def test_every_refusal_code_has_japanese_and_english_text():
    codes = [
        c.EXPIRED,
        c.NOT_YET_VALID,
        c.NOT_ELIGIBLE,
        c.ONLY_MARKED_DOWN,
        c.ZERO_DISCOUNT,
        c.NOT_COMBINABLE,
        c.ALREADY_USED,
        c.NOT_A_MEMBER,
        c.LOTTERY_LOST,
        c.CAP_REACHED,
        c.CODE_EXPIRED,
        c.CODE_INVALID,
        c.NOT_GRANTED,
        c.NOT_VOIDABLE,
        c.VOID_WINDOW_CLOSED,
    ]
    assert set(codes) == set(c.REFUSALS)
    for code in codes:
        assert code.isascii() and code.islower()
        msg = c.REFUSALS[code]
        assert msg.ja and not msg.ja.isascii() and msg.en.isascii()
    err = c.refuse(c.ALREADY_USED)
    assert err.code == "already_used" and err.message == c.REFUSALS["already_used"].ja and err.status == 422


# --- evaluate: validity (JST) -----------------------------------------------------------------


def test_validity_window_boundaries_in_jst():
    """Valid on the JST days 11/01..11/30: from 11/01 00:00 JST to 12/01 00:00 JST (exclusive)."""
    cpn = coupon()
    basket = [line("ONIGIRI", 150)]
    assert FROM == datetime(2026, 10, 31, 15, 0, tzinfo=UTC)
    assert UNTIL == datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
    assert evaluate(cpn, basket, FROM - timedelta(seconds=1)).refusal == "not_yet_valid"
    assert evaluate(cpn, basket, FROM).ok
    assert evaluate(cpn, basket, datetime(2026, 11, 30, 23, 59, 59, tzinfo=JST)).ok
    assert evaluate(cpn, basket, datetime(2026, 12, 1, 0, 0, tzinfo=JST)).refusal == "expired"
    # The same instant in UTC: 11/30 15:00 UTC is already 12/01 in Japan.
    assert evaluate(cpn, basket, datetime(2026, 11, 30, 14, 59, 59, tzinfo=UTC)).ok
    assert evaluate(cpn, basket, datetime(2026, 11, 30, 15, 0, tzinfo=UTC)).refusal == "expired"


def test_expired_refusal_carries_its_messages():
    d = evaluate(coupon(), [line("ONIGIRI", 150)], UNTIL + timedelta(days=3))
    assert not d.ok and d.refusal == c.EXPIRED and d.discount_yen == 0 and d.line_index is None
    assert d.message_ja == c.REFUSALS["expired"].ja and d.message_en == "This coupon has expired."


def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="aware"):
        evaluate(coupon(), [line("ONIGIRI", 150)], datetime(2026, 11, 15, 12, 0))


# --- evaluate: R-CPN-4 one unit of one item ------------------------------------------------------


def test_r_cpn_4_quantity_three_discounts_one_unit():
    d = evaluate(coupon(), [line("ONIGIRI", 150, qty=3)], NOW)
    assert d.ok and d.line_index == 0 and d.item_code == "ONIGIRI" and d.discount_yen == 100 and d.unit_price == 150


def test_r_cpn_4_two_eligible_items_discount_only_one():
    d = evaluate(coupon(), [line("ONIGIRI", 150), line("BENTO", 500)], NOW)
    assert d.ok and d.discount_yen == 100 and d.line_index == 0  # equal discount -> the first line


def test_r_cpn_3_4_mixed_basket_discounts_one_unit_of_the_best_non_marked_down_item():
    basket = [
        line("TEA", 80, qty=2),  # eligible, 80 yen off at most
        line("BENTO", 600, qty=1, marked_down=True),  # eligible but marked down (R-CPN-3)
        line("MILK", 200),  # not eligible
        line("ONIGIRI", 130, qty=2),  # eligible, 100 yen off
    ]
    d = evaluate(coupon(), basket, NOW)
    assert d.ok and d.line_index == 3 and d.item_code == "ONIGIRI" and d.discount_yen == 100


def test_yen_discount_is_capped_at_the_unit_price():
    d = evaluate(coupon(amount=500), [line("TEA", 120, qty=4)], NOW)
    assert d.ok and d.discount_yen == 120


def test_yen_discount_prefers_the_unit_where_it_is_largest():
    d = evaluate(coupon(amount=300), [line("TEA", 120), line("ONIGIRI", 250), line("BENTO", 700)], NOW)
    assert d.line_index == 2 and d.discount_yen == 300


def test_yen_tie_goes_to_the_first_line():
    d = evaluate(coupon(amount=100), [line("TEA", 300), line("BENTO", 700)], NOW)
    assert d.line_index == 0 and d.item_code == "TEA"


def test_percent_discount_picks_the_largest_and_rounds_down():
    cpn = coupon(kind="percent", amount=15)
    d = evaluate(cpn, [line("TEA", 199), line("BENTO", 599), line("ONIGIRI", 150)], NOW)
    assert d.ok and d.item_code == "BENTO" and d.discount_yen == 89  # 599 * 15 % = 89.85 -> 89
    assert c.unit_discount(cpn, 199) == 29


def test_percent_100_is_the_whole_unit_never_more():
    d = evaluate(coupon(kind="percent", amount=100), [line("BENTO", 598, qty=2)], NOW)
    assert d.discount_yen == 598


def test_category_eligibility():
    cpn = coupon(eligible_items=frozenset(), eligible_categories=frozenset({"drinks"}))
    d = evaluate(cpn, [line("BREAD", 300, category="bakery"), line("COLA", 160, category="drinks")], NOW)
    assert d.ok and d.line_index == 1 and d.discount_yen == 100


def test_no_eligible_lists_means_any_one_item():
    cpn = coupon(eligible_items=frozenset())
    assert evaluate(cpn, [line("ANYTHING", 90, qty=5)], NOW).discount_yen == 90


# --- evaluate: refusals ---------------------------------------------------------------------


def test_not_eligible_when_no_basket_item_qualifies():
    d = evaluate(coupon(), [line("MILK", 200), line("BREAD", 300, category="bakery")], NOW)
    assert d.refusal == c.NOT_ELIGIBLE


def test_not_eligible_for_an_empty_basket():
    assert evaluate(coupon(), [], NOW).refusal == c.NOT_ELIGIBLE


def test_r_cpn_3_only_marked_down_eligible_items():
    basket = [line("BENTO", 400, marked_down=True), line("MILK", 200), line("TEA", 100, qty=2, marked_down=True)]
    d = evaluate(coupon(), basket, NOW)
    assert d.refusal == c.ONLY_MARKED_DOWN and d.message_ja.startswith("値引きシール")


def test_r_cpn_3_marked_down_allowed_when_the_exclusion_is_off():
    basket = [line("BENTO", 400, marked_down=True), line("TEA", 90)]
    d = evaluate(coupon(excludes_marked_down=False), basket, NOW)
    assert d.ok and d.item_code == "BENTO" and d.discount_yen == 100


def test_zero_discount_is_refused_rather_than_spending_the_single_use():
    assert evaluate(coupon(), [line("TEA", 0)], NOW).refusal == c.ZERO_DISCOUNT
    assert evaluate(coupon(kind="percent", amount=5), [line("TEA", 19)], NOW).refusal == c.ZERO_DISCOUNT


def test_r_cpn_2_combinable_by_default_and_refused_when_not():
    basket = [line("TEA", 150)]
    assert evaluate(coupon(), basket, NOW, other_coupons=2).ok
    assert evaluate(coupon(combinable=False), basket, NOW, other_coupons=1).refusal == c.NOT_COMBINABLE
    assert evaluate(coupon(combinable=False), basket, NOW).ok


# --- person-level refusals used by the service ---------------------------------------------------


def test_r_cpn_7_r_link_7_members_only():
    cpn = coupon(members_only=True)
    kw = {"used_by_person": 0, "used_in_total": 0}
    assert c.precheck(cpn, NOW, is_member=False, **kw) == c.NOT_A_MEMBER
    assert c.precheck(cpn, NOW, is_member=True, **kw) is None
    assert c.precheck(coupon(), NOW, is_member=False, **kw) is None


def test_r_cpn_5_one_use_per_person_and_total_cap():
    cpn = coupon(total_cap=10)
    assert cpn.per_person_limit == 1
    assert c.precheck(cpn, NOW, is_member=True, used_by_person=1, used_in_total=1) == c.ALREADY_USED
    assert c.precheck(cpn, NOW, is_member=True, used_by_person=0, used_in_total=10) == c.CAP_REACHED
    assert c.precheck(cpn, NOW, is_member=True, used_by_person=0, used_in_total=9) is None
    assert c.precheck(cpn, UNTIL, is_member=True, used_by_person=0, used_in_total=0) == c.EXPIRED


def test_void_window_after_redemption_and_until_a_deadline():
    redeemed = NOW
    assert c.void_refusal(coupon(), redeemed, NOW) == c.NOT_VOIDABLE
    within = coupon(voidable=True, void_within=timedelta(minutes=30))
    assert c.void_refusal(within, redeemed, NOW + timedelta(minutes=29)) is None
    assert c.void_refusal(within, redeemed, NOW + timedelta(minutes=30)) == c.VOID_WINDOW_CLOSED
    until = coupon(voidable=True, void_until=datetime(2026, 11, 15, 23, 0, tzinfo=JST))
    assert c.void_refusal(until, redeemed, datetime(2026, 11, 15, 22, 59, tzinfo=JST)) is None
    assert c.void_refusal(until, redeemed, datetime(2026, 11, 15, 23, 0, tzinfo=JST)) == c.VOID_WINDOW_CLOSED
    assert c.void_refusal(coupon(voidable=True), redeemed, NOW + timedelta(days=300)) is None


# --- definition validation and storage -------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {"kind": "points"},
        {"amount": 0},
        {"kind": "percent", "amount": 101},
        {"kind": "percent", "amount": 0},
        {"amount": True},
        {"valid_until": FROM},
        {"valid_from": datetime(2026, 11, 1)},
        {"per_person_limit": 0},
        {"total_cap": 0},
        {"void_within": timedelta(0)},
        {"coupon_id": ""},
    ],
)
def test_invalid_definitions_are_refused(kw):
    with pytest.raises(ValueError):
        coupon(**kw)


@pytest.mark.parametrize(("probability", "max_winners"), [(0, None), (100, None), (50, 0), (50, 1_000_000)])
def test_lottery_bounds_follow_line(probability, max_winners):
    with pytest.raises(ValueError):
        Lottery(probability, max_winners)


def test_definition_round_trips_through_storage():
    cpn = coupon(
        kind="percent",
        amount=20,
        eligible_categories=frozenset({"drinks"}),
        total_cap=500,
        members_only=True,
        combinable=False,
        excludes_marked_down=False,
        lottery=Lottery(30, 100),
        voidable=True,
        void_within=timedelta(hours=2),
        void_until=datetime(2026, 12, 31, tzinfo=JST),
    )
    stored = cpn.to_dict()
    assert json.loads(json.dumps(stored)) == stored
    assert stored["valid_from"] == "2026-11-01T00:00:00+09:00" and stored["eligible_items"] == [
        "BENTO",
        "ONIGIRI",
        "TEA",
    ]
    assert CouponDefinition.from_dict(stored) == cpn
    assert CouponDefinition.from_dict(coupon().to_dict()) == coupon()


def test_from_dict_takes_dynamodb_numbers_sets_and_defaults():
    item = {
        "coupon_id": "C9",
        "title": "t",
        "kind": "yen",
        "amount": Decimal("50"),
        "valid_from": "2026-11-01T00:00:00",  # no offset: JST
        "valid_until": "2026-12-01T00:00:00+09:00",
        "eligible_items": {"TEA"},
        "lottery": {"probability_percent": Decimal(10), "max_winners": None},
        "void_within_seconds": Decimal(600),
    }
    cpn = CouponDefinition.from_dict(item)
    assert cpn.amount == 50 and cpn.valid_from == FROM and cpn.eligible_items == {"TEA"}
    assert cpn.per_person_limit == 1 and cpn.combinable and cpn.excludes_marked_down and not cpn.members_only
    assert cpn.lottery == Lottery(10, None) and cpn.void_within == timedelta(minutes=10)
    with pytest.raises(ValueError):
        CouponDefinition.from_dict({**item, "amount": Decimal("50.5")})


# --- lottery ----------------------------------------------------------------------------------


def test_draw_is_deterministic_for_a_seeded_rng():
    first = [draw(30, random.Random(42)) for _ in range(3)]
    assert len(set(first)) == 1
    rng_a, rng_b = random.Random(7), random.Random(7)
    assert [draw(30, rng_a) for _ in range(50)] == [draw(30, rng_b) for _ in range(50)]


def test_draw_wins_with_the_stated_probability():
    rng = random.Random(1)
    wins = sum(draw(30, rng) for _ in range(20_000))
    assert 5600 < wins < 6400
    assert draw(99, secrets.SystemRandom()) in (True, False)
    with pytest.raises(ValueError):
        draw(100, rng)


class Fixed:
    def __init__(self, value):
        self.value = value

    def randrange(self, stop, /):
        return self.value


def test_lottery_refusal_win_lose_and_winner_cap():
    lot = Lottery(30, max_winners=2)
    assert c.lottery_refusal(lot, Fixed(29), winners_so_far=1) is None
    assert c.lottery_refusal(lot, Fixed(30), winners_so_far=1) == c.LOTTERY_LOST
    assert c.lottery_refusal(lot, Fixed(0), winners_so_far=2) == c.CAP_REACHED
    assert c.lottery_refusal(Lottery(30), Fixed(0), winners_so_far=10**6) is None


# --- rotating redemption codes ------------------------------------------------------------------

KEY = b"coupon-code-key-" + b"x" * 16
GRANT = c.grant_ref_for(1234)
T0 = datetime(2026, 11, 15, 12, 0, 0, tzinfo=JST)  # on a 30 s boundary


def test_code_shape_and_qr_payload():
    issued = issue_code(KEY, GRANT, T0)
    assert GRANT == "00001234"
    assert len(issued.code) == 16 and issued.code.isdigit() and issued.code.startswith(GRANT)
    assert issued.qr_payload == "TSNG1:" + issued.code
    assert issued.rotates_at == T0 + timedelta(seconds=30)
    assert issued.display.replace(" ", "") == issued.code and len(issued.display.split()) == 4
    assert issue_code(KEY, GRANT, T0 + timedelta(seconds=29)).code == issued.code


def test_code_is_valid_now_in_every_accepted_form():
    issued = issue_code(KEY, GRANT, T0)
    for form in (issued.code, issued.qr_payload, issued.display, issued.display.replace(" ", "-")):
        assert verify_code(KEY, form, T0 + timedelta(seconds=5)) == GRANT


def test_r_cpn_5_code_rotates_and_an_old_screenshot_is_code_expired():
    issued = issue_code(KEY, GRANT, T0)
    assert issue_code(KEY, GRANT, T0 + timedelta(seconds=30)).code != issued.code
    # window=1: still accepted during the next step, refused from the one after.
    assert verify_code(KEY, issued.code, T0 + timedelta(seconds=59)) == GRANT
    later = check_code(KEY, issued.code, T0 + timedelta(seconds=60))
    assert (
        not later.ok
        and later.refusal == c.CODE_EXPIRED
        and verify_code(KEY, issued.code, T0 + timedelta(seconds=60)) is None
    )
    assert check_code(KEY, issued.code, T0 + timedelta(minutes=30)).refusal == c.CODE_EXPIRED
    # window=0: only the current step.
    assert check_code(KEY, issued.code, T0 + timedelta(seconds=30), window=0).refusal == c.CODE_EXPIRED


def test_a_code_beyond_the_lookback_is_just_invalid():
    issued = issue_code(KEY, GRANT, T0)
    assert check_code(KEY, issued.code, T0 + timedelta(days=1)).refusal == c.CODE_INVALID


def test_a_code_from_the_future_is_refused():
    issued = issue_code(KEY, GRANT, T0 + timedelta(minutes=5))
    assert check_code(KEY, issued.code, T0).refusal == c.CODE_INVALID


def test_tampered_codes_are_code_invalid():
    code = issue_code(KEY, GRANT, T0).code
    other_grant = "00001235" + code[8:]
    flipped_mac = code[:-1] + str((int(code[-1]) + 1) % 10)
    for bad in (other_grant, flipped_mac, code[:-1], code + "0", "abcd" + code[4:], "", "TSNG1:"):
        res = check_code(KEY, bad, T0)
        assert res.refusal == c.CODE_INVALID and res.grant_ref is None
    assert check_code(b"another-key-" + b"y" * 20, code, T0).refusal == c.CODE_INVALID


def test_codes_for_different_grants_differ_and_bad_inputs_are_refused():
    assert issue_code(KEY, "00000001", T0).code[8:] != issue_code(KEY, "00000002", T0).code[8:]
    with pytest.raises(ValueError):
        issue_code(KEY, "1234", T0)
    with pytest.raises(ValueError):
        issue_code(b"short", GRANT, T0)
    with pytest.raises(ValueError):
        c.grant_ref_for(10**8)


# --- LINE Login ID tokens (R-CPN-6) -------------------------------------------------------------

CHANNEL_ID = "1654321987"
SECRET = "0123456789abcdef0123456789abcdef"
NOW_TS = int(NOW.timestamp())


def claims(**kw):
    base = {
        "iss": "https://access.line.me",
        "sub": "U" + "a" * 32,
        "aud": CHANNEL_ID,
        "exp": NOW_TS + 3600,
        "iat": NOW_TS - 10,
        "nonce": "n-0123456789abcdef",
        "amr": ["linesso"],
        "name": "山田太郎",
    }
    base.update(kw)
    return base


def b64(obj):
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def refused(token, **kw):
    with pytest.raises(IdTokenError) as info:
        verify_id_token(token, kw.pop("channel_id", CHANNEL_ID), kw.pop("secret", SECRET), kw.pop("now", NOW), **kw)
    assert info.value.status == 401
    return info.value.code


def test_id_token_valid():
    token = sign_id_token(claims(), SECRET)
    got = verify_id_token(token, CHANNEL_ID, SECRET, NOW, nonce="n-0123456789abcdef")
    assert got["sub"] == "U" + "a" * 32 and got["name"] == "山田太郎"
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==")) == {"typ": "JWT", "alg": "HS256"}
    assert verify_id_token(token, CHANNEL_ID, SECRET.encode(), NOW)["aud"] == CHANNEL_ID


def test_id_token_wrong_audience():
    assert refused(sign_id_token(claims(aud="1111111111"), SECRET)) == c.TOKEN_AUDIENCE
    assert refused(sign_id_token(claims(aud=int(CHANNEL_ID)), SECRET)) == c.TOKEN_AUDIENCE
    assert refused(sign_id_token(claims(), SECRET), channel_id="999") == c.TOKEN_AUDIENCE


def test_id_token_expired_at_exp_and_leeway():
    token = sign_id_token(claims(exp=NOW_TS), SECRET)
    assert refused(token) == c.TOKEN_EXPIRED
    assert verify_id_token(sign_id_token(claims(exp=NOW_TS + 1), SECRET), CHANNEL_ID, SECRET, NOW)
    assert verify_id_token(token, CHANNEL_ID, SECRET, NOW, leeway_seconds=30)["exp"] == NOW_TS


def test_id_token_forged_signature():
    assert refused(sign_id_token(claims(), "not-the-channel-secret")) == c.TOKEN_SIGNATURE
    header, payload, sig = sign_id_token(claims(), SECRET).split(".")
    forged_payload = b64(claims(sub="Uattacker"))
    assert refused(f"{header}.{forged_payload}.{sig}") == c.TOKEN_SIGNATURE
    assert refused(f"{header}.{payload}.{sig[:-3]}") == c.TOKEN_SIGNATURE  # 30 bytes, not 32
    flipped = ("B" if sig[0] == "A" else "A") + sig[1:]
    assert refused(f"{header}.{payload}.{flipped}") == c.TOKEN_SIGNATURE


def test_id_token_alg_none_and_other_algorithms_are_refused():
    body = b64(claims())
    assert refused(f"{b64({'alg': 'none', 'typ': 'JWT'})}.{body}.x") == c.TOKEN_SIGNATURE
    assert refused(f"{b64({'alg': 'none'})}.{body}.") == c.TOKEN_MALFORMED  # empty signature part
    assert refused(f"{b64({'alg': 'HS512'})}.{body}.abc") == c.TOKEN_SIGNATURE
    assert refused(f"{b64({'alg': 'ES256', 'kid': 'k1'})}.{body}.abc") == c.TOKEN_SIGNATURE
    assert refused(f"{b64({'alg': 'hs256'})}.{body}.abc") == c.TOKEN_SIGNATURE
    # Even with a correct HMAC over it, a header that does not say HS256 is refused.
    for alg in ("none", "HS512", None):
        signing_input = f"{b64({'alg': alg})}.{body}"
        mac = hmac.digest(SECRET.encode(), signing_input.encode(), "sha256")
        assert refused(f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}") == c.TOKEN_SIGNATURE


def test_id_token_wrong_issuer():
    assert refused(sign_id_token(claims(iss="https://evil.example"), SECRET)) == c.TOKEN_ISSUER
    assert refused(sign_id_token(claims(iss=None), SECRET)) == c.TOKEN_ISSUER


def test_id_token_nonce():
    token = sign_id_token(claims(), SECRET)
    assert refused(token, nonce="another-nonce-value") == c.TOKEN_NONCE
    assert refused(sign_id_token(claims(nonce=None), SECRET), nonce="n-0123456789abcdef") == c.TOKEN_NONCE


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "ééé.b.c",
        "!!!.b.c",
        f"{b64([1, 2])}.e30.abc",
        "bm90IGpzb24.e30.abc",
    ],
)
def test_id_token_malformed(token):
    assert refused(token) == c.TOKEN_MALFORMED


def test_id_token_signed_but_malformed_payload():
    assert refused(sign_id_token(claims(sub=None), SECRET)) == c.TOKEN_MALFORMED
    no_exp = claims()
    del no_exp["exp"]
    assert refused(sign_id_token(no_exp, SECRET)) == c.TOKEN_MALFORMED
    assert refused(sign_id_token(claims(exp="tomorrow"), SECRET)) == c.TOKEN_MALFORMED
    header = b64({"alg": "HS256", "crit": ["b64"]})
    assert refused(f"{header}.{b64(claims())}.abc") == c.TOKEN_MALFORMED
