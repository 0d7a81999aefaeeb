"""Coupons against moto through the real handlers: definitions, grants and lotteries, the coupon
page's login checks, redemption (one unit, one use per person, every refusal, idempotent
retries), voids, reports, bad input, and no raw token or code at rest."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.conftest import OPERATOR_KEY, scan_all
from tsunagu import wiring
from tsunagu.coupons import domain as c

MILK, BREAD, TOFU = "4901234567890", "4909876543210", "4900000000017"


def account(api):
    _, out = api.call("POST", "/accounts", {"name": "生協"}, {"Authorization": f"Bearer {OPERATOR_KEY}"})
    return out["account_id"], {"Authorization": f"Bearer {out['api_key']}"}


def new_user() -> str:
    return "U" + uuid.uuid4().hex


def link(aid: str, user: str, number: str) -> None:
    store = wiring.link_store()
    nonce = uuid.uuid4().hex
    store.put_nonce(aid, nonce, user, f"MEMBER#{number}", number, 2**31)
    assert store.link(aid, nonce, user, f"MEMBER#{number}", number, None) is None


def coupon(api, aid, auth, **over):
    body = {
        "title": "牛乳30円引き",
        "kind": "yen",
        "amount": 30,
        "valid_days": {"first": "2020-01-01", "last": "2099-12-31"},
        "eligible_items": [MILK, BREAD],
        **over,
    }
    status, out = api.call("POST", f"/accounts/{aid}/coupons", body, auth)
    assert status == 201, out
    return out["coupon_id"]


def grant(api, aid, auth, cid, *users):
    status, out = api.call("POST", f"/accounts/{aid}/coupons/{cid}/grants", {"user_ids": list(users)}, auth)
    assert status == 200, out
    return out


def code_for(aid, cid, user, now=None):
    """The code the member's page showed at ``now`` (a used coupon's page shows none any more:
    this is the photo or the stale screen a second attempt would use)."""
    return code_for_at(aid, cid, user, now or datetime.now(UTC))


def basket(*lines):
    return [
        {"item_code": i, "quantity": q, "unit_price": p, "marked_down": m, **({"category": cat} if cat else {})}
        for i, q, p, m, cat in lines
    ]


def redeem(api, aid, auth, code, lines=None, key=None, register="R01", store="S001"):
    body = {
        "store_id": store,
        "register_id": register,
        "code": code,
        "idempotency_key": key or str(uuid.uuid4()),
        "lines": lines or basket((MILK, 1, 198, False, None)),
    }
    return api.call("POST", f"/accounts/{aid}/redemptions", body, auth)


def refusal(out) -> str:
    return out["error"]["code"]


# ----------------------------------------------------------------------------- definitions
def test_coupon_is_created_listed_read_and_changed(api):
    aid, auth = account(api)
    cid = coupon(api, aid, auth, members_only=True, total_cap=100)
    status, got = api.call("GET", f"/accounts/{aid}/coupons/{cid}", headers=auth)
    assert status == 200
    assert (got["kind"], got["amount"], got["per_person_limit"], got["combinable"], got["excludes_marked_down"]) == (
        "yen",
        30,
        1,
        True,
        True,
    )
    assert got["valid_from"] == "2020-01-01T00:00:00+09:00" and got["valid_until"] == "2100-01-01T00:00:00+09:00"
    assert got["counts"]["redeemed"] == 0
    assert [x["coupon_id"] for x in api.call("GET", f"/accounts/{aid}/coupons", headers=auth)[1]["coupons"]] == [cid]
    status, changed = api.call(
        "PATCH", f"/accounts/{aid}/coupons/{cid}", {"title": "牛乳50円引き", "total_cap": 5}, auth
    )
    assert (status, changed["title"], changed["total_cap"], changed["version"]) == (200, "牛乳50円引き", 5, 2)


@pytest.mark.parametrize(
    "body, code",
    [
        ({"kind": "percent", "amount": 150}, "invalid_coupon"),
        ({"valid_from": "2026-01-01T00:00:00+09:00"}, "validation_failed"),  # both kinds of validity
        ({"discount_everything": True}, "validation_failed"),
        ({"lottery": {"probability_percent": 100}}, "validation_failed"),
        ({"valid_days": {"first": "2020-01-01", "last": "9999-12-31"}}, "validation_failed"),
        (
            {"valid_days": None, "valid_from": "0001-01-01T00:00:00+05:00", "valid_until": "2027-01-01T00:00:00"},
            "validation_failed",
        ),
        ({"voidable": True, "void_until": "9999-12-31T23:00:00-05:00"}, "validation_failed"),
        ({"title": "\ud800"}, "invalid_text"),  # a lone surrogate: the gate refuses it before any route
    ],
)
def test_bad_coupon_is_refused_with_a_stable_code_and_nothing_stored(api, stack, body, code):
    aid, auth = account(api)
    before = len(scan_all(stack))
    full = {"title": "x", "kind": "yen", "amount": 30, "valid_days": {"first": "2020-01-01", "last": "2099-12-31"}}
    status, out = api.call("POST", f"/accounts/{aid}/coupons", {**full, **body}, auth)
    assert (status, out["error"]["code"]) == (422, code)
    assert len(scan_all(stack)) == before


def test_another_accounts_coupon_is_not_found(api):
    aid, auth = account(api)
    other, other_auth = account(api)
    cid = coupon(api, aid, auth)
    assert api.call("GET", f"/accounts/{aid}/coupons/{cid}", headers=other_auth)[0] == 404
    assert api.call("GET", f"/accounts/{other}/coupons/{cid}", headers=other_auth)[1]["error"]["code"] == (
        "coupon_not_found"
    )


# ----------------------------------------------------------------------------- grants
def test_grant_is_once_per_person_and_members_only_needs_a_link(api):
    aid, auth = account(api)
    member, friend = new_user(), new_user()
    link(aid, member, "1234567")
    cid = coupon(api, aid, auth, members_only=True)
    out = grant(api, aid, auth, cid, member, friend)
    assert out["summary"] == {"granted": 1, "not_a_member": 1}
    again = grant(api, aid, auth, cid, member)
    assert again["summary"] == {"already_granted": 1}


def test_segment_grant_reaches_linked_members_only(api):
    aid, auth = account(api)
    members = [new_user() for _ in range(3)]
    for i, u in enumerate(members):
        link(aid, u, f"100000{i}")
    cid = coupon(api, aid, auth, members_only=True)
    status, out = api.call("POST", f"/accounts/{aid}/coupons/{cid}/grants", {"segment": "linked_members"}, auth)
    assert status == 200 and out["summary"] == {"granted": 3}
    assert sorted(g["user_id"] for g in out["grants"]) == sorted(members)


def test_lottery_is_drawn_once_and_never_redrawn(api):
    aid, auth = account(api)
    cid = coupon(api, aid, auth, lottery={"probability_percent": 50})
    grants = wiring.coupon_grants()
    users = [new_user() for _ in range(20)]
    first = {u: grants.grant(aid, cid, u)["status"] for u in users}
    assert set(first.values()) == {"won", "lost"}  # 20 draws at 50 %: both outcomes (p of failing ~2e-6)
    for seed in range(5):  # whatever the next draws would say, the stored outcome stands
        grants.rng = random.Random(seed)
        assert {u: grants.grant(aid, cid, u)["status"] for u in users} == first
    loser = next(u for u, s in first.items() if s == "lost")
    assert wiring.coupon_page().show(aid, cid, loser, datetime.now(UTC))["refusal"] == "lottery_lost"


def test_lottery_cap_holds_and_late_winners_get_cap_reached(api):
    aid, auth = account(api)
    cid = coupon(api, aid, auth, lottery={"probability_percent": 99, "max_winners": 3})
    grants = wiring.coupon_grants()
    grants.rng = random.Random(1)
    statuses = [grants.grant(aid, cid, new_user())["status"] for _ in range(10)]
    assert statuses.count("won") == 3
    assert set(statuses) <= {"won", "lost", "cap_reached"}
    assert api.call("GET", f"/accounts/{aid}/coupons/{cid}", headers=auth)[1]["counts"]["won"] == 3


# ----------------------------------------------------------------------------- redemption
def test_one_unit_of_one_item_is_discounted_in_a_mixed_basket(api):
    aid, auth = account(api)
    user = new_user()
    cid = coupon(api, aid, auth)
    grant(api, aid, auth, cid, user)
    lines = basket(
        (TOFU, 3, 98, False, None),  # not eligible
        (MILK, 2, 198, False, None),  # two eligible units
        (BREAD, 1, 158, False, None),  # eligible
        (MILK, 1, 150, True, None),  # marked down (R-CPN-3)
    )
    status, out = redeem(api, aid, auth, code_for(aid, cid, user), lines)
    assert status == 201, out
    assert out["discount"] == {"line_index": 1, "item_code": MILK, "unit_price": 198, "discount_yen": 30, "units": 1}


def test_percent_coupon_picks_the_unit_with_the_largest_discount_never_a_marked_down_one(api):
    aid, auth = account(api)
    user = new_user()
    cid = coupon(api, aid, auth, kind="percent", amount=15, eligible_items=[], eligible_categories=["dairy"])
    grant(api, aid, auth, cid, user)
    lines = basket(
        (MILK, 4, 199, False, "dairy"),
        ("cheese", 1, 980, True, "dairy"),  # the most expensive, but marked down
        ("yogurt", 1, 348, False, "dairy"),
        ("beef", 1, 1980, False, "meat"),
    )
    status, out = redeem(api, aid, auth, code_for(aid, cid, user), lines)
    assert status == 201, out
    assert (out["discount"]["item_code"], out["discount"]["discount_yen"]) == ("yogurt", 52)  # 15 % of 348, floor


def test_a_yen_discount_never_exceeds_the_unit_price(api):
    aid, auth = account(api)
    user = new_user()
    cid = coupon(api, aid, auth, amount=500)
    grant(api, aid, auth, cid, user)
    out = redeem(api, aid, auth, code_for(aid, cid, user), basket((BREAD, 2, 158, False, None)))[1]
    assert out["discount"]["discount_yen"] == 158


def test_second_redemption_by_same_member_is_refused_at_another_store(api):
    aid, auth = account(api)
    user = new_user()
    cid = coupon(api, aid, auth)
    grant(api, aid, auth, cid, user)
    assert redeem(api, aid, auth, code_for(aid, cid, user), store="S001", register="R01")[0] == 201
    status, out = redeem(api, aid, auth, code_for(aid, cid, user), store="S002", register="R09")
    assert (status, refusal(out)) == (422, "already_used")
    assert out["error"]["details"]["en"] == "This coupon has already been used."
    assert wiring.coupon_page().show(aid, cid, user, datetime.now(UTC))["refusal"] == "already_used"


@pytest.mark.parametrize(
    "lines, code",
    [
        (basket((TOFU, 1, 98, False, None)), "not_eligible"),
        (basket((MILK, 2, 150, True, None), (TOFU, 1, 98, False, None)), "only_marked_down"),
    ],
)
def test_basket_refusals(api, lines, code):
    aid, auth = account(api)
    user = new_user()
    cid = coupon(api, aid, auth)
    grant(api, aid, auth, cid, user)
    status, out = redeem(api, aid, auth, code_for(aid, cid, user), lines)
    assert (status, refusal(out)) == (422, code)
    # The refused attempt did not spend the person's single use.
    assert redeem(api, aid, auth, code_for(aid, cid, user))[0] == 201


def test_validity_refusals_use_jst_days(api):
    aid, auth = account(api)
    user = new_user()
    cid = coupon(api, aid, auth, valid_days={"first": "2031-04-01", "last": "2031-04-30"})
    grant(api, aid, auth, cid, user)
    svc = wiring.redemptions()
    body = {
        "store_id": "S1",
        "register_id": "R1",
        "idempotency_key": "k" * 10,
        "lines": basket((MILK, 1, 198, False, None)),
    }
    before = datetime(2031, 3, 31, 23, 59, tzinfo=c.JST)
    after = datetime(2031, 5, 1, 0, 0, tzinfo=c.JST)
    last_minute = datetime(2031, 4, 30, 23, 59, 30, tzinfo=c.JST)
    with pytest.raises(c.CouponRefused) as e:
        svc.redeem(aid, {**body, "code": code_for_at(aid, cid, user, before)}, now=before)
    assert e.value.code == "not_yet_valid"
    with pytest.raises(c.CouponRefused) as e:
        svc.redeem(aid, {**body, "code": code_for_at(aid, cid, user, after)}, now=after)
    assert e.value.code == "expired"
    ok = svc.redeem(aid, {**body, "code": code_for_at(aid, cid, user, last_minute)}, now=last_minute)
    assert ok["discount"]["discount_yen"] == 30


def code_for_at(aid, cid, user, at):
    g = wiring.coupon_store().grant(aid, cid, user)
    return c.issue_code(wiring.coupon_code_keys().key(aid), g["ref"], at).code


def test_not_a_member_when_the_member_unlinked_after_the_grant(api):
    aid, auth = account(api)
    user = new_user()
    link(aid, user, "7654321")
    cid = coupon(api, aid, auth, members_only=True)
    grant(api, aid, auth, cid, user)
    code = code_for(aid, cid, user)
    status, _ = api.call(
        "POST", f"/accounts/{aid}/members/7654321/unlink", {"kind": "member", "reason": "本人確認済み"}, auth
    )
    assert status == 200
    status, out = redeem(api, aid, auth, code)
    assert (status, refusal(out)) == (422, "not_a_member")


def test_lottery_loser_is_refused_at_the_register(api):
    aid, auth = account(api)
    cid = coupon(api, aid, auth, lottery={"probability_percent": 1})
    grants = wiring.coupon_grants()

    class AlwaysLose:
        def randrange(self, stop: int) -> int:
            return stop - 1

    grants.rng = AlwaysLose()
    user = new_user()
    assert grants.grant(aid, cid, user)["status"] == "lost"
    # A loser has no code; even a forged one for another grant ref is refused by the MAC.
    g = wiring.coupon_store().grant(aid, cid, user)
    assert "ref" not in g
    status, out = redeem(api, aid, auth, "0000000112345678")
    assert (status, refusal(out)) == (422, "code_invalid")


def test_total_cap_reached(api):
    aid, auth = account(api)
    cid = coupon(api, aid, auth, total_cap=2)
    users = [new_user() for _ in range(3)]
    grant(api, aid, auth, cid, *users)
    assert [redeem(api, aid, auth, code_for(aid, cid, u))[0] for u in users[:2]] == [201, 201]
    status, out = redeem(api, aid, auth, code_for(aid, cid, users[2]))
    assert (status, refusal(out)) == (422, "cap_reached")


def test_replayed_code_after_rotation_is_code_expired(api):
    aid, auth = account(api)
    user = new_user()
    cid = coupon(api, aid, auth)
    grant(api, aid, auth, cid, user)
    shot = datetime.now(UTC) - timedelta(seconds=95)  # a screenshot taken 95 s ago: 3 rotations back
    status, out = redeem(api, aid, auth, code_for(aid, cid, user, shot))
    assert (status, refusal(out)) == (422, "code_expired")
    tampered = code_for(aid, cid, user)
    tampered = tampered[:-1] + str((int(tampered[-1]) + 1) % 10)
    assert refusal(redeem(api, aid, auth, tampered)[1]) == "code_invalid"
    assert redeem(api, aid, auth, code_for(aid, cid, user))[0] == 201  # the current code still works


def test_retry_with_the_same_idempotency_key_returns_the_original_result(api, stack):
    aid, auth = account(api)
    user = new_user()
    cid = coupon(api, aid, auth)
    grant(api, aid, auth, cid, user)
    key = str(uuid.uuid4())
    lines = basket((MILK, 2, 198, False, None))
    status, first = redeem(api, aid, auth, code_for(aid, cid, user), lines, key)
    assert status == 201 and first["replayed"] is False
    stale = code_for(aid, cid, user, datetime.now(UTC) - timedelta(seconds=300))  # the code rotated since
    status, again = redeem(api, aid, auth, stale, lines, key)
    assert status == 201 and again == {**first, "replayed": True}
    status, out = redeem(api, aid, auth, stale, basket((BREAD, 1, 158, False, None)), key)
    assert (status, refusal(out)) == (409, "idempotency_key_reused")
    counts = api.call("GET", f"/accounts/{aid}/coupons/{cid}", headers=auth)[1]["counts"]
    assert counts["redeemed"] == 1
    # The key is stored hashed; codes and raw keys never reach the table.
    dump = json.dumps(scan_all(stack))
    assert key not in dump and first["redemption_id"] in dump


def test_void_restores_the_persons_use_and_a_new_redemption_works(api):
    aid, auth = account(api)
    user = new_user()
    cid = coupon(api, aid, auth, voidable=True, void_within_minutes=30)
    grant(api, aid, auth, cid, user)
    first = redeem(api, aid, auth, code_for(aid, cid, user))[1]
    status, voided = api.call(
        "POST", f"/accounts/{aid}/redemptions/{first['redemption_id']}/void", {"reason": "返品"}, auth
    )
    assert (status, voided["status"]) == (200, "voided")
    # Voiding twice is harmless and gives the use back only once.
    assert api.call("POST", f"/accounts/{aid}/redemptions/{first['redemption_id']}/void", {}, auth)[0] == 200
    status, second = redeem(api, aid, auth, code_for(aid, cid, user))
    assert status == 201 and second["redemption_id"] != first["redemption_id"]
    assert refusal(redeem(api, aid, auth, code_for(aid, cid, user))[1]) == "already_used"
    counts = api.call("GET", f"/accounts/{aid}/coupons/{cid}", headers=auth)[1]["counts"]
    assert (counts["redeemed"], counts["voided"]) == (1, 1)


def test_void_outside_the_policy_is_refused(api):
    aid, auth = account(api)
    user, other = new_user(), new_user()
    fixed = coupon(api, aid, auth)  # not voidable
    windowed = coupon(api, aid, auth, voidable=True, void_within_minutes=10)
    grant(api, aid, auth, fixed, user)
    grant(api, aid, auth, windowed, other)
    r1 = redeem(api, aid, auth, code_for(aid, fixed, user))[1]
    status, out = api.call("POST", f"/accounts/{aid}/redemptions/{r1['redemption_id']}/void", {}, auth)
    assert (status, refusal(out)) == (422, "not_voidable")
    r2 = redeem(api, aid, auth, code_for(aid, windowed, other))[1]
    with pytest.raises(c.CouponRefused) as e:
        wiring.redemptions().void(aid, r2["redemption_id"], None, now=datetime.now(UTC) + timedelta(minutes=11))
    assert e.value.code == "void_window_closed"


def test_report_per_coupon_store_and_day_as_json_and_csv(api):
    aid, auth = account(api)
    cid = coupon(api, aid, auth, voidable=True)
    users = [new_user() for _ in range(3)]
    grant(api, aid, auth, cid, *users)
    r = [
        redeem(api, aid, auth, code_for(aid, cid, u), store=s)[1]
        for u, s in zip(users, ["S1", "S1", "S2"], strict=True)
    ]
    api.call("POST", f"/accounts/{aid}/redemptions/{r[1]['redemption_id']}/void", {}, auth)
    status, report = api.call("GET", f"/accounts/{aid}/redemptions/report", headers=auth)
    assert status == 200
    today = datetime.now(UTC).astimezone(c.JST).date().isoformat()
    rows = {(x["store_id"], x["day"]): (x["redeemed"], x["voided"], x["discount_yen"]) for x in report["rows"]}
    assert rows == {("S1", today): (1, 1, 30), ("S2", today): (1, 0, 30)}
    status, text = api.call("GET", f"/accounts/{aid}/redemptions/report?format=csv&coupon_id={cid}", headers=auth)
    assert status == 200
    lines = text.lstrip("\ufeff").strip().splitlines()
    assert lines[0] == "day,coupon_id,title,store_id,redeemed,voided,discount_yen"
    assert lines[1] == f"{today},{cid},牛乳30円引き,S1,1,1,30"
    assert api.call("GET", f"/accounts/{aid}/redemptions/report?since=2026-13-01", headers=auth)[0] == 422


@pytest.mark.parametrize(
    "raw, status, code",
    [
        (b"{not json", 400, "invalid_json"),
        (b"[]", 422, "invalid_redemption"),
        (json.dumps({"store_id": "S1"}).encode(), 422, "invalid_redemption"),
        (
            json.dumps(
                {"store_id": "S1", "register_id": "R1", "code": "1", "idempotency_key": "short", "lines": []}
            ).encode(),
            422,
            "invalid_idempotency_key",
        ),
        (
            json.dumps(
                {
                    "store_id": "S1",
                    "register_id": "R1",
                    "code": "1234",
                    "idempotency_key": "k" * 16,
                    "lines": [{"item_code": MILK, "quantity": 0, "unit_price": 198}],
                }
            ).encode(),
            422,
            "invalid_redemption",
        ),
        (
            json.dumps(
                {
                    "store_id": "S1",
                    "register_id": "R1",
                    "code": "1234",
                    "idempotency_key": "k" * 16,
                    "lines": [{"item_code": MILK, "quantity": 1, "unit_price": 198.5}],
                }
            ).encode(),
            422,
            "invalid_redemption",
        ),
        (b"[" * 100_000 + b"]" * 100_000, 400, "invalid_json"),
        (
            json.dumps(
                {
                    "store_id": "S1",
                    "register_id": "R1",
                    "code": "1234",
                    "idempotency_key": "k" * 16,
                    "lines": [{"item_code": "\ud800", "quantity": 1, "unit_price": 198}],
                }
            ).encode(),
            422,
            "invalid_text",
        ),
    ],
)
def test_bad_redemption_input_is_4xx_with_a_stable_code_and_writes_nothing(api, stack, raw, status, code):
    aid, auth = account(api)
    before = len(scan_all(stack))
    got, out = api.call("POST", f"/accounts/{aid}/redemptions", headers=auth, raw=raw)
    assert (got, out["error"]["code"]) == (status, code)
    assert len(scan_all(stack)) == before


def test_redemption_needs_the_accounts_key(api):
    aid, _ = account(api)
    _, other_auth = account(api)
    assert api.call("POST", f"/accounts/{aid}/redemptions", {"x": 1})[0] == 401
    assert api.call("POST", f"/accounts/{aid}/redemptions", {"x": 1}, {"Authorization": "Bearer nope"})[0] == 401
    assert api.call("POST", f"/accounts/{aid}/redemptions", {"x": 1}, other_auth)[0] == 404


# ----------------------------------------------------------------------------- LINE Login
LOGIN_ID, LOGIN_SECRET = "1657000001", "0123456789abcdef0123456789abcdef"


def login_account(api):
    aid, auth = account(api)
    status, out = api.call(
        "PUT", f"/accounts/{aid}/login-channel", {"channel_id": LOGIN_ID, "channel_secret": LOGIN_SECRET}, auth
    )
    assert status == 200, out
    assert api.call("GET", f"/accounts/{aid}", headers=auth)[1]["settings"]["login_channel_id"] == LOGIN_ID
    return aid, auth


def id_token(user, aud=LOGIN_ID, secret=LOGIN_SECRET, exp_in=600):
    now = int(datetime.now(UTC).timestamp())
    claims = {"iss": c.LINE_ISSUER, "sub": user, "aud": aud, "exp": now + exp_in, "iat": now}
    return c.sign_id_token(claims, secret)


@pytest.mark.parametrize(
    "token_args, code",
    [
        ({"aud": "1657999999"}, "token_audience"),
        ({"exp_in": -1}, "token_expired"),
        ({"secret": "f" * 32}, "token_signature"),  # forged: signed with another secret
    ],
)
def test_coupon_code_needs_a_valid_line_login_id_token(api, token_args, code):
    aid, auth = login_account(api)
    user = new_user()
    cid = coupon(api, aid, auth)
    grant(api, aid, auth, cid, user)
    cookie = {"Cookie": f"tsunagu_coupon={id_token(user)}"}
    status, good = api.call("GET", f"/coupon/{aid}/code?c={cid}", headers=cookie)
    assert status == 200 and len(good["code"]) == 16 and good["qr_svg"].startswith("<svg")
    status, out = api.call(
        "GET", f"/coupon/{aid}/code?c={cid}", headers={"Cookie": f"tsunagu_coupon={id_token(user, **token_args)}"}
    )
    assert (status, out["error"]["code"]) == (401, code)
    status, _ = api.call(
        "GET", f"/coupon/{aid}?c={cid}", headers={"Cookie": f"tsunagu_coupon={id_token(user, **token_args)}"}
    )
    assert status == 303  # back to LINE Login


def test_alg_none_token_is_refused(api):
    aid, auth = login_account(api)
    user = new_user()
    cid = coupon(api, aid, auth)
    grant(api, aid, auth, cid, user)
    _, payload, _ = id_token(user).split(".")
    none_header = c._b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    status, out = api.call(
        "GET", f"/coupon/{aid}/code?c={cid}", headers={"Cookie": f"tsunagu_coupon={none_header}.{payload}.AAAA"}
    )
    assert (status, out["error"]["code"]) == (401, "token_signature")


def test_coupon_page_shows_the_code_and_its_rules(api, stack):
    aid, auth = login_account(api)
    user = new_user()
    cid = coupon(api, aid, auth)
    grant(api, aid, auth, cid, user)
    status, html = api.call("GET", f"/coupon/{aid}?c={cid}", headers={"Cookie": f"tsunagu_coupon={id_token(user)}"})
    assert status == 200
    assert "30円引き" in html and "値引きシール商品は対象外" in html and "<svg" in html
    # No ID token and no code at rest.
    dump = json.dumps(scan_all(stack))
    assert "eyJ" not in dump and LOGIN_SECRET not in dump


def test_a_new_friend_gets_the_coupons_marked_grant_on_follow_once(api):
    """Issue 6, grants on follow: the friendship worker grants them; a redelivered follow does not
    grant twice; a members-only coupon is not granted to a new (unlinked) friend."""
    aid, auth = account(api)
    on_follow = coupon(api, aid, auth, grant_on_follow=True)
    members_only = coupon(api, aid, auth, grant_on_follow=True, members_only=True)
    user = new_user()
    event = {"type": "follow", "webhookEventId": "01FOLLOW", "timestamp": 1, "source": {"type": "user", "userId": user}}
    friendship = wiring.friendship_service()
    friendship.replies = None
    assert friendship.handle(aid, event) == "applied"
    assert friendship.handle(aid, event) in ("duplicate", "stale")  # LINE redelivers: no second grant
    store = wiring.coupon_store()
    assert store.grant(aid, on_follow, user) is not None
    assert store.grant(aid, members_only, user) is None


def test_a_grant_by_message_tells_the_new_holders_through_a_metered_multicast(api, stack):
    """Issue 6, grants by message: the newly granted get the text and the page link; it is a
    billable multicast in the usage ledger; asking again grants and sends nothing new."""
    aid, auth = account(api)
    api.call("PUT", f"/accounts/{aid}/channel", {"channel_secret": "0" * 32, "access_token": "token-" + "x" * 30}, auth)
    cid = coupon(api, aid, auth)
    users = [new_user(), new_user()]
    sent: list[dict] = []
    svc = wiring.billing_service()
    svc.line = type("L", (), {"send": lambda self, token, kind, body, key: sent.append(body) or "sent"})()
    req = {"user_ids": users, "message": "牛乳30円引きクーポンをお届けします"}
    status, out = api.call("POST", f"/accounts/{aid}/coupons/{cid}/grants", req, auth)
    assert status == 200, out
    assert out["message"] == {"sent_to": 2, "errors": []}
    assert sorted(sent[0]["to"]) == sorted(users) and f"/coupon/{aid}?c={cid}" in sent[0]["messages"][0]["text"]
    status, out = api.call("POST", f"/accounts/{aid}/coupons/{cid}/grants", req, auth)
    assert out["message"] == {"sent_to": 0, "errors": []} and len(sent) == 1
    assert svc.usage(aid)["by_kind"] == {"multicast_messages": 2}


def test_a_patch_cannot_null_what_a_coupon_needs_and_extreme_dates_are_422(api):
    aid, auth = account(api)
    cid = coupon(api, aid, auth)
    for change in ({"status": None}, {"title": None}, {"voidable": None}, {"grant_on_follow": None}):
        status, out = api.call("PATCH", f"/accounts/{aid}/coupons/{cid}", change, auth)
        assert (status, out["error"]["code"]) == (422, "validation_failed"), change
    status, out = api.call(
        "PATCH", f"/accounts/{aid}/coupons/{cid}", {"valid_until": "9999-12-31T23:00:00-05:00"}, auth
    )
    assert (status, out["error"]["code"]) == (422, "validation_failed")
    status, got = api.call("GET", f"/accounts/{aid}/coupons/{cid}", headers=auth)
    assert (status, got["status"], got["title"], got["version"]) == (200, "active", "牛乳30円引き", 1)
    status, out = api.call("GET", f"/accounts/{aid}/redemptions/report?until=0001-01-01", headers=auth)
    assert (status, out["error"]["code"]) == (422, "invalid_date")


def test_the_login_callback_refuses_odd_state_and_coupon_ids(api):
    aid, _ = login_account(api)
    cookie = {"Cookie": "tsunagu_coupon_login=abc"}
    status, _ = api.call("GET", f"/coupon/{aid}?code=abc&state=%E3%81%82", headers=cookie)
    assert 400 <= status < 500
    status, _ = api.call("GET", f"/coupon/{aid}?c=cpn_0123456789abcdef%0A")
    assert 400 <= status < 500
