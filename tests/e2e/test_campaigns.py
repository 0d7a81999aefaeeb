"""Campaigns on the local stack: friends from signed follow webhooks, a scheduled A/B campaign with
a hold-out fired through the local schedule invoke, multicasts to the LINE sandbox with one retry
key per chunk and the variant's aggregation unit, every chunk message redelivered and workers
racing on one chunk without a second LINE call, LINE's statistics null below 20, the report."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import OPERATOR_KEY, RunningStack
from tsunagu_local.client import request

pytestmark = pytest.mark.e2e
TEXT = [{"type": "text", "text": "冬のセール"}]


def account_with_friends(stack: RunningStack, n: int) -> tuple[str, dict[str, str], str]:
    """A Standard-plan account with a sandbox channel and ``n`` friends written by the seeder
    (the friend items and counter the friendship worker writes)."""
    from tsunagu_local import seed

    api, sb = stack.api, stack.sandbox
    r = request(
        "POST",
        f"{api}/accounts",
        {"name": "campaigns", "plan": "standard"},
        headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
    )
    aid, auth = r.json["account_id"], {"Authorization": f"Bearer {r.json['api_key']}"}
    ch = request("POST", f"{sb}/_sandbox/channels", {}).json
    creds = {"channel_secret": ch["channelSecret"], "access_token": ch["accessToken"]}
    assert request("PUT", f"{api}/accounts/{aid}/channel", creds, headers=auth).status == 200
    ddb, sm = seed.connect(stack.moto)
    table = next(t for t in ddb.list_tables()["TableNames"] if "Idempotency" not in t)
    seeder = seed.Seeder(ddb, sm, table, "tsunagu/dev", aid, show_progress=False)
    seed.run(seeder, n, 0, 0, say=lambda _: None)
    return aid, auth, ch["accessToken"]


def multicasts(stack: RunningStack, token: str) -> list[dict[str, Any]]:
    calls = request("GET", f"{stack.sandbox}/_sandbox/calls?path=/v2/bot/message/multicast").json["calls"]
    return [c for c in calls if c["headers"].get("authorization") == f"Bearer {token}"]


def test_a_scheduled_ab_campaign_fires_locally_and_each_chunk_reaches_line_once(local_stack: RunningStack) -> None:
    api = local_stack.api
    aid, auth, token = account_with_friends(local_stack, 1_100)
    body = {
        "name": "winter",
        "rule": {"blocked": False},
        "variants": [{"name": "A", "ratio": 70, "messages": TEXT}, {"name": "B", "ratio": 30, "messages": TEXT}],
        "holdout_percent": 10,
    }
    r = request("POST", f"{api}/accounts/{aid}/campaigns", body, headers=auth)
    assert r.status == 201, r.text
    cid = r.json["campaign_id"]
    at = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    r = request("POST", f"{api}/accounts/{aid}/campaigns/{cid}/schedule", {"at": at}, headers=auth)
    assert (r.status, r.json["state"]) == (202, "scheduled"), r.text
    local_stack.drain(30)
    assert multicasts(local_stack, token) == []  # nothing before the schedule fires
    fired = request("POST", f"{api}/_local/fire-schedules", {}).json["result"]["fired"]
    assert len(fired) == 1 and fired[0]["expression"].startswith("at(")
    local_stack.drain(180)
    view = request("GET", f"{api}/accounts/{aid}/campaigns/{cid}", headers=auth).json
    assert view["state"] == "sent", view
    calls = multicasts(local_stack, token)
    keys = Counter(c["headers"]["x-line-retry-key"] for c in calls)
    assert len(keys) == view["snapshot"]["chunks"] and set(keys.values()) == {1}
    assert all(c["status"] == 200 and len(c["body"]["to"]) <= 500 for c in calls)
    units = Counter(c["body"]["customAggregationUnits"][0] for c in calls for _ in c["body"]["to"])
    groups = view["snapshot"]["groups"]
    assert units == Counter({"A": groups["A"], "B": groups["B"]}) and groups["holdout"] > 50
    # Every chunk message delivered again (SQS at-least-once): no new LINE call.
    sqs = local_stack.client("sqs")
    url = next(u for u in sqs.list_queues()["QueueUrls"] if u.endswith("CampaignQueue"))
    for i in range(view["snapshot"]["chunks"]):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"k": "chunk", "a": aid, "c": cid, "i": i}))
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"k": "launch", "a": aid, "c": cid}))
    local_stack.drain(120)
    assert len(multicasts(local_stack, token)) == len(calls)
    usage = request("GET", f"{api}/accounts/{aid}/usage", headers=auth).json
    assert usage["by_kind"].get("multicast_messages") == groups["A"] + groups["B"]
    # LINE's statistics from the sandbox: 60 % of ~300 in B opened -> a number; clicks 20 % of B
    request("PUT", f"{local_stack.sandbox}/_sandbox/insight", {"impression": 0.6, "click": 0.05})
    assert request("POST", f"{api}/accounts/{aid}/campaigns/{cid}/insight", headers=auth).status == 200
    report = request("GET", f"{api}/accounts/{aid}/campaigns/{cid}/report", headers=auth).json
    a, b, hold = report["groups"]
    assert a["line_unique_impressions"] == round(groups["A"] * 0.6)
    assert b["line_unique_clicks"] is None  # 5 % of B is below 20 users: LINE's null, shown as null
    assert hold["sent"] == 0 and "z-test" in report["test"]


def test_workers_racing_on_one_chunk_make_one_line_call(
    local_stack: RunningStack, in_process: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tsunagu import wiring
    from tsunagu.campaigns.service import ChunkBusy

    sqs = local_stack.client("sqs")
    url = next(u for u in sqs.list_queues()["QueueUrls"] if u.endswith("CampaignQueue"))
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    monkeypatch.setenv("CAMPAIGN_QUEUE_URL", url)
    monkeypatch.setenv("CAMPAIGN_QUEUE_ARN", arn)
    monkeypatch.setenv("CAMPAIGN_SCHEDULER_ROLE_ARN", "arn:aws:iam::123456789012:role/tsunagu-dev-campaign-scheduler")
    wiring.reset()

    api = local_stack.api
    aid, auth, token = account_with_friends(local_stack, 40)
    body = {"name": "race", "rule": {"blocked": False}, "variants": [{"name": "A", "ratio": 100, "messages": TEXT}]}
    cid = request("POST", f"{api}/accounts/{aid}/campaigns", body, headers=auth).json["campaign_id"]
    svc = wiring.campaigns()
    # Launch in this process (the stack's worker would take the message: the schedule is not used)
    svc.store.transition(aid, cid, ["draft"], "scheduled")
    assert svc.launch(aid, cid) == "launched"  # queues the chunk: the stack's worker races us too

    def one(_: int) -> str:
        try:
            return svc.send_chunk(aid, cid, 0)
        except ChunkBusy:
            return "busy"

    with ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(one, range(12)))
    local_stack.drain(60)
    calls = multicasts(local_stack, token)
    assert len(calls) == 1 and calls[0]["status"] == 200, (outcomes, calls)
    assert request("GET", f"{api}/accounts/{aid}/campaigns/{cid}", headers=auth).json["state"] == "sent"


def test_a_variant_above_5000_goes_to_line_as_an_audience_upload_and_one_narrowcast(local_stack: RunningStack) -> None:
    api, sb = local_stack.api, local_stack.sandbox
    aid, auth, token = account_with_friends(local_stack, 5_600)
    body = {
        "name": "big",
        "rule": {"blocked": False},
        "variants": [{"name": "big_A", "ratio": 100, "messages": TEXT}],
        "holdout_percent": 5,
    }
    cid = request("POST", f"{api}/accounts/{aid}/campaigns", body, headers=auth).json["campaign_id"]
    r = request("POST", f"{api}/accounts/{aid}/campaigns/{cid}/schedule", {}, headers=auth)
    assert r.status == 202, r.text
    local_stack.drain(180)
    view = request("GET", f"{api}/accounts/{aid}/campaigns/{cid}", headers=auth).json
    n = view["snapshot"]["groups"]["big_A"]
    assert view["state"] == "sent" and n > 5_000, view
    calls = request("GET", f"{sb}/_sandbox/calls").json["calls"]
    mine = [c for c in calls if c["headers"].get("authorization") == f"Bearer {token}"]
    uploads = [c for c in mine if c["path"] == "/v2/bot/audienceGroup/upload"]
    assert [(c["method"], c["status"]) for c in uploads] == [("POST", 202), ("PUT", 202)]
    assert sum(len(c["body"]["audiences"]) for c in uploads) == n
    narrow = [c for c in mine if c["path"] == "/v2/bot/message/narrowcast"]
    assert len(narrow) == 1 and narrow[0]["status"] == 202
    assert narrow[0]["body"]["limit"] == {"max": n} and narrow[0]["body"]["customAggregationUnits"] == ["big_A"]
    assert narrow[0]["headers"]["x-line-retry-key"]
    assert not [c for c in mine if c["path"] == "/v2/bot/message/multicast"]
    usage = request("GET", f"{api}/accounts/{aid}/usage", headers=auth).json
    assert usage["by_kind"] == {"narrowcast_messages": n}
    out = request("POST", f"{api}/accounts/{aid}/campaigns/{cid}/insight", headers=auth).json
    assert out["narrowcasts"]["big_A"]["phase"] == "succeeded"
