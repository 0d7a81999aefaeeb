"""LINE's 429 with Retry-After, played by the sandbox, drives tsunagu's back-off end to end: the
notification sender puts the notification back on its queue until after Retry-After, and a send
through the API is answered 429 with Retry-After; the same retry key then completes it once
(issue 15, item 5)."""

from __future__ import annotations

import itertools
import time
import uuid

import pytest

from tests.e2e.conftest import OPERATOR_KEY, RunningStack, new_account
from tsunagu.notifications.phone import line_hash
from tsunagu_local.client import request

pytestmark = pytest.mark.e2e
USER = "U" + "c" * 32


def _limit(stack: RunningStack, path: str, **rule: object) -> None:
    assert request("PUT", f"{stack.sandbox}/_sandbox/rate-limits", {"path": path, **rule}).status == 200


def test_the_send_api_backs_off_on_429_and_the_retry_key_sends_once(local_stack: RunningStack):
    api, sb = local_stack.api, local_stack.sandbox
    aid, auth = new_account(local_stack, plan="communication")
    path = "/v2/bot/message/push"
    request("DELETE", f"{sb}/_sandbox/calls")
    _limit(local_stack, path, next=1, retryAfter=1)
    send = {"kind": "push", "body": {"to": USER, "messages": [{"type": "text", "text": "hi"}]}}
    send["retry_key"] = str(uuid.uuid4())
    try:
        first = request("POST", f"{api}/accounts/{aid}/messages", send, headers=auth)
        assert first.status == 429 and first.json["error"]["code"] == "line_rate_limited", first.text
        assert first.headers["retry-after"] == "1"
        calls = request("GET", f"{sb}/_sandbox/calls?path={path}").json["calls"]
        assert [c["status"] for c in calls] == [429]
        time.sleep(1)  # the Retry-After LINE gave
        again = request("POST", f"{api}/accounts/{aid}/messages", send, headers=auth)
        assert again.status == 200, again.text
        assert again.json["recipients"] == 1
        calls = request("GET", f"{sb}/_sandbox/calls?path={path}").json["calls"]
        assert [c["status"] for c in calls] == [429, 200]
        assert calls[1]["headers"]["x-line-retry-key"] == send["retry_key"]
        assert calls[1]["headers"]["authorization"].startswith("Bearer ")
        assert calls[1]["headers"]["content-type"] == "application/json"
        # The same key once more: LINE is not called again, the send is not counted twice.
        third = request("POST", f"{api}/accounts/{aid}/messages", send, headers=auth)
        assert third.status == 200 and third.json["status"] == "already_sent", third.text
        assert len(request("GET", f"{sb}/_sandbox/calls?path={path}").json["calls"]) == 2
    finally:
        request("DELETE", f"{sb}/_sandbox/rate-limits")


def test_the_notification_sender_waits_retry_after_through_its_queue(local_stack: RunningStack):
    api, sb = local_stack.api, local_stack.sandbox
    r = request(
        "POST",
        f"{api}/accounts",
        {"name": "throttled", "account_type": "premium", "certified_provider": True},
        headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
    )
    aid, auth = r.json["account_id"], {"Authorization": f"Bearer {r.json['api_key']}"}
    ch = request("POST", f"{sb}/_sandbox/channels", {}).json
    creds = {"channel_secret": ch["channelSecret"], "access_token": ch["accessToken"]}
    assert request("PUT", f"{api}/accounts/{aid}/channel", creds, headers=auth).status == 200
    content = {
        "template_key": "shipment_completed_ja",
        "body": {
            "emphasizedItem": {"itemKey": "date_001_ja", "content": "{{date}}"},
            "items": [{"itemKey": "order_number_001_ja", "content": "{{order}}"}],
        },
    }
    t = request(
        "POST",
        f"{api}/accounts/{aid}/notification-templates",
        {"name": "shipped", "kind": "template", "content": content},
        headers=auth,
    ).json
    request(
        "POST", f"{api}/accounts/{aid}/notification-templates/{t['template_id']}/approve", {"version": 1}, headers=auth
    )
    e164 = "+819087654321"
    pnp = {"reachable": [line_hash(e164)], "undelivered": [line_hash(e164)]}
    assert request("PUT", f"{sb}/_sandbox/pnp", pnp).status == 200
    path = "/v2/bot/message/pnp/templated/push"
    request("DELETE", f"{sb}/_sandbox/calls")
    _limit(local_stack, path, next=2, retryAfter=1)  # two refusals: the third attempt gets through
    try:
        items = [{"reference": "t-1", "phone": "090-8765-4321", "parameters": {"date": "11/22", "order": "t-1"}}]
        r = request(
            "POST",
            f"{api}/accounts/{aid}/notifications",
            {"template_id": t["template_id"], "items": items},
            headers=auth,
        )
        assert r.status == 202, r.text
        deadline = time.monotonic() + 30
        while True:
            report = request("GET", f"{api}/accounts/{aid}/notifications/{r.json['batch_id']}", headers=auth).json
            if report["counts"]["sent"] == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert report["counts"]["sent"] == 1, report
        calls = request("GET", f"{sb}/_sandbox/calls?path={path}").json["calls"]
        assert [c["status"] for c in calls] == [429, 429, 202]
        # Each try came after the Retry-After LINE gave (a message timer), not in a tight loop.
        assert all(b["at"] - a["at"] >= 0.9 for a, b in itertools.pairwise(calls))
        assert len({c["headers"]["x-line-delivery-tag"] for c in calls}) == 1  # the same notification each time
    finally:
        request("DELETE", f"{sb}/_sandbox/rate-limits")
        request("PUT", f"{sb}/_sandbox/pnp", {"reachable": [], "undelivered": []})
