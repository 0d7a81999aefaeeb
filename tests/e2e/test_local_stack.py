"""End to end on the local stack: real HTTP, real SQS polling, the LINE sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.conftest import sign
from tests.e2e.conftest import OPERATOR_KEY, RunningStack
from tsunagu_local.client import request

pytestmark = pytest.mark.e2e


def new_user() -> str:
    return "U" + os.urandom(16).hex()


@pytest.fixture
def oa(local_stack: RunningStack) -> dict[str, Any]:
    """An account wired to a sandbox channel whose webhook points at tsunagu."""
    api, sb = local_stack.api, local_stack.sandbox
    r = request(
        "POST",
        f"{api}/accounts",
        {
            "name": "e2e shop",
            "greeting": "ようこそ！",
            "auto_responses": [{"keywords": ["営業時間"], "reply": "9時から21時"}],
        },
        headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
    )
    assert r.status == 201, r.text
    aid, key = r.json["account_id"], r.json["api_key"]
    ch = request("POST", f"{sb}/_sandbox/channels", {"webhookUrl": f"{api}/line/{aid}/webhook"}).json
    auth = {"Authorization": f"Bearer {key}"}
    assert (
        request(
            "PUT",
            f"{api}/accounts/{aid}/channel",
            {"channel_secret": ch["channelSecret"], "access_token": ch["accessToken"]},
            headers=auth,
        ).status
        == 200
    )
    return {"id": aid, "auth": auth, "channel": ch, "key": key}


def send(local_stack: RunningStack, oa: dict[str, Any], *events: dict[str, Any], **opts: Any) -> dict[str, Any]:
    r = request(
        "POST",
        f"{local_stack.sandbox}/_sandbox/channels/{oa['channel']['channelId']}/webhooks",
        {"events": list(events), **opts},
    )
    assert r.status == 200, r.text
    return r.json


def replies_to(local_stack: RunningStack, text: str) -> list[dict[str, Any]]:
    calls = request("GET", f"{local_stack.sandbox}/_sandbox/calls?path=/v2/bot/message/reply").json["calls"]
    return [c for c in calls if c["body"]["messages"][0].get("text") == text]


def test_health_answers_200(local_stack):
    r = request("GET", f"{local_stack.api}/health")
    assert (r.status, r.json) == (200, {"status": "ok"})


def test_unknown_path_is_404(local_stack):
    assert request("GET", f"{local_stack.api}/nope").status == 404


def test_follow_records_the_friend_and_the_greeting_reaches_the_sandbox(local_stack, oa):
    user = new_user()
    w = send(local_stack, oa, {"type": "follow", "source": {"type": "user", "userId": user}})
    assert w["status"] == 200
    local_stack.drain()
    r = request("GET", f"{local_stack.api}/accounts/{oa['id']}/friends/{user}", headers=oa["auth"])
    assert (r.status, r.json["state"]) == (200, "friend")
    greeting = [c for c in replies_to(local_stack, "ようこそ！") if c["status"] == 200]
    assert len(greeting) >= 1


def test_keyword_message_gets_the_auto_response(local_stack, oa):
    user = new_user()
    w = send(
        local_stack,
        oa,
        {
            "type": "message",
            "source": {"type": "user", "userId": user},
            "message": {"type": "text", "text": "営業時間"},
        },
    )
    local_stack.drain()
    token = w["events"][0]["replyToken"]
    calls = request("GET", f"{local_stack.sandbox}/_sandbox/calls?path=/v2/bot/message/reply").json["calls"]
    mine = [c for c in calls if c["body"]["replyToken"] == token]
    assert [(c["status"], c["body"]["messages"][0]["text"]) for c in mine] == [(200, "9時から21時")]
    # The reply is metered once, keyed on a hash of its token: no reply token at rest.
    ddb = local_stack.client("dynamodb")
    dump = "".join(json.dumps(ddb.scan(TableName=t)["Items"]) for t in ddb.list_tables()["TableNames"])
    assert token not in dump


def test_duplicate_and_out_of_order_deliveries_through_real_polling(local_stack, oa):
    user = new_user()
    now = int(time.time() * 1000)
    follow = {
        "type": "follow",
        "source": {"type": "user", "userId": user},
        "timestamp": now - 5000,
        "webhookEventId": "01HZZZZZZZZZZZZZZZZZZFOLLOW" + user[-4:].upper(),
    }
    unfollow = {
        "type": "unfollow",
        "source": {"type": "user", "userId": user},
        "timestamp": now,
        "webhookEventId": "01HZZZZZZZZZZZZZZZZZUNFOLLW" + user[-4:].upper(),
    }
    send(local_stack, oa, unfollow)
    send(local_stack, oa, follow)  # older, arrives late
    send(local_stack, oa, unfollow, redelivery=True)  # LINE redelivers
    send(local_stack, oa, follow, redelivery=True)
    local_stack.drain()
    r = request("GET", f"{local_stack.api}/accounts/{oa['id']}/friends", headers=oa["auth"])
    assert r.json["counts"] == {"friends": 0, "blocked": 1}
    f = request("GET", f"{local_stack.api}/accounts/{oa['id']}/friends/{user}", headers=oa["auth"]).json
    assert (f["state"], f["since_ms"]) == ("blocked", now)


def test_forged_webhook_is_401_and_enqueues_nothing(local_stack, oa):
    user = new_user()
    w = send(
        local_stack,
        oa,
        {"type": "follow", "source": {"type": "user", "userId": user}},
        signature="GhRKmvmHys4Pi8DxkF4+EayaH0OqtJtaZxgTD9fMDLs=",
    )
    assert w["status"] == 401
    local_stack.drain()
    r = request("GET", f"{local_stack.api}/accounts/{oa['id']}/friends/{user}", headers=oa["auth"])
    assert r.status == 404


def test_wrong_key_is_401_and_other_accounts_are_404_over_http(local_stack, oa):
    api = local_stack.api
    assert request("GET", f"{api}/accounts/{oa['id']}").status == 401
    assert request("GET", f"{api}/accounts/{oa['id']}", headers={"Authorization": "Bearer x"}).status == 401
    other = request(
        "POST", f"{api}/accounts", {"name": "other"}, headers={"Authorization": f"Bearer {OPERATOR_KEY}"}
    ).json["account_id"]
    r = request("GET", f"{api}/accounts/{other}", headers=oa["auth"])
    assert (r.status, r.json["error"]["code"]) == (404, "not_found")


def test_poison_record_ends_in_the_dlq_while_the_rest_of_the_batch_succeeds(local_stack, oa):
    sqs = local_stack.client("sqs")
    urls = {u.rsplit("-", 1)[-1]: u for u in sqs.list_queues()["QueueUrls"]}
    user = new_user()
    good = {
        "accountId": oa["id"],
        "receivedAt": 0,
        "event": {
            "type": "follow",
            "timestamp": 1,
            "webhookEventId": "01HPOISONTESTGOOD" + user[-9:].upper(),
            "source": {"type": "user", "userId": user},
        },
    }
    sqs.send_message_batch(
        QueueUrl=urls["FriendshipQueue"],
        Entries=[
            {"Id": "poison", "MessageBody": "{this is not json"},
            {"Id": "good", "MessageBody": json.dumps(good)},
        ],
    )
    local_stack.drain(timeout=60)
    r = request("GET", f"{local_stack.api}/accounts/{oa['id']}/friends/{user}", headers=oa["auth"])
    assert r.json["state"] == "friend"
    # The redrive happens on the receive after the last failure: on a loaded machine that can land
    # just after the drain, so the DLQ is polled for a few seconds rather than read once.
    messages = poll_dlq(local_stack, urls["FriendshipDLQ"], lambda m: m["Body"] == "{this is not json")
    bodies = [m["Body"] for m in messages]
    assert "{this is not json" in bodies
    receives = [int(m["Attributes"]["ApproximateReceiveCount"]) for m in messages if m["Body"] == "{this is not json"]
    assert receives[0] >= 5  # tried maxReceiveCount times before the redrive


def test_schedule_runs_on_demand_by_name(local_stack, oa):
    env = {**os.environ, "TSUNAGU_PORT": str(local_stack.port)}
    out = subprocess.run(
        [sys.executable, "-m", "tsunagu_local", "invoke", "FriendStatsFunction"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["result"]["accounts"] >= 1
    bad = subprocess.run(
        [sys.executable, "-m", "tsunagu_local", "invoke", "WebhookIntakeFunction"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert bad.returncode == 1


def test_no_secret_or_raw_user_id_at_rest_or_in_logs(local_stack, oa):
    user = new_user()
    send(local_stack, oa, {"type": "follow", "source": {"type": "user", "userId": user}})
    local_stack.drain()
    ddb = local_stack.client("dynamodb")
    dump = ""
    for table in ddb.list_tables()["TableNames"]:
        dump += json.dumps(ddb.scan(TableName=table)["Items"])
    secret, token = oa["channel"]["channelSecret"], oa["channel"]["accessToken"]
    assert secret not in dump and token not in dump and oa["key"] not in dump
    logs = local_stack.logs()
    assert "friendship event" in logs  # the worker did log
    for value in (secret, token, oa["key"], OPERATOR_KEY, user):
        assert value not in logs


def test_chat_history_exports_as_csv_over_http(local_stack, oa):
    user = new_user()
    send(
        local_stack,
        oa,
        {
            "type": "message",
            "source": {"type": "user", "userId": user},
            "message": {"type": "text", "text": "営業時間"},
        },
    )
    local_stack.drain()
    r = request("GET", f"{local_stack.api}/accounts/{oa['id']}/chats/{user}", headers=oa["auth"])
    assert r.status == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    text = r.body.decode("utf-8")
    assert text.startswith("\ufeff")
    assert "営業時間" in text and "9時から21時" in text  # inbound and the auto-reply
    assert "受信" in text and "送信" in text


def test_webhooks_are_relayed_to_downstream_tools_with_retries_then_the_dlq(local_stack, oa):
    sb = local_stack.sandbox
    ok_url, bad_url = f"{sb}/_sandbox/sinks/tool-ok-{oa['id']}", f"{sb}/_sandbox/sinks/tool-down-{oa['id']}"
    request("PUT", ok_url, {"fail": 2})  # two 503s, then fine
    request("PUT", bad_url, {"fail": 1000})  # always down
    r = request(
        "PATCH", f"{local_stack.api}/accounts/{oa['id']}", {"forward_urls": [ok_url, bad_url]}, headers=oa["auth"]
    )
    assert r.status == 200, r.text
    w = send(local_stack, oa, {"type": "follow", "source": {"type": "user", "userId": new_user()}})
    assert w["status"] == 200
    local_stack.drain(timeout=90)
    received = request("GET", ok_url).json["received"]
    assert len(received) == 1
    body = json.dumps(
        {"destination": oa["channel"]["botUserId"], "events": w["events"]}, ensure_ascii=False, separators=(",", ":")
    )
    assert received[0]["body"] == body  # byte for byte
    assert received[0]["signature"] == sign(oa["channel"]["channelSecret"], body.encode())  # relayed as is
    sqs = local_stack.client("sqs")
    dlq = next(u for u in sqs.list_queues()["QueueUrls"] if u.endswith("ForwardDLQ"))
    parked = [json.loads(m["Body"]) for m in poll_dlq(local_stack, dlq, lambda m: bad_url in m["Body"])]
    assert [p["url"] for p in parked] == [bad_url]


def poll_dlq(local_stack: Any, url: str, wanted: Any, rounds: int = 10) -> list[dict[str, Any]]:
    """The messages on a dead-letter queue, read until one is ``wanted``. The redrive happens on the
    receive after the last failure: on a loaded machine that can land just after a drain, so the
    queue is polled (draining between reads) rather than read once."""
    sqs = local_stack.client("sqs")
    messages: list[dict[str, Any]] = []
    for _ in range(rounds):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=1)
        messages += got.get("Messages", [])
        if any(wanted(m) for m in messages):
            break
        local_stack.drain(timeout=10)
    return messages
