"""Audiences and campaigns against moto: tags, fields and segments over HTTP; a campaign's states,
its snapshot with the hold-out left out, one reservation, chunks of <= 500 sent once under SQS
redelivery and racing workers, the usage ledger, quota refusal, cancel, schedules, the report
(R-MSG-1, R-MSG-2, R-LINK-7)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest

from tests.integration.conftest import OPERATOR_KEY
from tsunagu import keys, wiring
from tsunagu.billing.store import DynamoBillingStore
from tsunagu.campaigns import domain as d
from tsunagu.campaigns.service import ChunkBusy, schedule_name
from tsunagu.config import get_settings
from tsunagu.errors import LineApiError, LineRefused
from tsunagu.infrastructure.dynamodb import to_item
from tsunagu.linking.register import MemberRecord
from tsunagu.messaging.friendship import FriendSnapshot, FriendState, Transition

TEXT = [{"type": "text", "text": "セールのお知らせ"}]


class FakeLine:
    """LINE's multicast as it behaves: a retry key accepted once (then 409 -> accepted-before)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], str]] = []
        self.keys: set[str] = set()
        self.fail: list[Exception] = []
        self.insight: dict[str, dict[str, Any]] = {}
        self.audiences: list[list[str]] = []
        self.fail_on: str | None = None

    def send(self, token: str, kind: str, body: dict[str, Any], retry_key: str) -> str:
        self.calls.append((kind, body, retry_key))
        if self.fail:
            raise self.fail.pop(0)
        if retry_key in self.keys:
            return "accepted-before"
        self.keys.add(retry_key)
        return "sent"

    def create_audience(self, token: str, description: str, user_ids: list[str]) -> int:
        self.calls.append(("audience_create", {"audiences": list(user_ids)}, ""))
        if self.fail_on == "audience_create":
            self.fail_on = None
            raise LineApiError(503, "busy")
        self.audiences.append(list(user_ids))
        return len(self.audiences) - 1

    def add_to_audience(self, token: str, group_id: int, user_ids: list[str]) -> None:
        self.calls.append(("audience_add", {"audiences": list(user_ids)}, ""))
        if self.fail_on == "audience_add":
            self.fail_on = None
            raise LineApiError(503, "busy")
        self.audiences[group_id] += user_ids

    def narrowcast(self, token: str, body: dict[str, Any], retry_key: str) -> str | None:
        return None if self.send(token, "narrowcast", body, retry_key) == "accepted-before" else "req-1"

    def narrowcast_progress(self, token: str, request_id: str) -> dict[str, Any]:
        return {"phase": "succeeded", "successCount": 1}

    def unit_insight(self, token: str, unit: str, first: date, last: date) -> dict[str, Any]:
        return self.insight.get(unit, {"overview": {"uniqueImpression": None, "uniqueClick": None}})


@pytest.fixture
def line(stack) -> FakeLine:
    fake = FakeLine()
    wiring.campaigns().line = fake
    return fake


def uid(i: int) -> str:
    return f"U{i:032x}"


def account(api, plan: str = "standard") -> tuple[str, dict[str, str]]:
    _, out = api.call("POST", "/accounts", {"name": "shop", "plan": plan}, {"Authorization": f"Bearer {OPERATOR_KEY}"})
    aid, auth = out["account_id"], {"Authorization": f"Bearer {out['api_key']}"}
    api.call("PUT", f"/accounts/{aid}/channel", {"channel_secret": "0" * 32, "access_token": "token-" + "x" * 30}, auth)
    today = datetime.now(UTC).date()
    DynamoBillingStore(get_settings().table_name).replace_plan_history(aid, [], [(today.replace(day=1), plan)])
    return aid, auth


def friends(aid: str, n: int, blocked: set[int] = frozenset(), linked_store: dict[int, str] | None = None) -> None:
    """``n`` friends (some blocked); ``linked_store``: friend index -> store of its linked member."""
    store = wiring.friend_store()
    now = int(datetime.now(UTC).timestamp() * 1000) - 40 * 86_400_000
    for i in range(n):
        state = FriendState.BLOCKED if i in blocked else FriendState.FRIEND
        t = Transition(FriendSnapshot(state, now, now), int(state is FriendState.FRIEND), int(i in blocked))
        assert store.apply(aid, uid(i), f"ev-{aid}-{i}", None, t)
    members = []
    ddb = boto3.client("dynamodb")
    for i, shop in (linked_store or {}).items():
        number = f"{100000 + i}"
        members.append(MemberRecord(number, store=shop, age_band="30s"))
        item = {**keys.user_link(aid, uid(i), f"MEMBER#{number}"), "entity": "user_link", "user_id": uid(i)}
        ddb.put_item(TableName=get_settings().table_name, Item=to_item(item))
    if members:
        wiring.member_register().put(aid, members)


def bulk_friends(aid: str, n: int) -> None:
    """``n`` friends written in batches (the items and counter the friendship worker writes)."""
    ddb = boto3.client("dynamodb")
    table = get_settings().table_name
    since = int(datetime.now(UTC).timestamp() * 1000) - 40 * 86_400_000
    items = [
        {
            **keys.friend(aid, uid(i)),
            "entity": "friend",
            "user_id": uid(i),
            "state": "friend",
            "since_ms": since,
            "last_event_ms": since,
        }
        for i in range(n)
    ]
    for i in range(0, n, 25):
        ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": to_item(it)}} for it in items[i : i + 25]]})
    ddb.update_item(
        TableName=table,
        Key=to_item(keys.friend_counts(aid)),
        UpdateExpression="ADD friends :f SET entity = :e",
        ExpressionAttributeValues=to_item({":f": n, ":e": "friend_counts"}),
    )


def queue_messages() -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    url = get_settings().campaign_queue_url
    out = []
    while True:
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        batch = r.get("Messages", [])
        if not batch:
            return out
        for m in batch:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def run(messages: list[dict[str, Any]]) -> list[str]:
    c = wiring.campaigns()
    return [
        c.launch(m["a"], m["c"]) if m["k"] == "launch" else c.send_chunk(m["a"], m["c"], int(m["i"])) for m in messages
    ]


def ab_campaign(api, aid: str, auth: dict[str, str], rule: dict[str, Any], **extra: Any) -> str:
    body = {
        "name": "winter sale",
        "rule": rule,
        "variants": [
            {"name": "A", "ratio": 50, "messages": TEXT},
            {"name": "B", "ratio": 50, "messages": [{"type": "text", "text": "B案"}]},
        ],
        "holdout_percent": 10,
        **extra,
    }
    status, out = api.call("POST", f"/accounts/{aid}/campaigns", body, auth)
    assert status == 201, out
    assert out["state"] == "draft"
    return str(out["campaign_id"])


def test_tags_fields_and_a_segment_preview_of_linked_members_in_one_store(api, line):
    aid, auth = account(api)
    friends(aid, 30, blocked={1}, linked_store={0: "S01", 1: "S01", 2: "S02", 3: "S01"})
    assert api.call("PUT", f"/accounts/{aid}/tags/vip", None, auth)[0] == 200
    assert api.call("PUT", f"/accounts/{aid}/fields/points", {"type": "number"}, auth)[0] == 200
    status, out = api.call(
        "POST", f"/accounts/{aid}/friend-tags", {"user_ids": [uid(0), uid(1), uid(5)], "add": ["vip"]}, auth
    )
    assert (status, out["friends"]) == (200, 3)
    assert api.call("PATCH", f"/accounts/{aid}/audience/{uid(5)}", {"fields": {"points": 120}}, auth)[1]["fields"] == {
        "points": 120
    }
    rule = {"all": [{"linked": True}, {"attribute": "store", "eq": "S01"}]}
    status, out = api.call("POST", f"/accounts/{aid}/segments/preview", {"rule": rule}, auth)
    # uid(1) is linked in S01 but blocked: never a recipient
    assert (status, out["count"], out["sample"], out["friends_evaluated"]) == (200, 2, [uid(0), uid(3)], 30)
    status, seg = api.call("POST", f"/accounts/{aid}/segments", {"name": "S01 members", "rule": rule}, auth)
    assert status == 201
    out = api.call("POST", f"/accounts/{aid}/segments/{seg['segment_id']}/preview", None, auth)[1]
    assert out["count"] == 2
    vip = api.call(
        "POST",
        f"/accounts/{aid}/segments/preview",
        {"rule": {"any": [{"tag": "vip"}, {"field": "points", "gte": 100}]}},
        auth,
    )
    assert vip[1]["count"] == 2  # uid(0) and uid(5); uid(1) blocked
    # Browsing a rule's friends a page at a time (the console's friend filter), in user-id order.
    linked = sorted([uid(0), uid(2), uid(3)])  # uid(1) is linked but blocked
    seen, after = [], None
    while True:
        body = {"rule": {"linked": True}, "limit": 2, **({"after": after} if after else {})}
        status, page = api.call("POST", f"/accounts/{aid}/segments/browse", body, auth)
        assert (status, page["count"]) == (200, 3), page
        seen += [f["user_id"] for f in page["friends"]]
        assert all(f["linked"] for f in page["friends"])
        if not (after := page["next"]):
            break
    assert seen == linked
    tagged = api.call("POST", f"/accounts/{aid}/segments/browse", {"rule": {"tag": "vip"}}, auth)[1]
    assert [(f["user_id"], f["tags"]) for f in tagged["friends"]] == sorted([(uid(0), ["vip"]), (uid(5), ["vip"])])
    for bad in (
        {"rule": {"linked": True}, "limit": 0},
        {"rule": {"linked": True}, "after": "x"},
        {"rule": {"tag": "no"}},
    ):
        assert api.call("POST", f"/accounts/{aid}/segments/browse", bad, auth)[0] == 422
    # CSV bulk: one bad row and nothing is written
    bad = "user_id,tag\n" + f"{uid(7)},vip\n" + f"{uid(8)},nope\n"
    status, out = api.call(
        "POST", f"/accounts/{aid}/friend-tags/import", raw=bad.encode(), headers={**auth, "content-type": "text/csv"}
    )
    assert (status, out["error"]["code"]) == (422, "unknown_tag")
    assert api.call("GET", f"/accounts/{aid}/audience/{uid(7)}", None, auth)[1]["tags"] == []
    good = "user_id,tag\n" + f"{uid(7)},vip\n" + f"{uid(0)},-vip\n"
    status, out = api.call(
        "POST", f"/accounts/{aid}/friend-tags/import", raw=good.encode(), headers={**auth, "content-type": "text/csv"}
    )
    assert (status, out) == (200, {"rows": 2, "friends": 2})
    assert api.call("GET", f"/accounts/{aid}/audience/{uid(0)}", None, auth)[1]["tags"] == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"rule": {"tag": "unknown"}}, "unknown_tag"),
        ({"rule": {"field": "nope", "eq": "1"}}, "unknown_field"),
        ({"rule": {"not": {"not": {"not": {"not": {"not": {"not": {"linked": True}}}}}}}}, "rule_too_deep"),
        ({"rule": {"any": [{"linked": True}] * 70}}, "rule_too_large"),
    ],
)
def test_bad_rules_are_4xx_with_a_stable_code(api, line, body, code):
    aid, auth = account(api)
    status, out = api.call("POST", f"/accounts/{aid}/segments/preview", body, auth)
    assert (status, out["error"]["code"]) == (422, code)
    assert api.call("POST", f"/accounts/{aid}/segments", {"name": "x", **body}, auth)[0] == 422
    assert api.call("GET", f"/accounts/{aid}/segments", None, auth)[1]["segments"] == []


def test_ab_campaign_with_a_holdout_sends_each_chunk_once_under_redelivery(api, line):
    aid, auth = account(api)
    friends(aid, 1_230, blocked={3, 4})
    cid = ab_campaign(api, aid, auth, {"blocked": False})
    fc = api.call("POST", f"/accounts/{aid}/campaigns/{cid}/forecast", {}, auth)[1]
    assert fc["audience"] == 1_228 and fc["groups"]["holdout"] + fc["recipients"] == 1_228
    assert fc["billing"]["requested"] == fc["recipients"] and fc["fits"] is True
    status, out = api.call("POST", f"/accounts/{aid}/campaigns/{cid}/schedule", {}, auth)
    assert (status, out["state"]) == (202, "scheduled")
    launch = queue_messages()
    assert launch == [{"k": "launch", "a": aid, "c": cid}]
    assert run(launch + launch) == ["launched", "launched"]  # a redelivered launch resumes
    chunks = queue_messages()
    view = wiring.campaigns().view(aid, cid)
    n_chunks = view["snapshot"]["chunks"]
    assert view["state"] == "sending" and len(chunks) == 2 * n_chunks and n_chunks >= 3
    # Every chunk message delivered twice (the doubled launch), then all of them again
    run(chunks)
    run(chunks)
    per_key = Counter(key for _, _, key in line.calls)
    assert len(per_key) == n_chunks and set(per_key.values()) == {1}  # one LINE call per chunk
    sent_to = [u for kind, body, _ in line.calls for u in body["to"]]
    assert all(kind == "multicast" for kind, _, _ in line.calls)
    assert all(len(body["to"]) <= 500 for _, body, _ in line.calls)
    assert len(sent_to) == len(set(sent_to)) == view["snapshot"]["recipients"]
    variants = [d.Variant("A", 50, tuple(TEXT)), d.Variant("B", 50, tuple(TEXT))]
    holdout = {uid(i) for i in range(1_230) if d.assign(cid, uid(i), variants, 10) == d.HOLDOUT}
    assert holdout and not holdout & set(sent_to)  # the hold-out never receives it
    for _, body, _ in line.calls:
        unit = body["customAggregationUnits"][0]
        assert all(d.assign(cid, u, variants, 10) == unit for u in body["to"])  # stable assignment
    final = wiring.campaigns().view(aid, cid)
    assert final["state"] == "sent" and final["progress"]["recipients_sent"] == len(sent_to)
    usage = wiring.billing_service().usage(aid)
    assert usage["by_kind"] == {"multicast_messages": len(sent_to)}
    month = wiring.billing_service().today().strftime("%Y-%m")
    billing = DynamoBillingStore(get_settings().table_name)
    assert billing.reserved(aid, month) == len(sent_to)
    assert billing.reservation(aid, d.reservation_id(aid, cid))["state"] == "committed"
    # sent, so no longer cancellable
    status, out = api.call("POST", f"/accounts/{aid}/campaigns/{cid}/cancel", None, auth)
    assert (status, out["error"]["code"]) == (409, "campaign_not_cancellable")


def test_over_quota_the_campaign_fails_and_nothing_is_sent(api, line):
    aid, auth = account(api, "communication")  # 200 free messages
    friends(aid, 260)
    cid = ab_campaign(api, aid, auth, {"blocked": False}, holdout_percent=0)
    assert api.call("POST", f"/accounts/{aid}/campaigns/{cid}/forecast", {}, auth)[1]["fits"] is False
    api.call("POST", f"/accounts/{aid}/campaigns/{cid}/schedule", {}, auth)
    assert run(queue_messages()) == ["quota_exceeded"]
    out = wiring.campaigns().view(aid, cid)
    assert (out["state"], out["failure"]) == ("failed", "quota_exceeded")
    assert line.calls == [] and queue_messages() == []
    month = wiring.billing_service().today().strftime("%Y-%m")
    assert DynamoBillingStore(get_settings().table_name).reserved(aid, month) == 0
    # A month already used up is refused at the API, 409, nothing scheduled.
    store = DynamoBillingStore(get_settings().table_name)
    key = str(uuid.uuid4())
    assert store.reserve(aid, key, wiring.billing_service().today().strftime("%Y-%m"), 200, None)
    cid2 = ab_campaign(api, aid, auth, {"blocked": False})
    status, out = api.call("POST", f"/accounts/{aid}/campaigns/{cid2}/schedule", {}, auth)
    assert (status, out["error"]["code"]) == (409, "quota_exceeded")
    assert wiring.campaigns().view(aid, cid2)["state"] == "draft" and queue_messages() == []


def test_a_scheduled_campaign_has_a_one_off_schedule_and_cancel_removes_it(api, line):
    aid, auth = account(api)
    friends(aid, 5)
    cid = ab_campaign(api, aid, auth, {"blocked": False})
    at = datetime.now(UTC) + timedelta(days=2)
    status, out = api.call("POST", f"/accounts/{aid}/campaigns/{cid}/schedule", {"at": at.isoformat()}, auth)
    assert (status, out["state"]) == (202, "scheduled")
    sched = boto3.client("scheduler").get_schedule(Name=schedule_name(aid, cid))
    assert sched["ScheduleExpression"].startswith("at(") and sched["ScheduleExpressionTimezone"] == "Asia/Tokyo"
    assert json.loads(sched["Target"]["Input"]) == {"k": "launch", "a": aid, "c": cid}
    assert sched["Target"]["Arn"] == get_settings().campaign_queue_arn
    assert queue_messages() == []  # nothing goes out before the schedule fires
    status, out = api.call("POST", f"/accounts/{aid}/campaigns/{cid}/cancel", None, auth)
    assert (status, out["state"]) == (200, "cancelled")
    assert boto3.client("scheduler").list_schedules()["Schedules"] == []
    # a launch message that was already on its way sends nothing
    assert run([{"k": "launch", "a": aid, "c": cid}]) == ["not_launched_cancelled"]
    assert line.calls == []
    status, out = api.call("POST", f"/accounts/{aid}/campaigns/{cid}/schedule", {}, auth)
    assert (status, out["error"]["code"]) == (409, "campaign_state")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (
            {"variants": [{"name": "A", "ratio": 60, "messages": TEXT}, {"name": "B", "ratio": 30, "messages": TEXT}]},
            "ratios_sum",
        ),
        ({"variants": [{"name": "A", "ratio": 100, "messages": TEXT * 4}]}, "message_count"),
        ({"rule": {"tag": "nope"}}, "unknown_tag"),
        ({"rule": None}, "audience"),
    ],
)
def test_bad_campaigns_are_refused_and_nothing_is_written(api, line, change, code):
    aid, auth = account(api)
    body = {
        "name": "x",
        "rule": {"blocked": False},
        "variants": [{"name": "A", "ratio": 100, "messages": TEXT}],
        **change,
    }
    status, out = api.call("POST", f"/accounts/{aid}/campaigns", body, auth)
    assert (status, out["error"]["code"]) == (422, code)
    assert api.call("GET", f"/accounts/{aid}/campaigns", None, auth)[1]["campaigns"] == []


@pytest.mark.parametrize(
    ("offset", "code"), [(timedelta(minutes=-5), "schedule_past"), (timedelta(days=31), "schedule_too_far")]
)
def test_a_schedule_in_the_past_or_too_far_ahead_is_refused(api, line, offset, code):
    aid, auth = account(api)
    cid = ab_campaign(api, aid, auth, {"blocked": False})
    at = (datetime.now(UTC) + offset).isoformat()
    status, out = api.call("POST", f"/accounts/{aid}/campaigns/{cid}/schedule", {"at": at}, auth)
    assert (status, out["error"]["code"]) == (422, code)
    assert wiring.campaigns().view(aid, cid)["state"] == "draft"


def test_an_empty_audience_fails_the_launch_without_a_line_call(api, line):
    aid, auth = account(api)
    friends(aid, 3)
    api.call("PUT", f"/accounts/{aid}/tags/vip", None, auth)
    cid = ab_campaign(api, aid, auth, {"tag": "vip"})
    api.call("POST", f"/accounts/{aid}/campaigns/{cid}/schedule", {}, auth)
    assert run(queue_messages()) == ["empty_audience"]
    assert wiring.campaigns().view(aid, cid)["state"] == "failed" and line.calls == []


def test_a_refused_chunk_makes_the_campaign_partially_sent_and_gives_its_quota_back(api, line):
    aid, auth = account(api)
    friends(aid, 700)
    cid = ab_campaign(api, aid, auth, {"blocked": False}, holdout_percent=0)
    api.call("POST", f"/accounts/{aid}/campaigns/{cid}/schedule", {}, auth)
    run(queue_messages())
    chunks = queue_messages()
    line.fail = [LineApiError(503, "busy")]
    with pytest.raises(LineApiError):
        run(chunks[:1])  # no answer: the lease is dropped, SQS delivers it again
    line.fail = [LineRefused(400, "bad")]
    run(chunks[1:2])
    run(chunks)
    view = wiring.campaigns().view(aid, cid)
    assert view["state"] == "partially_sent"
    assert view["progress"]["chunks_failed"] == 1 and view["progress"]["chunks_sent"] == len(chunks) - 1
    first_key = wiring.campaigns().store.chunk(aid, cid, 0)["retry_key"]
    assert [k for _, _, k in line.calls].count(first_key) == 2  # retried with the same retry key
    month = wiring.billing_service().today().strftime("%Y-%m")
    assert DynamoBillingStore(get_settings().table_name).reserved(aid, month) == view["progress"]["recipients_sent"]


def test_tracked_links_count_clicks_and_the_report_states_its_test(api, line):
    aid, auth = account(api)
    friends(aid, 400)
    msgs = [
        {
            "type": "template",
            "altText": "sale",
            "template": {
                "type": "buttons",
                "text": "sale",
                "actions": [{"type": "uri", "label": "open", "uri": "https://shop.example/sale"}],
            },
        }
    ]
    body = {
        "name": "links",
        "rule": {"blocked": False},
        "variants": [{"name": "A", "ratio": 50, "messages": msgs}, {"name": "B", "ratio": 50, "messages": msgs}],
        "holdout_percent": 10,
        "track_links": True,
    }
    status, out = api.call("POST", f"/accounts/{aid}/campaigns", body, auth)
    cid = out["campaign_id"]
    links = {link["variant"]: link["token"] for link in out["tracked_links"]}
    uri = out["variants"][0]["messages"][0]["template"]["actions"][0]["uri"]
    assert uri.endswith(f"/r/{links['A']}") and "shop.example" not in uri
    api.call("POST", f"/accounts/{aid}/campaigns/{cid}/schedule", {}, auth)
    run(queue_messages())
    run(queue_messages())
    for _ in range(30):
        api.call("GET", f"/r/{links['A']}")
    status, _ = api.call("GET", f"/r/{links['B']}")
    assert status == 302
    assert api.call("GET", "/r/AAAAAAAAAAAAAAAA")[0] == 404
    line.insight = {
        "A": {"overview": {"uniqueImpression": 90, "uniqueClick": 25}},
        "B": {"overview": {"uniqueImpression": None, "uniqueClick": None}},
    }
    api.call("POST", f"/accounts/{aid}/campaigns/{cid}/insight", None, auth)
    report = api.call("GET", f"/accounts/{aid}/campaigns/{cid}/report", None, auth)[1]
    a, b, hold = report["groups"]
    assert (a["group"], b["group"], hold["group"]) == ("A", "B", "holdout")
    assert a["tracked_clicks"] == 30 and b["tracked_clicks"] == 1 and hold["sent"] == 0
    assert a["click_rate"] == round(30 / a["sent"], 6)
    assert a["line_unique_impressions"] == 90 and b["line_unique_impressions"] is None  # null stays null
    cmp = report["comparisons"][0]
    expected = d.two_proportion_z(30, a["sent"], 1, b["sent"])
    assert cmp["p_value"] == pytest.approx(expected.p_value) and cmp["p_value"] < 0.05
    assert report["winner"] == "A" and "z-test" in report["test"]
    status, csv_text = api.call("GET", f"/accounts/{aid}/campaigns/{cid}/report?format=csv", None, auth)
    assert status == 200 and csv_text.splitlines()[1].startswith("A,50,")


def test_a_chunk_held_by_another_worker_is_not_sent_twice_and_a_dead_workers_lease_is_taken_over(api, line):
    aid, auth = account(api)
    friends(aid, 10)
    cid = ab_campaign(api, aid, auth, {"blocked": False}, holdout_percent=0)
    api.call("POST", f"/accounts/{aid}/campaigns/{cid}/schedule", {}, auth)
    run(queue_messages())
    chunks = queue_messages()
    c = wiring.campaigns()
    now = c.now_ms()
    # worker 1 has claimed chunk 0 and is inside its LINE call
    assert c.store.claim_chunk(aid, cid, 0, now, 60_000)
    with pytest.raises(ChunkBusy):
        run(chunks[:1])  # worker 2: the message goes back to SQS, no LINE call
    assert line.calls == []
    # worker 1 died; once its lease has run out the next delivery sends, with the same retry key
    c.now_ms = lambda: now + 61_000
    try:
        assert run(chunks[:1]) == ["sent"]
    finally:
        c.now_ms = lambda: int(datetime.now(UTC).timestamp() * 1000)
    assert len(line.calls) == 1
    assert len(chunks) == 2  # one chunk per variant
    assert run(chunks) == ["already_done", "sent"]
    keys_sent = Counter(k for _, _, k in line.calls)
    assert keys_sent == Counter({c.store.chunk(aid, cid, i)["retry_key"]: 1 for i in range(2)})
    assert c.view(aid, cid)["state"] == "sent"


def test_a_variant_above_the_threshold_goes_out_as_one_narrowcast_to_an_uploaded_audience(api, line):
    aid, auth = account(api)
    bulk_friends(aid, 9_000)
    c = wiring.campaigns()
    c.narrowcast_above = 6_000
    body = {
        "name": "big",
        "rule": {"blocked": False},
        "variants": [{"name": "A", "ratio": 80, "messages": TEXT}, {"name": "B", "ratio": 20, "messages": TEXT}],
    }
    cid = api.call("POST", f"/accounts/{aid}/campaigns", body, auth)[1]["campaign_id"]
    api.call("POST", f"/accounts/{aid}/campaigns/{cid}/schedule", {}, auth)
    run(queue_messages())
    chunks = queue_messages()
    view = c.view(aid, cid)
    a, b = view["snapshot"]["groups"]["A"], view["snapshot"]["groups"]["B"]
    assert a > 6_000 > b and len(chunks) == 1 + -(-b // 500)  # A: one narrowcast; B: multicasts
    line.fail_on = "audience_add"  # the second part's upload gets no answer
    with pytest.raises(LineApiError):
        run(chunks[:1])
    run(chunks + chunks)  # redelivered: resumes from the part it reached
    narrow = [(k, body_, key) for k, body_, key in line.calls if k == "narrowcast"]
    assert len(narrow) == 1  # one narrowcast, however often the message came
    creates = [k for k, _, _ in line.calls if k == "audience_create"]
    uploaded = [u for group in line.audiences for u in group]
    assert len(creates) == 1 and len(line.audiences) == 1 and len(set(uploaded)) == a
    assert all(len(body_["audiences"]) <= 10_000 for k, body_, _ in line.calls if k.startswith("audience"))
    nb = narrow[0][1]
    assert nb["limit"] == {"max": a} and nb["recipient"] == {"type": "audience", "audienceGroupId": 0}
    assert nb["customAggregationUnits"] == ["A"]
    assert c.view(aid, cid)["state"] == "sent"
    usage = wiring.billing_service().usage(aid)["by_kind"]
    assert usage == {"narrowcast_messages": a, "multicast_messages": b}


def test_keyword_and_postback_rules_tag_the_friend_and_a_segment_sees_it(api, line):
    aid, auth = account(api)
    friends(aid, 3)
    for tag in ("coupon_fan", "quiet"):
        api.call("PUT", f"/accounts/{aid}/tags/{tag}", None, auth)
    rules = {
        "rules": [
            {"on": "keyword", "match": "クーポン", "add": ["coupon_fan"]},
            {"on": "postback", "match": "action=mute", "add": ["quiet"], "remove": ["coupon_fan"]},
        ]
    }
    assert api.call("PUT", f"/accounts/{aid}/tag-rules", rules, auth)[0] == 200
    bad = {"rules": [{"on": "keyword", "match": "x", "add": ["nope"]}]}
    assert api.call("PUT", f"/accounts/{aid}/tag-rules", bad, auth)[1]["error"]["code"] == "unknown_tag"
    assert len(api.call("GET", f"/accounts/{aid}/tag-rules", None, auth)[1]["rules"]) == 2
    svc = wiring.message_service()
    src = {"type": "user", "userId": uid(0)}
    text = {
        "type": "message",
        "source": src,
        "message": {"type": "text", "id": "1", "text": " クーポン "},
        "timestamp": 1,
    }
    svc.handle(aid, text, 0)
    svc.handle(aid, text, 0)  # a redelivery changes nothing more
    assert api.call("GET", f"/accounts/{aid}/audience/{uid(0)}", None, auth)[1]["tags"] == ["coupon_fan"]
    preview = api.call("POST", f"/accounts/{aid}/segments/preview", {"rule": {"tag": "coupon_fan"}}, auth)[1]
    assert (preview["count"], preview["sample"]) == (1, [uid(0)])
    svc.handle(aid, {"type": "postback", "source": src, "postback": {"data": "action=mute"}, "timestamp": 2}, 0)
    assert api.call("GET", f"/accounts/{aid}/audience/{uid(0)}", None, auth)[1]["tags"] == ["quiet"]


def test_the_daily_schedule_fetches_statistics_of_sent_campaigns_only(api, line):
    aid, auth = account(api)
    friends(aid, 30)
    sent = ab_campaign(api, aid, auth, {"blocked": False}, holdout_percent=0)
    draft = ab_campaign(api, aid, auth, {"blocked": False})
    api.call("POST", f"/accounts/{aid}/campaigns/{sent}/schedule", {}, auth)
    run(queue_messages())
    run(queue_messages())
    line.insight = {"A": {"overview": {"uniqueImpression": 21}}, "B": {"overview": {"uniqueImpression": None}}}
    assert wiring.campaigns().fetch_recent_insights([aid]) == {"fetched": 1, "failed": 0}
    report = wiring.campaigns().report(aid, sent)
    assert [g["line_unique_impressions"] for g in report["groups"]] == [21, None, None]
    assert wiring.campaigns().store.insight(aid, draft) is None


def test_a_demographic_filter_sends_every_variant_as_a_filtered_narrowcast(api, line):
    aid, auth = account(api)
    friends(aid, 40)
    cid = ab_campaign(api, aid, auth, {"blocked": False}, demographic={"genders": ["female"], "areas": ["jp_46"]})
    bad = api.call(
        "POST",
        f"/accounts/{aid}/campaigns",
        {
            "name": "x",
            "rule": {"blocked": False},
            "variants": [{"name": "A", "ratio": 100, "messages": TEXT}],
            "demographic": {"areas": ["jp_99"]},
        },
        auth,
    )
    assert (bad[0], bad[1]["error"]["code"]) == (422, "demographic_invalid")
    api.call("POST", f"/accounts/{aid}/campaigns/{cid}/schedule", {}, auth)
    run(queue_messages())
    run(queue_messages())
    narrow = [body for kind, body, _ in line.calls if kind == "narrowcast"]
    assert len(narrow) == 2 and not [k for k, _, _ in line.calls if k == "multicast"]
    assert all(
        b["filter"]
        == {
            "demographic": {
                "type": "operator",
                "and": [{"type": "gender", "oneOf": ["female"]}, {"type": "area", "oneOf": ["jp_46"]}],
            }
        }
        for b in narrow
    )
    assert wiring.campaigns().view(aid, cid)["state"] == "sent"


def test_a_demographic_filter_alone_is_an_audience_of_every_friend_narrowed_by_line(api, line):
    """Issue 17 item 3: the audience may be LINE's demographic filter only; tsunagu still draws
    the hold-out and the variants from its friends (blocked ones never), LINE narrows each part."""
    aid, auth = account(api)
    friends(aid, 40, blocked={3, 7})
    cid = ab_campaign(api, aid, auth, None, demographic={"age_gte": "age_20", "age_lt": "age_40"})
    view = api.call("GET", f"/accounts/{aid}/campaigns/{cid}", None, auth)[1]
    assert view["state"] == "draft"
    api.call("POST", f"/accounts/{aid}/campaigns/{cid}/schedule", {}, auth)
    run(queue_messages())
    run(queue_messages())
    view = wiring.campaigns().view(aid, cid)
    groups = view["snapshot"]["groups"]
    assert view["state"] == "sent" and groups["A"] + groups["B"] + groups["holdout"] == 38
    narrow = [body for kind, body, _ in line.calls if kind == "narrowcast"]
    assert len(narrow) == 2
    assert all(b["filter"]["demographic"] == {"type": "age", "gte": "age_20", "lt": "age_40"} for b in narrow)
    uploaded = {u for ids in line.audiences for u in ids}
    assert len(uploaded) == groups["A"] + groups["B"] and not uploaded & {uid(3), uid(7)}
    no_audience = {"name": "x", "variants": [{"name": "A", "ratio": 100, "messages": TEXT}]}
    status, out = api.call("POST", f"/accounts/{aid}/campaigns", no_audience, auth)
    assert (status, out["error"]["code"]) == (422, "audience")


def test_a_friends_last_message_is_a_fact_that_only_moves_forward(api, line):
    """Issue 17 item 1: the last inbound message, recorded by the message worker, read by rules."""
    aid, auth = account(api)
    friends(aid, 3)
    svc = wiring.message_service()
    now = int(datetime.now(UTC).timestamp() * 1000)

    def message(user: str, at_ms: int, kind: str = "text") -> dict[str, Any]:
        body = {"type": kind, "id": str(at_ms)} | ({"text": "こんにちは"} if kind == "text" else {})
        return {"type": "message", "source": {"type": "user", "userId": user}, "message": body, "timestamp": at_ms}

    svc.handle(aid, message(uid(0), now - 2 * 86_400_000, "sticker"), now)
    svc.handle(aid, message(uid(1), now - 20 * 86_400_000), now)
    svc.handle(aid, message(uid(1), now - 40 * 86_400_000), now)  # an older, late event: no change
    svc.handle(aid, message(uid(0), now - 2 * 86_400_000, "sticker"), now)  # a redelivery: no change
    facts = api.call("GET", f"/accounts/{aid}/audience/{uid(1)}", None, auth)[1]
    expected = datetime.fromtimestamp((now - 20 * 86_400_000) // 1000, UTC).isoformat(timespec="seconds")
    assert facts["last_inbound_at"] == expected
    recent = api.call("POST", f"/accounts/{aid}/segments/preview", {"rule": {"last_message_days": {"lt": 7}}}, auth)
    assert recent[1]["sample"] == [uid(0)]
    quiet = {"rule": {"last_message_days": {"gte": 7}}}
    assert sorted(api.call("POST", f"/accounts/{aid}/segments/preview", quiet, auth)[1]["sample"]) == [uid(1), uid(2)]
    bad = {"rule": {"last_message_days": {"lt": -1}}}
    status, out = api.call("POST", f"/accounts/{aid}/segments/preview", bad, auth)
    assert (status, out["error"]["code"]) == (422, "rule_invalid")


def test_link_unlink_grant_and_redemption_rules_tag_the_friend(api, line):
    """Issue 17 item 1: tags added and removed automatically when a link is made or released and
    when a coupon is granted or redeemed (a repeat of the same fact changes nothing more)."""
    from tests.integration.test_coupons import code_for, coupon, grant, redeem

    aid, auth = account(api)
    friends(aid, 10)
    user = uid(9)
    for tag in ("member", "ex_member", "got_milk", "used_coupon"):
        api.call("PUT", f"/accounts/{aid}/tags/{tag}", None, auth)
    cid = coupon(api, aid, auth)
    rules = {
        "rules": [
            {"on": "linked", "match": "*", "add": ["member"], "remove": ["ex_member"]},
            {"on": "unlinked", "match": "*", "add": ["ex_member"], "remove": ["member"]},
            {"on": "coupon_granted", "match": cid, "add": ["got_milk"]},
            {"on": "coupon_redeemed", "match": "*", "add": ["used_coupon"]},
        ]
    }
    status, out = api.call("PUT", f"/accounts/{aid}/tag-rules", rules, auth)
    assert status == 200, out
    bad = {"rules": [{"on": "linked", "match": "MEMBER#1", "add": ["member"]}]}
    status, out = api.call("PUT", f"/accounts/{aid}/tag-rules", bad, auth)
    assert (status, out["error"]["code"]) == (422, "rule_match")

    def tags() -> list[str]:
        return list(api.call("GET", f"/accounts/{aid}/audience/{user}", None, auth)[1]["tags"])

    nonce = "n" * 32
    wiring.link_store().put_nonce(aid, nonce, user, "MEMBER#7654321", "7654321", 2**31)
    source = {"type": "user", "userId": user}
    event = {"type": "accountLink", "source": source, "link": {"result": "ok", "nonce": nonce}}
    assert wiring.linking_service().complete(aid, event) == "linked"
    assert wiring.linking_service().complete(aid, event) == "unknown_nonce"  # a redelivery: nothing more
    assert tags() == ["member"]
    grant(api, aid, auth, cid, user)
    grant(api, aid, auth, cid, user)  # once per person: the repeat is not a new grant
    assert tags() == ["got_milk", "member"]
    status, out = redeem(api, aid, auth, code_for(aid, cid, user))
    assert status == 201, out
    assert tags() == ["got_milk", "member", "used_coupon"]
    status, _ = api.call(
        "POST", f"/accounts/{aid}/members/7654321/unlink", {"kind": "member", "reason": "本人確認済み"}, auth
    )
    assert status == 200
    assert tags() == ["ex_member", "got_milk", "used_coupon"]
    seg = {"rule": {"all": [{"tag": "ex_member"}, {"tag": "used_coupon"}]}}
    assert api.call("POST", f"/accounts/{aid}/segments/preview", seg, auth)[1]["count"] == 1
