"""Notification messages against moto: templates and their review status, batches with per-item
refusals and duplicates, the sender (exactly once, retries, LINE's refusals, push to a linked
friend), delivery reconciliation, the 24-hour sweep, and no raw phone number at rest."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from tests.integration.conftest import OPERATOR_KEY, scan_all
from tsunagu import wiring
from tsunagu.infrastructure.line_api import LineApiError, LineRateLimited, LineRefused
from tsunagu.notifications.phone import line_hash
from tsunagu.notifications.service import RetryLater, SenderConfig

SHIPPED = {"messages": [{"type": "text", "text": "{{name}}様、ご注文 {{order}} を発送しました。"}]}


def account(api, **settings):
    body = {"name": "shop", "account_type": "verified", "certified_provider": True, **settings}
    _, out = api.call("POST", "/accounts", body, {"Authorization": f"Bearer {OPERATOR_KEY}"})
    aid, auth = out["account_id"], {"Authorization": f"Bearer {out['api_key']}"}
    api.call("PUT", f"/accounts/{aid}/channel", {"channel_secret": "0" * 32, "access_token": "token-" + "x" * 30}, auth)
    return aid, auth


def approved_template(api, aid, auth, content=SHIPPED, kind="flexible"):
    status, t = api.call(
        "POST", f"/accounts/{aid}/notification-templates", {"name": "shipped", "kind": kind, "content": content}, auth
    )
    assert status == 201, t
    status, t = api.call(
        "POST", f"/accounts/{aid}/notification-templates/{t['template_id']}/approve", {"version": t["version"]}, auth
    )
    assert (status, t["status"]) == (200, "approved")
    return t["template_id"]


def item(ref, phone="090-1234-5678", **params):
    return {"reference": ref, "phone": phone, "parameters": {"name": "山田", "order": ref, **params}}


def queued(stack) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    url = stack.queue_urls["NotificationQueue"]
    out = []
    while True:
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        msgs = r.get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


class FakeLine:
    """LINE's push and notification-message endpoints, scripted per call."""

    def __init__(self, script: list[Any] | None = None):
        self.script = list(script or [])
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _next(self) -> None:
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, Exception):
                raise step

    def push(self, token, to, messages, retry_key):
        self.calls.append(("push", {"to": to, "messages": messages, "retry_key": retry_key}))
        self._next()
        return "ok"

    def pnp_push(self, token, to_hash, body, tag):
        self.calls.append(("pnp", {"to": to_hash, "tag": tag, **body}))
        self._next()


@pytest.fixture
def line():
    return FakeLine()


@pytest.fixture
def sender(stack, line):
    s = wiring.notification_sender()
    s.line = line
    s.sleep = lambda _s: None
    s.config = SenderConfig(rate_per_second=10_000, backoff_s=0.0)
    return s


def report(api, aid, auth, batch_id):
    status, r = api.call("GET", f"/accounts/{aid}/notifications/{batch_id}", headers=auth)
    assert status == 200, r
    return r


# ----------------------------------------------------------------------------- eligibility
@pytest.mark.parametrize(("account_type", "certified"), [("unverified", True), ("verified", False), ("premium", False)])
def test_only_verified_or_premium_accounts_of_certified_providers_may_send(api, stack, account_type, certified):
    """R-PNP-3."""
    aid, auth = account(api)
    tid = approved_template(api, aid, auth)
    api.call("PATCH", f"/accounts/{aid}", {"account_type": account_type, "certified_provider": certified}, auth)
    status, out = api.call("POST", f"/accounts/{aid}/notifications", {"template_id": tid, "items": [item("o-1")]}, auth)
    assert (status, out["error"]["code"]) == (403, "notification_not_allowed")
    assert queued(stack) == []


# ----------------------------------------------------------------------------- templates
def test_template_is_pending_until_approved_and_a_content_change_sends_it_back(api):
    aid, auth = account(api)
    status, t = api.call(
        "POST", f"/accounts/{aid}/notification-templates", {"name": "n", "kind": "flexible", "content": SHIPPED}, auth
    )
    assert (status, t["status"], t["parameters"]) == (201, "pending", ["name", "order"])
    tid = t["template_id"]
    status, out = api.call("POST", f"/accounts/{aid}/notifications", {"template_id": tid, "items": [item("o-1")]}, auth)
    assert (status, out["error"]["code"]) == (409, "template_not_approved")
    # Approving a version that is not the current one is refused (the reviewer saw other content).
    status, out = api.call("POST", f"/accounts/{aid}/notification-templates/{tid}/approve", {"version": 9}, auth)
    assert (status, out["error"]["code"]) == (409, "version_conflict")
    status, t = api.call("POST", f"/accounts/{aid}/notification-templates/{tid}/approve", {"version": 1}, auth)
    assert t["status"] == "approved"
    # A new name keeps the approval; new content needs a new review (R-PNP-3).
    status, t = api.call("PATCH", f"/accounts/{aid}/notification-templates/{tid}", {"name": "renamed"}, auth)
    assert (status, t["status"]) == (200, "approved")
    changed = {"messages": [{"type": "text", "text": "{{name}}様、ご注文を発送しました。"}]}
    status, t = api.call("PATCH", f"/accounts/{aid}/notification-templates/{tid}", {"content": changed}, auth)
    assert (status, t["status"]) == (200, "pending")
    status, out = api.call("POST", f"/accounts/{aid}/notifications", {"template_id": tid, "items": [item("o-1")]}, auth)
    assert out["error"]["code"] == "template_not_approved"
    status, listed = api.call("GET", f"/accounts/{aid}/notification-templates", headers=auth)
    assert [x["template_id"] for x in listed["templates"]] == [tid]


@pytest.mark.parametrize(
    ("kind", "content", "code"),
    [
        ("flexible", {"messages": [{"type": "text", "text": "期間限定セール開催中!"}]}, "advertising_content"),
        ("flexible", {"messages": [{"type": "text", "text": "ＣＯＵＰＯＮ inside"}]}, "advertising_content"),
        ("flexible", {"messages": [{"type": "image", "originalContentUrl": "https://x/y.png"}]}, "message_type"),
        ("flexible", {"messages": []}, "message_count"),
        ("template", {"template_key": "Bad Key"}, "template_key"),
        (
            "template",
            {
                "template_key": "shipment_completed_ja",
                "body": {"items": [{"itemKey": "a", "content": "x"}, {"itemKey": "a", "content": "y"}]},
            },
            "template_items",
        ),
    ],
)
def test_bad_or_advertising_templates_are_refused_and_nothing_is_stored(api, stack, kind, content, code):
    aid, auth = account(api)
    before = len(scan_all(stack))
    status, out = api.call(
        "POST", f"/accounts/{aid}/notification-templates", {"name": "x", "kind": kind, "content": content}, auth
    )
    assert (status, out["error"]["code"]) == (422, code)
    assert len(scan_all(stack)) == before


# ----------------------------------------------------------------------------- batches
def test_items_are_refused_one_by_one_and_a_duplicate_reference_is_accepted_once(api, stack):
    aid, auth = account(api)
    tid = approved_template(api, aid, auth)
    items = [
        item("o-1", "090-1234-5678"),
        item("o-2", "０８０－１１１１－２２２２"),  # full-width
        item("o-3", "+66 81 234 5678"),  # Thailand
        item("o-4", "+62 812 3456 7890"),  # Indonesia: not in the default countries
        item("o-5", "12345"),
        item("o-6", "+1 202 555 0143"),  # USA
        {"reference": "o-7", "phone": "09012345678", "parameters": {"name": "x"}},  # {{order}} missing
        {"reference": "bad ref!", "phone": "09012345678"},
        item("o-1", "090-1234-5678"),  # same reference again in the batch
        "not an object",
    ]
    status, out = api.call("POST", f"/accounts/{aid}/notifications", {"template_id": tid, "items": items}, auth)
    assert status == 202, out
    assert out["accepted"] == 3
    assert {(r["index"], r["code"]) for r in out["refused"]} == {
        (3, "country_not_allowed"),
        (4, "invalid_phone"),
        (5, "country_not_allowed"),
        (6, "missing_parameter"),
        (7, "invalid_reference"),
        (9, "invalid_reference"),
    }
    assert [d["index"] for d in out["duplicates"]] == [8]
    # Refusals never echo the number back.
    assert "12345" not in json.dumps(out["refused"]) and "202 555" not in json.dumps(out)
    messages = queued(stack)
    assert len(messages) == 3
    assert {m["to"] for m in messages} >= {line_hash("+819012345678"), line_hash("+818011112222")}
    # The same references again (a client retry): all duplicates, nothing queued twice.
    status, again = api.call("POST", f"/accounts/{aid}/notifications", {"template_id": tid, "items": items[:3]}, auth)
    assert (again["accepted"], len(again["duplicates"])) == (0, 3)
    assert {d["batch_id"] for d in again["duplicates"]} == {out["batch_id"]}
    r = report(api, aid, auth, out["batch_id"])
    assert (r["submitted"], r["accepted"], r["refused"], r["duplicates"]) == (10, 3, 6, 1)
    assert r["counts"]["accepted"] == 3


def test_indonesia_is_a_setting(api, stack):
    aid, auth = account(api, notification_countries=["JP", "ID"])
    tid = approved_template(api, aid, auth)
    items = [item("o-1", "+62 812 3456 7890"), item("o-2", "+66 81 234 5678")]
    _, out = api.call("POST", f"/accounts/{aid}/notifications", {"template_id": tid, "items": items}, auth)
    assert out["accepted"] == 1 and out["refused"][0]["code"] == "country_not_allowed"


def test_batch_shape_errors_are_4xx_and_write_nothing(api, stack):
    aid, auth = account(api)
    tid = approved_template(api, aid, auth)
    before = len(scan_all(stack))
    cases = [
        ({"template_id": tid, "items": []}, 422),
        ({"template_id": tid, "items": [item(f"o-{i}") for i in range(1001)]}, 422),
        ({"template_id": "ntpl_" + "0" * 21, "items": [item("o-1")]}, 404),
        ({"items": [item("o-1")]}, 422),
    ]
    for body, want in cases:
        status, out = api.call("POST", f"/accounts/{aid}/notifications", body, auth)
        assert status == want, out
        assert out["error"]["code"]
    status, out = api.call("POST", f"/accounts/{aid}/notifications", raw=b"{", headers=auth)
    assert status == 400
    assert len(scan_all(stack)) == before
    assert queued(stack) == []


# ----------------------------------------------------------------------------- sender
def submit(api, stack, aid, auth, tid, items):
    status, out = api.call("POST", f"/accounts/{aid}/notifications", {"template_id": tid, "items": items}, auth)
    assert status == 202, out
    return out["batch_id"], queued(stack)


def test_sent_once_even_when_the_message_is_delivered_twice(api, stack, sender, line):
    aid, auth = account(api, notification_routing="always_notification")
    tid = approved_template(api, aid, auth)
    batch_id, (msg,) = submit(api, stack, aid, auth, tid, [item("o-1")])
    assert sender.send(msg) == "sent"
    assert sender.send(msg) == "already_sent"  # SQS redelivers: no second LINE call
    assert len(line.calls) == 1
    kind, call = line.calls[0]
    assert kind == "pnp" and call["to"] == line_hash("+819012345678") and 16 <= len(call["tag"]) <= 100
    assert call["messages"][0]["text"] == "山田様、ご注文 o-1 を発送しました。"
    r = report(api, aid, auth, batch_id)
    assert r["notifications"][0]["state"] == "sent" and r["notifications"][0]["route"] == "pnp"
    month = time.strftime("%Y-%m", time.gmtime(time.time() + 9 * 3600))
    assert wiring.usage_ledger().month_totals(aid, month) == {"notification_messages": 1}


def test_a_5xx_is_retried_and_then_succeeds(api, stack, sender, line):
    aid, auth = account(api)
    tid = approved_template(api, aid, auth)
    batch_id, (msg,) = submit(api, stack, aid, auth, tid, [item("o-1")])
    line.script = [LineApiError(500, "boom"), LineApiError(0, "timed out")]
    assert sender.send(msg) == "sent"
    assert len(line.calls) == 3
    assert report(api, aid, auth, batch_id)["notifications"][0]["state"] == "sent"


def test_persistent_5xx_hands_the_message_back_and_a_later_delivery_sends_it(api, stack, sender, line):
    aid, auth = account(api)
    tid = approved_template(api, aid, auth)
    batch_id, (msg,) = submit(api, stack, aid, auth, tid, [item("o-1")])
    line.script = [LineApiError(503, "busy")] * 3
    with pytest.raises(RetryLater):
        sender.send(msg)
    assert report(api, aid, auth, batch_id)["notifications"][0]["state"] == "accepted"
    assert sender.send(msg) == "sent"
    assert len(line.calls) == 4


def _spy_on_timers(sender) -> list[tuple[dict[str, Any], int]]:
    """What the sender puts back on the (real, moto) queue, and with which message timer."""
    timers: list[tuple[dict[str, Any], int]] = []
    real = sender.queue.send_later

    def send_later(route: str, body: str, delay_s: int) -> None:
        timers.append((json.loads(body), delay_s))
        real(route, body, delay_s)

    sender.queue.send_later = send_later
    return timers


def _delayed(stack) -> int:
    attrs = boto3.client("sqs").get_queue_attributes(
        QueueUrl=stack.queue_urls["NotificationQueue"], AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )
    return int(attrs["Attributes"]["ApproximateNumberOfMessagesDelayed"])


def test_lines_429_puts_the_notification_back_for_after_retry_after_without_calling_again(api, stack, sender, line):
    """Issue 15: a 429 is not retried in the same delivery (that only spends LINE's rate limit):
    the claim is released and the notification goes back on the queue, due after Retry-After."""
    aid, auth = account(api)
    tid = approved_template(api, aid, auth)
    batch_id, (msg,) = submit(api, stack, aid, auth, tid, [item("o-1")])
    timers = _spy_on_timers(sender)
    line.script = [LineRateLimited("The API rate limit has been exceeded. Try again later.", 3)]
    assert sender.send(msg) == "rate_limited"
    assert len(line.calls) == 1
    assert report(api, aid, auth, batch_id)["notifications"][0]["state"] == "accepted"
    ((again, delay),) = timers
    assert delay == 3 and again == {**msg, "rl": 1}
    assert _delayed(stack) == 1 and queued(stack) == []  # on the queue, not visible before its time
    assert sender.send(again) == "sent" and len(line.calls) == 2
    assert sender.send(again) == "already_sent" and len(line.calls) == 2


def test_429_without_retry_after_waits_a_second_and_a_channel_limited_for_long_goes_the_ordinary_way(
    api, stack, sender, line
):
    from tsunagu.notifications.service import MAX_RATE_LIMITED_ROUNDS

    aid, auth = account(api)
    tid = approved_template(api, aid, auth)
    _, (msg,) = submit(api, stack, aid, auth, tid, [item("o-1")])
    timers = _spy_on_timers(sender)
    line.script = [LineRateLimited("The API rate limit has been exceeded. Try again later.", None)] * 2
    assert sender.send(msg) == "rate_limited"
    ((again, delay),) = timers
    assert delay == 1
    with pytest.raises(RetryLater):  # rounds used up: the visibility timeout and the DLQ decide
        sender.send({**again, "rl": MAX_RATE_LIMITED_ROUNDS})
    assert len(timers) == 1


def test_lines_monthly_limit_fails_a_push_for_good(api, stack, sender, line):
    aid, auth = account(api)
    tid = approved_template(api, aid, auth)
    batch_id, (msg,) = submit(api, stack, aid, auth, tid, [item("o-1")])
    line.script = [LineRateLimited('{"message":"You have reached your monthly limit."}', None)]
    assert sender.send(msg) == "failed"
    r = report(api, aid, auth, batch_id)
    assert r["notifications"][0]["state"] == "failed" and r["notifications"][0]["reason"] == "line_monthly_limit"


def test_422_is_final_with_the_reason_and_listed_as_undelivered(api, stack, sender, line):
    aid, auth = account(api)
    tid = approved_template(api, aid, auth)
    batch_id, msgs = submit(api, stack, aid, auth, tid, [item("o-1"), item("o-2", "080-2222-3333")])
    line.script = [LineRefused(422, "Failed to send messages")]
    outcomes = [sender.send(m) for m in sorted(msgs, key=lambda m: m["p"]["order"])]
    assert outcomes == ["failed", "sent"]
    assert sender.send(msgs[0]) == "already_sent"
    r = report(api, aid, auth, batch_id)
    assert r["counts"]["failed"] == 1 and r["notifications"][0]["reason"] == "no_reachable_user"
    status, csv_text = api.call("GET", f"/accounts/{aid}/notifications/{batch_id}/undelivered", headers=auth)
    assert status == 200
    assert csv_text.splitlines() == ["\ufeffreference,state,reason,sent_at", "o-1,failed,no_reachable_user,"]


def test_delivery_event_before_the_send_is_recorded(api, stack, sender, line):
    """LINE may deliver (and send the ``delivery`` event) before the sender records ``sent``."""
    aid, auth = account(api)
    tid = approved_template(api, aid, auth)
    batch_id, (msg,) = submit(api, stack, aid, auth, tid, [item("o-1")])
    reconciler = wiring.delivery_reconciler()

    def deliver_during_call(token, to_hash, body, tag):
        line.calls.append(("pnp", {"tag": tag}))
        assert reconciler.delivered(aid, {"type": "delivery", "delivery": {"data": tag}}) == "delivered"

    line.pnp_push = deliver_during_call
    assert sender.send(msg) == "delivered_first"
    r = report(api, aid, auth, batch_id)
    n = r["notifications"][0]
    assert n["state"] == "delivered" and n["sent_at"] and n["delivered_at"]
    # The event again (LINE redelivers webhooks): nothing changes.
    assert reconciler.delivered(aid, {"type": "delivery", "delivery": {"data": msg["t"]}}) == "duplicate"
    # Not one of ours: a hashed phone number (sent without a tag, outside tsunagu).
    assert reconciler.delivered(aid, {"type": "delivery", "delivery": {"data": "f" * 64}}) == "not_ours"
    month = time.strftime("%Y-%m", time.gmtime(time.time() + 9 * 3600))
    assert wiring.usage_ledger().month_totals(aid, month) == {"notification_messages": 1, "notification_delivered": 1}


def test_sweep_marks_undelivered_after_24_hours(api, stack, sender, line):
    aid, auth = account(api)
    tid = approved_template(api, aid, auth)
    batch_id, msgs = submit(api, stack, aid, auth, tid, [item("o-1"), item("o-2", "080-2222-3333")])
    for m in msgs:
        assert sender.send(m) == "sent"
    delivered_tag = next(m["t"] for m in msgs if m["p"]["order"] == "o-2")
    wiring.delivery_reconciler().delivered(aid, {"type": "delivery", "delivery": {"data": delivered_tag}})
    sweep = wiring.notification_sweep()
    now = int(time.time() * 1000)
    assert sweep.run(now + 23 * 3600 * 1000) == {}  # not yet 24 hours
    assert sweep.run(now + 24 * 3600 * 1000 + 60_000) == {aid: 1}
    assert sweep.run(now + 25 * 3600 * 1000) == {}  # once
    r = report(api, aid, auth, batch_id)
    assert [(x["reference"], x["state"]) for x in r["notifications"]] == [("o-1", "undelivered"), ("o-2", "delivered")]
    _, csv_text = api.call("GET", f"/accounts/{aid}/notifications/{batch_id}/undelivered", headers=auth)
    assert csv_text.splitlines()[1].startswith("o-1,undelivered,,")
    # A delivery event that comes after the sweep gave up still counts.
    undelivered_tag = next(m["t"] for m in msgs if m["p"]["order"] == "o-1")
    assert wiring.delivery_reconciler().delivered(aid, {"type": "delivery", "delivery": {"data": undelivered_tag}}) == (
        "delivered"
    )


def test_a_linked_member_who_is_a_friend_gets_a_push_with_a_retry_key(api, stack, sender, line):
    aid, auth = account(api)
    api.call(
        "POST", f"/accounts/{aid}/members", {"members": [{"member_number": "1234567", "phone": "09012345678"}]}, auth
    )
    user = "U" + "a" * 32
    link_store = wiring.link_store()
    link_store._put_new({"PK": f"ACCOUNT#{aid}", "SK": "LINK#MEMBER#1234567", "user_id": user, "linked_at": 1})
    from tsunagu.messaging.friendship import FriendSnapshot, FriendState, Transition

    snap = FriendSnapshot(FriendState.FRIEND, 1, 1)
    assert wiring.friend_store().apply(aid, user, "ev-1", None, Transition(snap, 1, 0))
    tid = approved_template(api, aid, auth)
    batch_id, msgs = submit(api, stack, aid, auth, tid, [item("o-1", "+81 90 1234 5678"), item("o-2", "08022223333")])
    by_order = {m["p"]["order"]: m for m in msgs}
    assert "+81" not in json.dumps(msgs) and "9012345678" not in json.dumps(msgs)
    assert sender.send(by_order["o-1"]) == "sent"
    assert sender.send(by_order["o-2"]) == "sent"
    (k1, push), (k2, _) = line.calls
    assert (k1, push["to"], k2) == ("push", user, "pnp")
    assert len(push["retry_key"]) == 36
    r = report(api, aid, auth, batch_id)
    assert [x["route"] for x in r["notifications"]] == ["push", "pnp"]
    month = time.strftime("%Y-%m", time.gmtime(time.time() + 9 * 3600))
    assert wiring.usage_ledger().month_totals(aid, month) == {"push_messages": 1, "notification_messages": 1}


def test_no_raw_phone_number_at_rest(api, stack, sender, line):
    aid, auth = account(api)
    tid = approved_template(api, aid, auth)
    phones = ["090-1234-5678", "080 1111 2222", "+66 81 234 5678"]
    _, msgs = submit(api, stack, aid, auth, tid, [item(f"o-{i}", p) for i, p in enumerate(phones)])
    for m in msgs:
        sender.send(m)
    dump = json.dumps(scan_all(stack), ensure_ascii=False)
    for raw in ("9012345678", "8011112222", "812345678", "+819012345678", line_hash("+819012345678")):
        assert raw not in dump


# ----------------------------------------------------------------------------- found in review
def test_numbers_in_template_content_round_trip_exactly(api, stack, sender, line):
    """A location's float and a flex box's integer come back to LINE as they were approved
    (DynamoDB would hand them back as Decimal, and refuses floats)."""
    aid, auth = account(api, notification_routing="always_notification")
    content = {
        "messages": [
            {"type": "text", "text": "{{name}}様、店舗はこちらです。"},
            {"type": "location", "title": "本店", "address": "東京都", "latitude": 35.681236, "longitude": 139.767125},
        ]
    }
    tid = approved_template(api, aid, auth, content=content)
    status, t = api.call("PATCH", f"/accounts/{aid}/notification-templates/{tid}", {"name": "renamed"}, auth)
    assert (status, t["status"], t["content"]) == (200, "approved", content)  # a new name keeps its review
    _, (msg,) = submit(
        api, stack, aid, auth, tid, [{"reference": "r-1", "phone": "09012345678", "parameters": {"name": "山田"}}]
    )
    assert sender.send(msg) == "sent"
    sent = line.calls[0][1]["messages"][1]
    assert (sent["latitude"], sent["longitude"]) == (35.681236, 139.767125) and type(sent["latitude"]) is float


def test_letters_in_a_number_are_refused_never_read_as_a_keypad(api, stack):
    aid, auth = account(api)
    tid = approved_template(api, aid, auth)
    items = [item("k-1", phone="090-1234-ABCD"), item("k-2", phone="090CALLNOW1"), item("k-3")]
    status, out = api.call("POST", f"/accounts/{aid}/notifications", {"template_id": tid, "items": items}, auth)
    assert status == 202 and out["accepted"] == 1
    assert [(r["reference"], r["code"]) for r in out["refused"]] == [("k-1", "invalid_phone"), ("k-2", "invalid_phone")]


def test_unstorable_or_oversized_input_is_refused_cleanly(api, stack):
    aid, auth = account(api)
    tid = approved_template(api, aid, auth)
    before = len(scan_all(stack))
    # A lone surrogate anywhere in the body: refused before anything is written.
    bad = {"template_id": tid, "items": [item("s-1"), item("s-2", name="\ud800")]}
    status, out = api.call("POST", f"/accounts/{aid}/notifications", bad, auth)
    assert (status, out["error"]["code"]) == (422, "invalid_text")
    status, out = api.call("POST", f"/accounts/{aid}/notifications", raw=b"[" * 100_000 + b"]" * 100_000, headers=auth)
    assert (status, out["error"]["code"]) == (400, "invalid_json")
    assert len(scan_all(stack)) == before
    # A junk reference is refused without being echoed back or stored; the good item goes on.
    items = [item("ok-1"), {"reference": "x" * 500_000, "phone": "09012345678"}, item("p-1", **{"x" * 40: "v"})]
    status, out = api.call("POST", f"/accounts/{aid}/notifications", {"template_id": tid, "items": items}, auth)
    assert status == 202 and out["accepted"] == 1
    assert [(r["reference"], r["code"]) for r in out["refused"]] == [
        (None, "invalid_reference"),
        ("p-1", "invalid_parameters"),
    ]
    status, r = api.call("GET", f"/accounts/{aid}/notifications/{out['batch_id']}", headers=auth)
    assert (status, r["accepted"], [x["code"] for x in r["refusals"]]) == (
        200,
        1,
        ["invalid_reference", "invalid_parameters"],
    )


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        ({"messages": [{"type": ["text"]}]}, "flexible"),
        ({"messages": [{"type": {"t": 1}}]}, "flexible"),
        ({"template_key": "shipment_completed_ja\n", "body": {}}, "template"),
        ({"template_key": "k", "body": {"emphasizedItem": {"itemKey": "a\n", "content": "x"}}}, "template"),
        ({"template_key": "k", "body": {"emphasizedItem": {"itemKey": "a", "content": "x" * 16}}}, "template"),
        ({"template_key": "k", "body": {"items": [{"itemKey": "a", "content": "x" * 301}]}}, "template"),
    ],
)
def test_template_shapes_line_would_refuse_are_422(api, stack, content, kind):
    aid, auth = account(api)
    body = {"name": "t", "kind": kind, "content": content}
    status, out = api.call("POST", f"/accounts/{aid}/notification-templates", body, auth)
    assert status == 422 and out["error"]["code"] != "internal_error", out


def test_a_filled_button_url_past_1000_characters_is_refused_per_item(api, stack):
    aid, auth = account(api)
    url = "https://example.com/" + "p" * 970 + "{{id}}"
    content = {"template_key": "shipment_completed_ja", "body": {"buttons": [{"buttonKey": "track", "url": url}]}}
    tid = approved_template(api, aid, auth, content=content, kind="template")
    items = [
        {"reference": "b-1", "phone": "09012345678", "parameters": {"id": "1"}},
        {"reference": "b-2", "phone": "09012345679", "parameters": {"id": "9" * 300}},
    ]
    status, out = api.call("POST", f"/accounts/{aid}/notifications", {"template_id": tid, "items": items}, auth)
    assert status == 202 and out["accepted"] == 1
    assert [(r["reference"], r["code"]) for r in out["refused"]] == [("b-2", "parameter_too_long")]


def test_an_account_that_lost_eligibility_after_the_batch_sends_nothing(api, stack, sender, line):
    """R-PNP-3 holds at send time too: the account became unverified after the batch was accepted."""
    aid, auth = account(api)
    tid = approved_template(api, aid, auth)
    batch_id, (msg,) = submit(api, stack, aid, auth, tid, [item("e-1")])
    status, out = api.call("PATCH", f"/accounts/{aid}", {"account_type": "unverified"}, auth)
    assert status == 200, out
    assert sender.send(msg) == "failed" and line.calls == []
    r = report(api, aid, auth, batch_id)
    assert (r["notifications"][0]["state"], r["notifications"][0]["reason"]) == ("failed", "notification_not_allowed")
