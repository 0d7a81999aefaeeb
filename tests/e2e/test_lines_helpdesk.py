"""Mobile lines and the help desk end to end on the local stack: a contractor + user linked
friend asks 「残量」 and gets a Flex bubble (R-LINK-12), gives 500 MB to a throttled line through
the chat's confirm step (R-GIFT-1), the carrier gets the signed webhook; 32 concurrent gifts
over HTTP conserve data; an FAQ question is answered and an escalation reaches the operator
queue, and the operator's answer reaches the member (R-HELP-1)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import OPERATOR_KEY, RunningStack
from tsunagu.helpdesk.domain import hours_from
from tsunagu_local import linkflow
from tsunagu_local.client import request

pytestmark = pytest.mark.e2e
DATA = Path(__file__).resolve().parents[2] / "local" / "tsunagu_local" / "data"


@pytest.fixture
def carrier(local_stack: RunningStack) -> dict[str, Any]:
    api, sb = local_stack.api, local_stack.sandbox
    r = request(
        "POST",
        f"{api}/accounts",
        {"name": "モバイル", "link_policy": {"accepted": [["login_id_password"], ["usage_code"]]}},
        headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
    )
    aid, auth = r.json["account_id"], {"Authorization": f"Bearer {r.json['api_key']}"}
    ch = request("POST", f"{sb}/_sandbox/channels", {"webhookUrl": f"{api}/line/{aid}/webhook"}).json
    creds = {"channel_secret": ch["channelSecret"], "access_token": ch["accessToken"]}
    assert request("PUT", f"{api}/accounts/{aid}/channel", creds, headers=auth).status == 200
    member = {
        "member_number": "N0000000001",
        "login_id": "hanako",
        "password": "correct horse",
        "lines": [
            {"line_id": "L1", "usage_code": "1111222233334444"},
            {"line_id": "L2", "usage_code": "5555666677778888"},
        ],
    }
    assert request("POST", f"{api}/accounts/{aid}/members", {"members": [member]}, headers=auth).json["imported"] == 1
    lines = "line_id,member_number,allowance_mb,remaining_mb\nL1,N0000000001,3000,1000\nL2,N0000000001,3000,0\n"
    r = request(
        "POST", f"{api}/accounts/{aid}/lines/import", data=lines.encode(), headers={**auth, "Content-Type": "text/csv"}
    )
    assert r.json == {"loaded": 2}, r.text
    sink = f"{sb}/_sandbox/sinks/carrier-{aid}"
    assert (
        request("PUT", f"{api}/accounts/{aid}/lines-settings", {"carrier_webhook_url": sink}, headers=auth).status
        == 200
    )
    return {"id": aid, "auth": auth, "channel": ch, "stack": local_stack, "sink": sink}


def send(oa: dict[str, Any], user: str, event: dict[str, Any]) -> None:
    sb = oa["stack"].sandbox
    ev = {"source": {"type": "user", "userId": user}, **event}
    request("POST", f"{sb}/_sandbox/channels/{oa['channel']['channelId']}/webhooks", {"events": [ev]})
    oa["stack"].drain()


def text(oa: dict[str, Any], user: str, t: str) -> None:
    send(oa, user, {"type": "message", "message": {"type": "text", "text": t}})


def postback(oa: dict[str, Any], user: str, data: str) -> None:
    send(oa, user, {"type": "postback", "postback": {"data": data}})


def last_reply(oa: dict[str, Any]) -> dict[str, Any]:
    calls = request("GET", f"{oa['stack'].sandbox}/_sandbox/calls?path=/v2/bot/message/reply").json["calls"]
    assert calls and calls[-1]["status"] == 200, calls[-1:]
    return calls[-1]["body"]["messages"][0]


def link(oa: dict[str, Any], user: str, kind: str, **fields: str) -> None:
    page = linkflow.open_link_page(oa["stack"].sandbox, oa["channel"]["channelId"], user, oa["stack"].drain)
    r = linkflow.submit_link_form(oa["stack"].api, oa["id"], page, kind, **fields)
    assert r.status == 302, r.text
    assert request("GET", r.headers["location"]).status == 200
    oa["stack"].drain()


def line(oa: dict[str, Any], line_id: str) -> dict[str, Any]:
    return request("GET", f"{oa['stack'].api}/accounts/{oa['id']}/lines/{line_id}", headers=oa["auth"]).json


def test_remaining_data_and_a_chat_gift_lift_a_throttled_line(carrier) -> None:
    user, stranger = "U" + os.urandom(16).hex(), "U" + os.urandom(16).hex()
    text(carrier, stranger, "残量")
    assert "利用者連携" in last_reply(carrier)["text"]  # never someone else's data
    link(carrier, user, "contractor", login_id="hanako", password="correct horse")
    link(carrier, user, "user", usage_code="1111222233334444")
    text(carrier, user, "残量")
    bubble = last_reply(carrier)
    assert bubble["type"] == "flex" and "L1 1,000MB" in bubble["altText"] and "L2 0MB" in bubble["altText"]
    assert line(carrier, "L2")["speed"] == "throttled"
    postback(carrier, user, "action=gift&to=L2&mb=500")
    confirm = last_reply(carrier)
    assert confirm["type"] == "template" and confirm["template"]["type"] == "confirm"
    yes = confirm["template"]["actions"][0]["data"]
    postback(carrier, user, yes)
    assert "500MB をプレゼントしました" in last_reply(carrier)["text"]
    assert (line(carrier, "L1")["remaining_mb"], line(carrier, "L2")["remaining_mb"]) == (500, 500)
    assert line(carrier, "L2")["speed"] == "normal"
    postback(carrier, user, yes)  # the confirmation replayed
    assert "すでに完了" in last_reply(carrier)["text"]
    assert line(carrier, "L1")["remaining_mb"] == 500
    # The carrier was told once, signed with the account's carrier key.
    carrier["stack"].drain()
    received = request("GET", carrier["sink"]).json["received"]
    assert len(received) == 1
    body = json.loads(received[0]["body"])
    assert (body["type"], body["to_line"], body["mb"]) == ("data_gift", "L2", 500)
    sm = carrier["stack"].client("secretsmanager")
    key = sm.get_secret_value(SecretId=f"tsunagu/dev/accounts/{carrier['id']}/carrier-webhook-key")["SecretString"]
    key_bytes = bytes.fromhex(key)
    expected = base64.b64encode(hmac.new(key_bytes, received[0]["body"].encode(), hashlib.sha256).digest()).decode()
    assert received[0]["signature"] == expected
    # R-LINK-13: the user link is released from the OA menu; the contractor link stays, which
    # still shows the contract's lines but no longer gives data (R-LINK-12).
    text(carrier, user, "連携解除")
    postback(carrier, user, "action=gift&to=L2&mb=500")
    assert "利用者連携" in last_reply(carrier)["text"]
    text(carrier, user, "残量")
    assert last_reply(carrier)["type"] == "flex"


def test_32_concurrent_gifts_over_http_conserve_data(carrier) -> None:
    api, auth = carrier["stack"].api, carrier["auth"]
    rows = "line_id,member_number,allowance_mb,remaining_mb\nG,N0000000001,3000,1000\n" + "".join(
        f"R{i},N0000000001,3000,0\n" for i in range(4)
    )
    request(
        "POST",
        f"{api}/accounts/{carrier['id']}/lines/import",
        data=rows.encode(),
        headers={**auth, "Content-Type": "text/csv"},
    )
    before = sum(line(carrier, i)["remaining_mb"] for i in ("G", "R0", "R1", "R2", "R3"))

    def give(i: int) -> tuple[int, str]:
        body = {"gift_id": f"race-{i}", "from_line": "G", "to_line": f"R{i % 4}", "mb": 500}
        r = request("POST", f"{api}/accounts/{carrier['id']}/gifts", body, headers=auth, timeout=60)
        return r.status, (r.json.get("status") or r.json["error"]["code"])

    with ThreadPoolExecutor(32) as pool:
        outcomes = Counter(pool.map(give, range(32)))
    after = {i: line(carrier, i)["remaining_mb"] for i in ("G", "R0", "R1", "R2", "R3")}
    assert outcomes[(200, "applied")] == 2, outcomes
    assert outcomes[(422, "gift_insufficient_data")] == 30, outcomes
    assert after["G"] == 0 and sum(after.values()) == before


def test_faq_answer_escalation_and_operator_reply(carrier) -> None:
    api, auth, aid = carrier["stack"].api, carrier["auth"], carrier["id"]
    csv_headers = {**auth, "Content-Type": "text/csv"}
    assert (
        request(
            "POST", f"{api}/accounts/{aid}/faq/import", data=(DATA / "coop_faq.csv").read_bytes(), headers=csv_headers
        ).json["loaded"]
        == 16
    )
    settings = {"open": "00:00", "close": "23:59", "calendar": "weekends"}
    assert request("PUT", f"{api}/accounts/{aid}/helpdesk/settings", settings, headers=auth).status == 200
    user = "U" + os.urandom(16).hex()
    text(carrier, user, "値引きシールが貼ってある商品にクーポンは使えますか")
    assert "使えません" in last_reply(carrier)["text"]
    text(carrier, user, "オペレーターと話したい")
    open_now = hours_from(settings).is_open(datetime.now(UTC))
    told = last_reply(carrier)["text"]
    assert ("待ち時間の目安" in told) if open_now else ("受付時間外" in told)
    q = request("GET", f"{api}/accounts/{aid}/helpdesk/queue", headers=auth).json
    listed = q["waiting"] if open_now else q["queued_for_opening"]
    assert [w["user_id"] for w in listed] == [user]
    if open_now:
        before = len(
            request("GET", f"{carrier['stack'].sandbox}/_sandbox/calls?path=/v2/bot/message/reply").json["calls"]
        )
        text(carrier, user, "至急お願いします")  # the bot stays quiet while an operator has the chat
        after = request("GET", f"{carrier['stack'].sandbox}/_sandbox/calls?path=/v2/bot/message/reply").json["calls"]
        assert len(after) == before
    r = request(
        "POST",
        f"{api}/accounts/{aid}/helpdesk/conversations/{user}/replies",
        {"text": "担当の山田です。"},
        headers=auth,
    )
    assert r.status == 200, r.text
    assert r.json["via"] == ("reply" if open_now else "push") and r.json["metered_as"] == (
        "chat" if open_now else "push"
    )
    path = "/v2/bot/message/reply" if open_now else "/v2/bot/message/push"
    calls = request("GET", f"{carrier['stack'].sandbox}/_sandbox/calls?path={path}").json["calls"]
    assert calls[-1]["status"] == 200 and calls[-1]["body"]["messages"][0]["text"] == "担当の山田です。"
    assert request("POST", f"{api}/accounts/{aid}/helpdesk/conversations/{user}/handback", headers=auth).status == 200
    text(carrier, user, "クーポンは何回使えますか")
    assert "1回" in last_reply(carrier)["text"]


def test_my_page_auto_login_through_the_sample_verifier(carrier) -> None:
    api, sb, aid, auth = carrier["stack"].api, carrier["stack"].sandbox, carrier["id"], carrier["auth"]
    site = f"{sb}/_sandbox/mypage/site-{aid}"
    key = auth["Authorization"].split(" ", 1)[1]
    assert request("PUT", site, {"apiBase": api, "accountId": aid, "apiKey": key}).status == 200
    settings = {"carrier_webhook_url": carrier["sink"], "mypage_url": site}
    assert request("PUT", f"{api}/accounts/{aid}/lines-settings", settings, headers=auth).status == 200
    user = "U" + os.urandom(16).hex()
    link(carrier, user, "contractor", login_id="hanako", password="correct horse")
    text(carrier, user, "マイページ")
    button = last_reply(carrier)
    uri = button["template"]["actions"][0]["uri"]
    first = request("GET", uri)
    assert first.status == 200 and first.json == {"loggedIn": True, "memberNumber": "N0000000001"}
    again = request("GET", uri)  # the same ticket a second time
    assert again.status == 401 and again.json["code"] == "ticket_used"
    forged = request("GET", uri[:-3] + "AAA")
    assert forged.status == 401 and forged.json["code"] == "ticket_invalid"
    assert len(request("GET", f"{site}/sessions").json["sessions"]) == 1


def test_the_gift_outbox_job_runs_on_the_stack_and_finds_nothing_left_after_queued_announcements(carrier) -> None:
    """Every gift above reached the forward queue, so the outbox sweep (its 5-minute schedule,
    invoked here) has nothing to announce for this account; the job answers its counts."""
    api = carrier["stack"].api
    r = request("POST", f"{api}/_local/invoke/LinesRolloverFunction", {"job": "outbox"})
    assert r.status == 200, r.text
    out = r.json["result"]
    assert out["job"] == "outbox" and out["announced"] == out["due"]
    assert request("POST", f"{api}/_local/invoke/LinesRolloverFunction", {"job": "bogus"}).status >= 400
