"""Metering and billing against moto: quota reservations (capped plans, budgets, campaign caps),
retry keys, live usage, forecasts, plan changes, the monthly close (once; late usage on the next
invoice), the daily rollup, the LINE quota check and points (R-PLAN-*, R-MSG-*, R-PTS-1)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import pytest

from tests.integration.conftest import OPERATOR_KEY
from tsunagu import wiring
from tsunagu.billing.service import BillingService, QuotaRefused
from tsunagu.billing.store import DynamoBillingStore
from tsunagu.billing.usage_store import DynamoUsageLedger
from tsunagu.config import get_settings
from tsunagu.errors import BadRequest, Conflict, RateLimited, UpstreamError
from tsunagu.infrastructure.line_api import LineApiError, LineRateLimited, LineRefused

TEXT = [{"type": "text", "text": "お知らせ"}]


def users(n: int) -> list[str]:
    return ["U" + uuid.uuid4().hex for _ in range(n)]


class FakeLine:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any], str]] = []
        self.keys: set[str] = set()
        self.fail_with: Exception | None = None
        self.consumption = 0

    def send(self, token: str, kind: str, body: dict[str, Any], retry_key: str) -> str:
        if self.fail_with is not None:
            e, self.fail_with = self.fail_with, None
            raise e
        if retry_key in self.keys:
            return "accepted-before"
        self.keys.add(retry_key)
        self.sent.append((kind, body, retry_key))
        return "sent"

    def quota_consumption(self, token: str) -> int:
        return self.consumption


@pytest.fixture
def line() -> FakeLine:
    return FakeLine()


def noon_jst_ms(day: date) -> int:
    return int(datetime.combine(day, time(12), tzinfo=timezone(timedelta(hours=9))).timestamp() * 1000)


@pytest.fixture
def make_service(stack, line):
    def make(today: date = date(2026, 11, 22)) -> BillingService:
        table = get_settings().table_name
        return BillingService(
            DynamoBillingStore(table),
            DynamoUsageLedger(table),
            wiring.account_store(),
            wiring.friend_store(),
            wiring.channel_secrets(),
            line,
            wiring.member_register(),
            now_ms=lambda: noon_jst_ms(today),
        )

    return make


def account(api, plan: str = "light", since: date = date(2026, 11, 1)) -> str:
    """An account on ``plan`` since ``since``: the tests run on a fixed calendar (``make_service``'s
    today), not on the day the account row happens to be created."""
    _, out = api.call("POST", "/accounts", {"name": "shop", "plan": plan}, {"Authorization": f"Bearer {OPERATOR_KEY}"})
    aid = out["account_id"]
    auth = {"Authorization": f"Bearer {out['api_key']}"}
    api.call("PUT", f"/accounts/{aid}/channel", {"channel_secret": "0" * 32, "access_token": "token-" + "x" * 30}, auth)
    DynamoBillingStore(get_settings().table_name).replace_plan_history(aid, [], [(since, plan)])
    return aid


def fill(svc: BillingService, aid: str, n: int) -> None:
    """``n`` billable messages already sent this month (one send, recorded like any other)."""
    key = str(uuid.uuid4())
    assert svc.store.reserve(aid, key, "2026-11", n, None)
    assert svc.store.commit(aid, key, "broadcast", n, 1_795_000_000_000)


def test_light_plan_refuses_a_multicast_past_its_free_messages_and_sends_nothing(api, make_service, line):
    """R-PLAN-1: Light = 5,000 free messages, nothing beyond."""
    svc = make_service()
    aid = account(api, "light")
    fill(svc, aid, 4_900)
    with pytest.raises(QuotaRefused) as e:
        svc.send(aid, "multicast", {"to": users(101), "messages": TEXT}, str(uuid.uuid4()), None)
    assert e.value.code == "quota_exceeded" and "100 message(s) left" in e.value.message
    assert line.sent == []
    out = svc.send(aid, "multicast", {"to": users(100), "messages": TEXT}, str(uuid.uuid4()), None)
    assert (out["recipients"], out["status"]) == (100, "sent")
    with pytest.raises(QuotaRefused):
        svc.send(aid, "push", {"to": users(1)[0], "messages": TEXT}, str(uuid.uuid4()), None)
    usage = svc.usage(aid)
    assert (usage["billable_messages"], usage["remaining_free"], usage["cap"]) == (5_000, 0, 5_000)


@pytest.mark.parametrize(
    ("kind", "retry_after", "expected"), [("push", 7, 7), ("push", None, 1), ("broadcast", None, 60)]
)
def test_lines_429_is_passed_on_with_retry_after_and_counts_nothing(
    api, make_service, line, kind, retry_after, expected
):
    """Issue 15: LINE's rate limit reaches the caller as 429 with Retry-After (LINE's, or the
    endpoint's window), the reservation is given back, and the same retry key later sends once."""
    svc = make_service()
    aid = account(api, "communication")
    key = str(uuid.uuid4())
    body = {"to": users(1)[0], "messages": TEXT} if kind == "push" else {"messages": TEXT}
    line.fail_with = LineRateLimited("The API rate limit has been exceeded. Try again later.", retry_after)
    with pytest.raises(RateLimited) as e:
        svc.send(aid, kind, body, key, None)
    assert (e.value.status, e.value.code, e.value.headers) == (429, "line_rate_limited", {"Retry-After": str(expected)})
    assert svc.store.reserved(aid, "2026-11") == 0 and line.sent == []
    assert svc.send(aid, kind, body, key, None)["status"] == "sent"
    assert svc.send(aid, kind, body, key, None)["status"] == "already_sent"
    assert len(line.sent) == 1


def test_lines_monthly_limit_is_a_409_not_a_retry(api, make_service, line):
    svc = make_service()
    aid = account(api, "communication")
    line.fail_with = LineRateLimited('{"message":"You have reached your monthly limit."}', None)
    with pytest.raises(QuotaRefused) as e:
        svc.send(aid, "push", {"to": users(1)[0], "messages": TEXT}, str(uuid.uuid4()), None)
    assert (e.value.status, e.value.code) == (409, "line_monthly_limit")
    assert svc.store.reserved(aid, "2026-11") == 0


def test_retry_key_counts_once_and_a_refused_send_gives_its_reservation_back(api, make_service, line):
    svc = make_service()
    aid = account(api, "communication")  # 200 free messages
    key = str(uuid.uuid4())
    body = {"to": users(3), "messages": TEXT}
    assert svc.send(aid, "multicast", body, key, None)["status"] == "sent"
    assert svc.send(aid, "multicast", body, key, None)["status"] == "already_sent"
    assert len(line.sent) == 1
    line.fail_with = LineRefused(400, "bad message")
    with pytest.raises(BadRequest):
        svc.send(aid, "push", {"to": users(1)[0], "messages": TEXT}, str(uuid.uuid4()), None)
    assert svc.store.reserved(aid, "2026-11") == 3
    # LINE did not answer: the reservation stays; the same retry key later sends and commits once.
    key2, push = str(uuid.uuid4()), {"to": users(1)[0], "messages": TEXT}
    line.fail_with = LineApiError(503, "busy")
    with pytest.raises(UpstreamError):
        svc.send(aid, "push", push, key2, None)
    # The same key for another request is refused: the retry key names one request (its body).
    with pytest.raises(Conflict) as e:
        svc.send(aid, "push", {**push, "to": users(1)[0]}, key2, None)
    assert e.value.code == "retry_key_reused"
    with pytest.raises(Conflict):
        svc.send(aid, "multicast", {"to": users(150), "messages": TEXT}, key, None)  # even once committed
    assert svc.send(aid, "push", push, key2, None)["status"] == "sent"
    assert svc.usage(aid)["by_kind"] == {"multicast_messages": 3, "push_messages": 1}


def test_bad_sends_are_refused_before_anything_is_reserved(api, make_service):
    svc = make_service()
    aid = account(api)
    bad = [
        ("multicast", {"to": users(501), "messages": TEXT}, "invalid_recipient"),
        ("multicast", {"to": ["nope"], "messages": TEXT}, "invalid_recipient"),
        ("push", {"to": users(1)[0], "messages": TEXT * 6}, "message_count"),
        ("push", {"to": users(1)[0], "messages": []}, "message_count"),
        ("narrowcast", {"messages": TEXT}, "narrowcast_limit"),
    ]
    for kind, body, code in bad:
        with pytest.raises(Exception) as e:
            svc.send(aid, kind, body, str(uuid.uuid4()), None)
        assert getattr(e.value, "code", None) == code
    assert svc.store.reserved(aid, "2026-11") == 0


def test_standard_budget_and_campaign_cap(api, make_service, line):
    """Standard: additional messages allowed (R-PLAN-2) but never past the business's budget;
    a campaign never past its own cap (R-MSG-1)."""
    svc = make_service()
    aid = account(api, "standard")  # 30,000 free
    fill(svc, aid, 30_000)
    svc.set_budget(aid, yen=33, messages=None)  # 3 yen per additional message in the first tier: 11 messages
    assert svc.month_limit(aid, date(2026, 11, 22))[0] == 30_011
    with pytest.raises(QuotaRefused) as e:
        svc.send(aid, "multicast", {"to": users(12), "messages": TEXT}, str(uuid.uuid4()), None)
    assert "11 message(s) left" in e.value.message
    svc.set_budget(aid, yen=None, messages=None)
    campaign = ("winter", 5)
    svc.send(aid, "multicast", {"to": users(4), "messages": TEXT}, str(uuid.uuid4()), campaign)
    with pytest.raises(QuotaRefused) as e:
        svc.send(aid, "multicast", {"to": users(2), "messages": TEXT}, str(uuid.uuid4()), campaign)
    assert e.value.details[0]["limit"] == "campaign" and e.value.details[0]["left"] == 1
    assert svc.store.reserved(aid, "2026-11") == 30_004  # the refused one reserved nothing


def test_upgrade_mid_month_grants_the_difference_and_downgrade_waits(api, make_service):
    """R-PLAN-3."""
    svc = make_service(date(2026, 11, 22))
    aid = account(api, "communication")
    svc.store.replace_plan_history(aid, svc.store.plan_history(aid), [(date(2026, 10, 1), "communication")])
    view = svc.change_plan(aid, "light")
    assert view["plan"] == "light" and view["pending"] == []
    assert svc.month_limit(aid, date(2026, 11, 22))[0] == 200 + (5_000 - 200)
    view = svc.change_plan(aid, "communication")
    assert view["plan"] == "light" and view["pending"] == [{"effective": "2026-12-01", "plan": "communication"}]
    fc = svc.forecast(aid, 10, date(2026, 12, 5))
    assert (fc["plan"], fc["free_messages"]) == ("communication", 200)


def test_plan_history_is_one_item_and_racing_changes_have_one_winner(api, make_service):
    """R-PLAN-3: the history is read with one GetItem (every billed send reads it) and replaced
    conditionally, so of eight changes made from the same history at once exactly one lands."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    svc = make_service(date(2026, 11, 22))
    aid = account(api, "communication")
    old = [(date(2026, 10, 1), "communication")]
    svc.store.replace_plan_history(aid, svc.store.plan_history(aid), old)
    with pytest.raises(Conflict) as again:  # the history is no longer absent
        svc.store.replace_plan_history(aid, [], old)
    assert again.value.code == "plan_changed"
    barrier = threading.Barrier(8)

    def change(plan: str) -> str:
        store = DynamoBillingStore(get_settings().table_name)
        barrier.wait()
        try:
            store.replace_plan_history(aid, old, [*old, (date(2026, 11, 22), plan)])
            return plan
        except Conflict:
            return "refused"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(change, ["light", "standard"] * 4))
    winners = [o for o in outcomes if o != "refused"]
    assert len(winners) == 1
    assert svc.store.plan_history(aid) == [*old, (date(2026, 11, 22), winners[0])]
    calls: list[str] = []
    svc.store.db.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    svc.month_limit(aid, date(2026, 11, 22))
    assert "Query" not in calls and calls.count("GetItem") >= 1


def test_forecast_shows_cost_and_blocked(api, make_service):
    svc = make_service()
    light = account(api, "light")
    fill(svc, light, 4_990)
    fc = svc.forecast(light, 50, None)
    assert (fc["sendable"], fc["blocked"], fc["additional"]) == (10, 40, 0)
    std = account(api, "standard")
    fc = svc.forecast(std, 230_000, None)  # 30,000 free + 200,000 additional = 550,000 yen (R-PLAN-2)
    assert (fc["additional"], fc["additional_cost_yen"]) == (200_000, "550000")


def test_close_twice_yields_one_invoice_and_a_late_message_lands_on_the_next(api, make_service):
    svc = make_service(date(2026, 12, 1))
    aid = account(api, "standard")
    fill(svc, aid, 30_010)  # 10 additional messages at 3 yen
    assert svc.close_month("2026-11", [aid]) == {aid: "closed"}
    first = svc.invoice(aid, "2026-11")
    assert svc.close_month("2026-11", [aid]) == {aid: "already_closed"}
    assert svc.invoice(aid, "2026-11") == first
    assert first["totals"] == {"subtotal": "15030", "tax": "1503", "total": "16533"}
    # A send of November counted after the close (e.g. a delayed ledger write).
    svc.ledger.record(aid, "late-1", "push", 5, 1_795_000_000_000)
    svc.now_ms = lambda: noon_jst_ms(date(2027, 1, 1))
    assert svc.close_month("2026-12", [aid]) == {aid: "closed"}
    december = svc.invoice(aid, "2026-12")
    assert december["adjustments"] == [{"month": "2026-11", "invoiced": 30_010, "late": 5}]
    assert any(li["description"].startswith("late usage 2026-11") for li in december["lines"])
    assert svc.invoice(aid, "2026-11") == first  # the closed invoice never changes


def test_daily_rollup_quota_check_and_points(api, make_service, line, stack):
    svc = make_service()
    aid = account(api, "light")
    fill(svc, aid, 7)
    other = account(api, "light")
    assert svc.daily_rollup(only=[other]) == {other: 0}  # an operator re-run for one account
    assert svc.usage(aid)["daily_rollup"] is None  # the others are left alone
    svc.daily_rollup()
    assert svc.usage(aid)["daily_rollup"] == {"day": "2026-11-22", "billable_messages": 7}
    line.consumption = 12  # 5 sent from LINE Official Account Manager, outside tsunagu
    assert svc.quota_check()[aid] == {"line": 12, "tsunagu": 7, "outside_tsunagu": 5}
    assert svc.usage(aid)["line_quota_check"] == {"day": "2026-11-22", "line": 12, "tsunagu": 7, "outside_tsunagu": 5}
    # R-PTS-1: a contractor-linked customer with two lines (3,000 + 1,690 yen) -> 46 points, once.
    _, out = api.call("POST", "/accounts", {"name": "isp"}, {"Authorization": f"Bearer {OPERATOR_KEY}"})
    isp, auth = out["account_id"], {"Authorization": f"Bearer {out['api_key']}"}
    rows = [
        {
            "member_number": "N0123456789",
            "login_id": "taro",
            "password": "pw-123456",
            "lines": [{"line_id": "L1", "monthly_base_fee": 3000}, {"line_id": "L2", "monthly_base_fee": 1690}],
        }
    ]
    status, res = api.call("POST", f"/accounts/{isp}/members", {"members": rows}, auth)
    assert status == 200, res
    user = "U" + "c" * 32
    wiring.link_store()._put_new(
        {"PK": f"ACCOUNT#{isp}", "SK": "LINK#CONTRACTOR#N0123456789", "user_id": user, "linked_at": 1}
    )
    assert svc.grant_points("2026-11")[isp] == 1
    assert svc.grant_points("2026-11")[isp] == 0  # once per month
    (statement,) = svc.points(isp, "2026-11")
    assert (statement["points"], statement["monthly_base_fee"], statement["user_id"]) == (46, 4690, user)


def test_a_reservation_left_open_past_the_retry_key_window_is_given_back(api, make_service, line):
    """LINE did not answer and the caller never retried: after LINE's 24-hour retry-key window the
    reservation can no longer be committed, so the daily job returns it to the month's quota."""
    import time as clock

    svc = make_service()
    aid = account(api, "communication")  # 200 free messages
    line.fail_with = LineApiError(503, "busy")
    lost = str(uuid.uuid4())
    with pytest.raises(UpstreamError):
        svc.send(aid, "multicast", {"to": users(5), "messages": TEXT}, lost, None)
    kept = str(uuid.uuid4())
    svc.send(aid, "multicast", {"to": users(2), "messages": TEXT}, kept, None)
    assert svc.store.reserved(aid, "2026-11") == 7
    now = int(clock.time() * 1000)
    assert svc.release_stale(now + 23 * 3_600_000) == {}  # still inside the window: a retry may come
    assert svc.store.open_reservations(aid, now + 25 * 3_600_000) == [lost]  # the committed one is not open
    assert svc.release_stale(now + 25 * 3_600_000) == {aid: 1}
    assert svc.release_stale(now + 25 * 3_600_000) == {}  # once
    assert svc.store.reserved(aid, "2026-11") == 2 and svc.store.reservation(aid, lost) is None
    # A retry that comes anyway is a new message at LINE: reserved and counted afresh, once.
    assert svc.send(aid, "multicast", {"to": users(5), "messages": TEXT}, lost, None)["status"] == "sent"
    assert svc.usage(aid)["by_kind"] == {"multicast_messages": 7}


def test_bad_narrowcast_limits_and_a_standard_send_past_the_list_price(api, make_service):
    """Nothing tsunagu cannot price goes out: past R-PLAN-2's last tier a contract price applies."""
    svc = make_service()
    aid = account(api, "standard")
    for limit in ("abc", [5], {"max": True}, {"max": 10**40}, {"max": 0}):
        with pytest.raises(Exception) as e:
            svc.send(aid, "narrowcast", {"messages": TEXT, "limit": limit}, str(uuid.uuid4()), None)
        assert getattr(e.value, "code", None) == "narrowcast_limit", limit
    assert svc.month_limit(aid, date(2026, 11, 22))[0] == 30_000 + 10_000_000
    with pytest.raises(QuotaRefused):
        svc.send(aid, "narrowcast", {"messages": TEXT, "limit": {"max": 20_000_000}}, str(uuid.uuid4()), None)
    assert svc.store.reserved(aid, "2026-11") == 0


def test_a_retry_in_the_next_month_is_reserved_and_capped_there(api, make_service, line):
    svc = make_service(date(2026, 11, 30))
    aid = account(api, "communication")  # 200 free messages a month
    key, body = str(uuid.uuid4()), {"to": users(150), "messages": TEXT}
    line.fail_with = LineApiError(503, "busy")
    with pytest.raises(UpstreamError):
        svc.send(aid, "multicast", body, key, None)
    svc.now_ms = lambda: noon_jst_ms(date(2026, 12, 1))
    fill_dec = str(uuid.uuid4())
    assert svc.store.reserve(aid, fill_dec, "2026-12", 100, None)  # December already holds 100
    with pytest.raises(QuotaRefused):  # 150 more would pass December's 200
        svc.send(aid, "multicast", body, key, None)
    assert svc.store.reserved(aid, "2026-11") == 0  # November's reservation was given back
    assert svc.store.reserved(aid, "2026-12") == 100
    svc.store.release(aid, fill_dec)
    assert svc.send(aid, "multicast", body, key, None)["status"] == "sent"
    assert svc.usage(aid, "2026-12")["billable_messages"] == 150 and svc.usage(aid, "2026-11")["billable_messages"] == 0


def test_one_accounts_bad_data_does_not_stop_the_close_of_the_others(api, make_service):
    svc = make_service(date(2026, 12, 1))
    bad, good = account(api, "standard"), account(api, "standard")
    # Two overlapping Call Plus subscriptions written past the API's check (e.g. an old record).
    for start in ("2026-11-01", "2026-11-15"):
        svc.store.put_option(
            bad, {"option": "call_plus", "start": start, "end": None, "yearly": False, "first_use": True}
        )
    assert svc.close_month("2026-11", [bad, good]) == {bad: "failed", good: "closed"}
    assert svc.invoice(good, "2026-11")["totals"]["total"] == "16500"
