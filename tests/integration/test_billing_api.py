"""The billing routes over API Gateway v2 events (moto): sends, usage, forecast, plans, options,
budgets, calls, invoices (JSON and CSV), points, and the business-day calendar (R-BIZ-1) -
including the bad inputs (4xx with stable codes, nothing written)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from tests.integration.conftest import OPERATOR_KEY, scan_all
from tsunagu import wiring


def account(api, plan="light"):
    _, out = api.call("POST", "/accounts", {"name": "shop", "plan": plan}, {"Authorization": f"Bearer {OPERATOR_KEY}"})
    aid, auth = out["account_id"], {"Authorization": f"Bearer {out['api_key']}"}
    return aid, auth


def test_send_needs_a_channel_and_valid_input(api, stack):
    aid, auth = account(api)
    body = {"kind": "push", "body": {"to": "U" + "a" * 32, "messages": [{"type": "text", "text": "x"}]}}
    status, out = api.call("POST", f"/accounts/{aid}/messages", {**body, "retry_key": str(uuid.uuid4())}, auth)
    assert (status, out["error"]["code"]) == (409, "channel_not_configured")
    before = len(scan_all(stack))
    cases = [
        ({**body, "retry_key": "not-a-uuid"}, 422, "validation_failed"),
        ({**body, "kind": "carrier-pigeon", "retry_key": str(uuid.uuid4())}, 422, "validation_failed"),
        (
            {"kind": "multicast", "body": {"to": [], "messages": []}, "retry_key": str(uuid.uuid4())},
            422,
            "message_count",
        ),
    ]
    for req, want, code in cases:
        status, out = api.call("POST", f"/accounts/{aid}/messages", req, auth)
        assert status == want, out
        if code:
            assert out["error"]["code"] == code
    assert len(scan_all(stack)) == before


def test_usage_forecast_plan_budget_options_and_calls(api):
    aid, auth = account(api, "communication")
    status, usage = api.call("GET", f"/accounts/{aid}/usage", headers=auth)
    assert status == 200 and usage["plan"] == "communication" and usage["free_messages"] == 200
    status, fc = api.call("POST", f"/accounts/{aid}/forecast", {"messages": 250}, auth)
    assert (status, fc["sendable"], fc["blocked"]) == (200, 200, 50)
    status, plan = api.call("POST", f"/accounts/{aid}/plan", {"plan": "standard"}, auth)
    assert (status, plan["plan"]) == (200, "standard")
    status, fc = api.call("POST", f"/accounts/{aid}/forecast", {"messages": 30_100}, auth)
    assert (fc["additional"], fc["additional_cost_yen"]) == (100, "300")
    status, out = api.call("PUT", f"/accounts/{aid}/budget", {"monthly_messages": 30_050}, auth)
    assert status == 200
    assert api.call("GET", f"/accounts/{aid}/usage", headers=auth)[1]["cap"] == 30_050
    today = wiring.billing_service().today()
    second = (today.replace(day=1) + timedelta(days=32)).replace(day=2)  # the 2nd of next month
    chat = {"option": "chat_plus", "start": second.isoformat()}
    for _ in range(2):  # the same order again is the same subscription: first use (the initial fee) kept
        status, out = api.call("POST", f"/accounts/{aid}/options", chat, auth)
        assert (status, out["first_use"]) == (201, True)
    cases = [
        ({**chat, "yearly": True}, 422, "invalid_option"),
        ({**chat, "start": (second + timedelta(days=10)).isoformat()}, 409, "option_overlaps"),
        ({**chat, "start": (today.replace(day=1) - timedelta(days=1)).isoformat()}, 422, "option_start_past"),
        ({**chat, "start": "2020-01-15"}, 422, "option_start_past"),
        ({**chat, "start": "9999-12-31"}, 422, "option_date_range"),
    ]
    for req, want, code in cases:
        status, out = api.call("POST", f"/accounts/{aid}/options", req, auth)
        assert (status, out["error"]["code"]) == (want, code), req
    calls = {"call_id": "c-1", "minutes": 7}
    status, out = api.call("POST", f"/accounts/{aid}/calls", calls, auth)
    assert (status, out["error"]["code"]) == (409, "call_plus_inactive")  # no minutes without Call Plus
    call_plus = {"option": "call_plus", "start": today.isoformat()}
    assert api.call("POST", f"/accounts/{aid}/options", call_plus, auth)[0] == 201
    for _ in range(2):
        status, out = api.call("POST", f"/accounts/{aid}/calls", calls, auth)
    assert out["status"] == "duplicate"
    assert api.call("GET", f"/accounts/{aid}/usage", headers=auth)[1]["by_kind"] == {"call_minutes": 7}
    for bad in ({"messages": -1}, {"messages": 10, "day": "2026-13-01"}, {"n": 1}):
        status, out = api.call("POST", f"/accounts/{aid}/forecast", bad, auth)
        assert (status, out["error"]["code"]) == (422, "validation_failed")
    status, out = api.call("GET", f"/accounts/{aid}/usage?month=2026-99", headers=auth)
    assert status == 422
    status, out = api.call("GET", f"/accounts/{aid}/usage?month=2025-01", headers=auth)
    assert (status, out["plan"]) == (200, None)  # before the account's plan: no plan, not "None"
    for bad in ({"monthly_yen": 10**40}, {"monthly_messages": 10**40}, {"monthly_yen": -1}):
        status, out = api.call("PUT", f"/accounts/{aid}/budget", bad, auth)
        assert (status, out["error"]["code"]) == (422, "validation_failed")


def test_invoice_json_csv_and_not_found(api):
    aid, auth = account(api, "standard")
    status, out = api.call("GET", f"/accounts/{aid}/invoices/2026-10", headers=auth)
    assert (status, out["error"]["code"]) == (404, "invoice_not_found")
    svc = wiring.billing_service()
    month = svc.today().strftime("%Y-%m")
    assert svc.close_month(month, [aid]) == {aid: "closed"}
    status, inv = api.call("GET", f"/accounts/{aid}/invoices/{month}", headers=auth)
    assert status == 200 and inv["totals"] == {"subtotal": "15000", "tax": "1500", "total": "16500"}
    status, text = api.call("GET", f"/accounts/{aid}/invoices/{month}?format=csv", headers=auth)
    assert status == 200 and text.splitlines()[-1].endswith(",total,,,,16500")
    status, out = api.call("GET", f"/accounts/{aid}/invoices/2026-13", headers=auth)
    assert status == 422
    _, other_auth = account(api)
    status, out = api.call("GET", f"/accounts/{aid}/invoices/{month}", headers=other_auth)
    assert status == 404


def test_calendar_earliest_start_r_biz_1(api):
    q = "product=notification&submitted_at=2026-11-20T16:59:00%2B09:00&calendar=weekends"
    status, out = api.call("GET", f"/calendar/earliest-start?{q}")
    assert status == 200, out
    late = api.call("GET", "/calendar/earliest-start?product=notification&submitted_at=2026-11-20T17:30:00%2B09:00")[1]
    assert out["earliest_start"] < late["earliest_start"]  # after 17:00 counts from the next business day
    status, out = api.call("GET", "/calendar/earliest-start?product=notification&submitted_at=2026-11-20T16:59:00")
    assert (status, out["error"]["code"]) == (422, "naive_datetime")
    status, out = api.call("GET", "/calendar/earliest-start?product=fax&submitted_at=2026-11-20T16:59:00%2B09:00")
    assert status == 422
    for when in ("2099-12-28T10:00:00", "1999-12-28T10:00:00", "9999-12-31T10:00:00", "0001-01-01T00:00:00"):
        q = f"product=call_plus&calendar=jp_holidays&submitted_at={when}%2B09:00"
        status, out = api.call("GET", f"/calendar/earliest-start?{q}")
        assert (status, out["error"]["code"]) == (422, "date_out_of_range"), when


def test_patching_the_plan_goes_through_the_plan_history(api):
    """R-PLAN-3 holds whichever route the business uses."""
    aid, auth = account(api, "standard")
    status, out = api.call("PATCH", f"/accounts/{aid}", {"plan": "light"}, auth)
    assert (status, out["settings"]["plan"]) == (200, "light")
    status, plan = api.call("GET", f"/accounts/{aid}/plan", headers=auth)
    assert plan["plan"] == "standard"  # a downgrade waits for the 1st
    assert [p["plan"] for p in plan["pending"]] == ["light"]


def test_points_statements_over_http(api):
    """R-PTS-1 statements as the business reads them."""
    aid, auth = account(api)
    member = {"member_number": "N0123456789", "login_id": "hanako", "password": "pw-123456"}
    member["lines"] = [{"line_id": "L1", "monthly_base_fee": 2980}]
    assert api.call("POST", f"/accounts/{aid}/members", {"members": [member]}, auth)[0] == 200
    link = {"PK": f"ACCOUNT#{aid}", "SK": "LINK#CONTRACTOR#N0123456789", "user_id": "U" + "d" * 32, "linked_at": 1}
    wiring.link_store()._put_new(link)
    assert wiring.billing_service().grant_points("2026-11")[aid] == 1
    status, out = api.call("GET", f"/accounts/{aid}/points/2026-11", headers=auth)
    assert status == 200, out
    assert out["statements"][0]["points"] == 29 and out["statements"][0]["monthly_base_fee"] == 2980
