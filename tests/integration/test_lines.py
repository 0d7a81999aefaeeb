"""Lines on moto: loading, the usage feed, the data view by link kind (R-LINK-12), data gifts
(R-GIFT-1) from the API and from the chat with its confirm step, replays, and the carrier
webhook. The conservation race runs on a moto server (DynamoDB requests atomic, as on AWS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from tsunagu import keys
from tsunagu.errors import Conflict
from tsunagu.lines.domain import LineCommand, LineNotFound, LinesRefused
from tsunagu.lines.service import LinesService
from tsunagu.lines.store import DynamoLineStore
from tsunagu.linking.store import DynamoLinkStore
from tsunagu_local.resources import Stack, create_resources
from tsunagu_local.stack import free_port

ACCOUNT = "acct_lines"
USER = "U" + "1" * 32
CONTRACTOR = "U" + "2" * 32
STRANGER = "U" + "3" * 32


@dataclass
class Replies:
    sent: list[list[dict[str, Any]]] = field(default_factory=list)

    def reply_messages(self, access_token: str, reply_token: str, messages: list[dict[str, Any]]) -> list[str]:
        self.sent.append(messages)
        return ["1"]


class Tokens:
    def access_token(self, account_id: str) -> str | None:
        return "token"

    def channel_secret(self, account_id: str) -> str | None:
        return "secret"

    def put(self, account_id: str, channel_secret: str, access_token: str) -> None: ...


@dataclass
class Carrier:
    bodies: list[bytes] = field(default_factory=list)

    def announce(self, account_id: str, url: str, body: bytes) -> None:
        self.bodies.append(body)


def link(links: DynamoLinkStore, user: str, target: str, member: str, contractor: str | None = None) -> None:
    nonce = f"n{time.time_ns()}"
    links.put_nonce(ACCOUNT, nonce, user, target, member, int(time.time()) + 60)
    assert links.link(ACCOUNT, nonce, user, target, member, contractor) is None


@pytest.fixture
def lines(stack: Stack) -> tuple[LinesService, Replies, Carrier]:
    table = stack.tables["Table"] if "Table" in stack.tables else next(iter(stack.tables.values()))
    store, links = DynamoLineStore(table), DynamoLinkStore(table)
    replies, carrier = Replies(), Carrier()
    svc = LinesService(store, links, Tokens(), replies, carrier)
    svc.load(
        ACCOUNT,
        [
            {"line_id": "L1", "member_number": "100001", "allowance_mb": 3000, "remaining_mb": 1000},
            {"line_id": "L2", "member_number": "100001", "allowance_mb": 3000, "remaining_mb": 0},
            {"line_id": "L9", "member_number": "200002", "allowance_mb": 1000},
        ],
    )
    link(links, CONTRACTOR, "CONTRACTOR#100001", "100001")
    link(links, USER, "LINE#100001#L1", "100001", "CONTRACTOR#100001")
    store.set_carrier_webhook(ACCOUNT, "https://carrier.example/hooks")
    return svc, replies, carrier


def chat(svc: LinesService, user: str, **cmd: Any) -> str:
    return svc.handle_chat(ACCOUNT, user, LineCommand(**cmd), "reply-token")


def test_user_link_sees_its_line_and_contractor_link_every_line_of_the_contract(lines) -> None:
    svc, replies, _ = lines
    assert chat(svc, CONTRACTOR, action="data") == "data_shown"
    contractor_view = replies.sent[-1][0]
    assert (
        contractor_view["type"] == "flex" and "L1" in contractor_view["altText"] and "L2" in contractor_view["altText"]
    )
    assert "L9" not in contractor_view["altText"]  # another contract
    assert chat(svc, USER, action="data") == "data_shown"
    user_view = replies.sent[-1][0]
    assert "L1 1,000MB" in user_view["altText"] and "L2" not in user_view["altText"]  # only its own line


def test_unlinked_friend_gets_the_linking_hint_never_data(lines) -> None:
    svc, replies, _ = lines
    assert chat(svc, STRANGER, action="data") == "link_required"
    assert replies.sent[-1][0]["type"] == "text" and "利用者連携" in replies.sent[-1][0]["text"]
    assert "MB" not in replies.sent[-1][0]["text"]


def test_contractor_only_friend_cannot_give_data(lines) -> None:
    svc, _replies, _ = lines
    assert chat(svc, CONTRACTOR, action="gift", to="L2", mb=500) == "link_required"
    assert svc.current(ACCOUNT, "L1").remaining_mb == 1000


def test_chat_gift_asks_line_then_size_then_confirms_once_and_lifts_the_throttle(lines) -> None:
    svc, replies, carrier = lines
    assert svc.current(ACCOUNT, "L2").throttled
    assert chat(svc, USER, action="gift") == "gift_choose_line"
    items = replies.sent[-1][0]["quickReply"]["items"]
    assert [i["action"]["data"] for i in items] == ["action=gift&to=L2"]
    assert chat(svc, USER, action="gift", to="L2") == "gift_choose_size"
    assert len(replies.sent[-1][0]["quickReply"]["items"]) == 5
    assert chat(svc, USER, action="gift", to="L2", mb=500) == "gift_confirm_asked"
    confirm = replies.sent[-1][0]["template"]["actions"][0]["data"]
    request_id = confirm.split("id=")[1]
    assert svc.current(ACCOUNT, "L1").remaining_mb == 1000  # nothing moves before the confirmation
    assert chat(svc, USER, action="gift_confirm", request_id=request_id) == "gift_applied"
    assert (svc.current(ACCOUNT, "L1").remaining_mb, svc.current(ACCOUNT, "L2").remaining_mb) == (500, 500)
    assert not svc.current(ACCOUNT, "L2").throttled
    # The replayed confirmation (a second tap, a redelivered postback) moves nothing.
    assert chat(svc, USER, action="gift_confirm", request_id=request_id) == "gift_already_applied"
    assert (svc.current(ACCOUNT, "L1").remaining_mb, svc.current(ACCOUNT, "L2").remaining_mb) == (500, 500)
    assert len(carrier.bodies) == 1 and b'"gift_id":"' + request_id.encode() in carrier.bodies[0]
    view = svc.view(ACCOUNT, "L2")
    assert [(h["direction"], h["other_line"], h["mb"]) for h in view["history"]] == [("received", "L1", 500)]


def test_another_users_confirmation_is_refused(lines) -> None:
    svc, replies, _ = lines
    chat(svc, USER, action="gift", to="L2", mb=500)
    request_id = replies.sent[-1][0]["template"]["actions"][0]["data"].split("id=")[1]
    other = "U" + "4" * 32
    links = svc.links
    assert isinstance(links, DynamoLinkStore)
    link(links, other, "CONTRACTOR#200002", "200002")
    link(links, other, "LINE#200002#L9", "200002", "CONTRACTOR#200002")
    assert chat(svc, other, action="gift_confirm", request_id=request_id) == "gift_request_used"
    assert svc.current(ACCOUNT, "L1").remaining_mb == 1000


@pytest.mark.parametrize(
    ("to", "mb", "code"),
    [
        ("L1", 500, "gift_to_self"),
        ("L2", 700, "gift_size"),
        ("L2", 1500, "gift_insufficient_data"),
        ("ZZ", 500, "gift_unknown_line"),
    ],
)
def test_bad_chat_gifts_are_refused_and_write_nothing(lines, to: str, mb: int, code: str) -> None:
    svc, _replies, _ = lines
    assert chat(svc, USER, action="gift", to=to, mb=mb) == code
    assert svc.current(ACCOUNT, "L1").remaining_mb == 1000


def test_foreign_line_id_of_another_account_is_unknown(lines) -> None:
    svc, _, _ = lines
    svc.store.put_lines("acct_other", svc.store.contract_lines(ACCOUNT, "200002"))
    with pytest.raises(LinesRefused) as e:
        svc.gift("acct_other", "g1", "L9", "L1", 500)
    assert e.value.code == "gift_unknown_line"


def test_api_gift_is_idempotent_on_gift_id_and_refuses_a_reused_id(lines) -> None:
    svc, _, carrier = lines
    first = svc.gift(ACCOUNT, "gift-0001", "L1", "L2", 500)
    again = svc.gift(ACCOUNT, "gift-0001", "L1", "L2", 500)
    assert (first["status"], again["status"]) == ("applied", "already_applied")
    assert svc.current(ACCOUNT, "L1").remaining_mb == 500
    with pytest.raises(Conflict) as e:
        svc.gift(ACCOUNT, "gift-0001", "L1", "L2", 1000)
    assert e.value.code == "gift_id_reused"
    assert len(carrier.bodies) == 2  # at least once: the replay announces again, same gift_id


def test_a_gift_whose_announcement_cannot_be_queued_stands_and_the_outbox_sweep_announces_it(lines) -> None:
    """The gift's transaction puts it in the outbox; a queued announcement takes it out; an SQS
    failure right after the transaction leaves it there for the sweep (R-GIFT-1: the carrier is
    told at least once, and the member's gift is never undone by a queue outage)."""
    svc, _, carrier = lines
    store = svc.store
    svc.gift(ACCOUNT, "gift-ok", "L1", "L2", 500)
    assert ("acct_lines", "gift-ok") not in store.outbox_due(2**42)  # announced: not pending

    def down(account_id: str, url: str, body: bytes) -> None:
        raise ConnectionError("SQS unreachable")

    carrier.announce = down  # type: ignore[method-assign]
    applied = svc.gift(ACCOUNT, "gift-outbox", "L1", "L2", 500)
    assert applied["status"] == "applied" and svc.current(ACCOUNT, "L2").remaining_mb == 1000
    assert (ACCOUNT, "gift-outbox") in store.outbox_due(2**42)
    assert store.gift_record(ACCOUNT, "gift-outbox")["mb"] == 500  # the index keys stay internal
    assert "GSI1PK" not in store.gift_record(ACCOUNT, "gift-outbox")
    # Too recent for the sweep (it leaves the in-flight announcements alone) ...
    assert svc.announce_pending(older_than_ms=120_000)["announced"] == 0
    del carrier.announce  # the queue is back
    later = applied["at_ms"] + 121_000
    assert svc.announce_pending(older_than_ms=120_000, now=later) == {"due": 1, "announced": 1}
    body = json.loads(carrier.bodies[-1])
    assert (body["gift_id"], body["mb"], body["from_line"], body["to_line"]) == ("gift-outbox", 500, "L1", "L2")
    assert svc.announce_pending(older_than_ms=120_000, now=later) == {"due": 0, "announced": 0}  # once


def test_usage_feed_and_rollover(lines) -> None:
    svc, _, _ = lines
    month = svc.current(ACCOUNT, "L1").month
    assert svc.report_usage(ACCOUNT, "L1", month, 400)["remaining_mb"] == 600
    assert svc.report_usage(ACCOUNT, "L1", month, 300)["applied"] is False  # older report
    assert svc.report_usage(ACCOUNT, "L1", month, 5000)["speed"] == "throttled"
    with pytest.raises(LinesRefused) as e:
        svc.report_usage(ACCOUNT, "L1", "2020-01", 1)
    assert e.value.code == "usage_month"
    # Next month: every line back at its allowance; running it twice changes nothing more.
    nxt = f"{int(month[:4]) + (month[5:] == '12')}-{int(month[5:]) % 12 + 1:02d}"
    assert svc.rollover(ACCOUNT, nxt) == {"lines": 3, "rolled_over": 3}
    assert svc.rollover(ACCOUNT, nxt) == {"lines": 3, "rolled_over": 0}
    assert svc.store.get(ACCOUNT, "L1").remaining_mb == 3000  # type: ignore[union-attr]


def test_unknown_line(lines) -> None:
    svc, _, _ = lines
    with pytest.raises(LineNotFound):
        svc.view(ACCOUNT, "NOPE")


# ---------------------------------------------------------------- the race, on a moto server
@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tsunagu_local.moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        for k, v in {
            "AWS_ENDPOINT_URL": url,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "ap-northeast-1",
        }.items():
            monkeypatch.setenv(k, v)
        from tsunagu import wiring

        wiring.reset()
        stack = create_resources(session=boto3.session.Session(region_name="ap-northeast-1"))
        yield stack
        wiring.reset()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def balances(store: DynamoLineStore, ids: list[str]) -> dict[str, int]:
    return {i: store.get(ACCOUNT, i).remaining_mb for i in ids}  # type: ignore[union-attr]


def test_32_concurrent_gifts_from_one_line_with_1000_mb_conserve_data(moto_server) -> None:
    """R-GIFT-1: never below zero, the sum of all balances unchanged, each gift applied once."""
    table = (
        next(iter(moto_server.tables.values())) if "Table" not in moto_server.tables else moto_server.tables["Table"]
    )
    store = DynamoLineStore(table)
    svc = LinesService(store, DynamoLinkStore(table))
    receivers = [f"R{i}" for i in range(8)]
    svc.load(
        ACCOUNT,
        [{"line_id": "G", "member_number": "100001", "allowance_mb": 3000, "remaining_mb": 1000}]
        + [{"line_id": r, "member_number": "100001", "allowance_mb": 1000, "remaining_mb": 0} for r in receivers],
    )
    ids = ["G", *receivers]
    before = sum(balances(store, ids).values())
    # 32 gifts of 500 MB (16 distinct gift ids, each sent twice - a retried request): at most 2 fit.
    jobs = [(f"gift-{i % 16:02d}", receivers[i % 16 % 8]) for i in range(32)]

    def give(job: tuple[str, str]) -> str:
        try:
            return str(svc.gift(ACCOUNT, job[0], "G", job[1], 500)["status"])
        except (LinesRefused, Conflict) as e:
            return e.code

    with ThreadPoolExecutor(32) as pool:
        outcomes = Counter(pool.map(give, jobs))
    after = balances(store, ids)
    applied_ids = {gid for gid, _ in jobs if store.gift_record(ACCOUNT, gid) is not None}
    assert len(applied_ids) == 2, outcomes
    assert after["G"] == 0 and min(after.values()) >= 0
    assert sum(after.values()) == before
    assert sum(after[r] for r in receivers) == 1000
    assert outcomes["applied"] == 2 and outcomes["gift_conflict"] == 0, outcomes
    assert set(outcomes) <= {"applied", "already_applied", "gift_insufficient_data"}, outcomes
    # Each applied gift is in both lines' history once.
    history = store.history(ACCOUNT, "G")
    assert sorted(h["gift_id"] for h in history) == sorted(applied_ids)
    assert os.environ["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1")
    assert keys.data_gift(ACCOUNT, "x")["SK"] == "GIFT"


# ---------------------------------------------------------------- through the API handler
def test_lines_api_bad_input_has_stable_codes_and_writes_nothing(api) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.conftest import OPERATOR_KEY

    status, acct = api.call(
        "POST", "/accounts", {"name": "モバイル", "plan": "light"}, {"authorization": f"Bearer {OPERATOR_KEY}"}
    )
    assert status == 201
    aid, auth = acct["account_id"], {"authorization": f"Bearer {acct['api_key']}"}
    csv_headers = {**auth, "content-type": "text/csv"}
    good = b"line_id,member_number,allowance_mb,remaining_mb\nA1,100001,3000,1000\nA2,100001,3000,0\n"
    assert api.call("POST", f"/accounts/{aid}/lines/import", headers=csv_headers, raw=good)[1] == {"loaded": 2}
    half_bad = b"line_id,member_number,allowance_mb\nB1,100001,3000\nB2,100001,lots\n"
    status, body = api.call("POST", f"/accounts/{aid}/lines/import", headers=csv_headers, raw=half_bad)
    assert status == 422 and body["error"]["code"] == "invalid_lines" and body["error"]["details"][0]["row"] == 2
    assert api.call("GET", f"/accounts/{aid}/lines/B1", headers=auth)[0] == 404  # nothing half-written
    for gift, code in [
        ({"gift_id": "g1", "from_line": "A1", "to_line": "A2", "mb": 600}, "gift_size"),
        ({"gift_id": "g2", "from_line": "A1", "to_line": "A1", "mb": 500}, "gift_to_self"),
        ({"gift_id": "g3", "from_line": "A2", "to_line": "A1", "mb": 500}, "gift_insufficient_data"),
        ({"gift_id": "g4", "from_line": "A1", "to_line": "ZZ9", "mb": 500}, "gift_unknown_line"),
    ]:
        status, body = api.call("POST", f"/accounts/{aid}/gifts", gift, auth)
        assert (status, body["error"]["code"]) == (422, code), body
    status, body = api.call(
        "POST", f"/accounts/{aid}/gifts", {"gift_id": "ok1", "from_line": "A1", "to_line": "A2", "mb": 500}, auth
    )
    assert status == 200 and body["status"] == "applied"
    status, body = api.call(
        "POST", f"/accounts/{aid}/gifts", {"gift_id": "ok1", "from_line": "A1", "to_line": "A2", "mb": 1000}, auth
    )
    assert (status, body["error"]["code"]) == (409, "gift_id_reused")
    status, line = api.call("GET", f"/accounts/{aid}/lines/A2", headers=auth)
    assert (line["remaining_mb"], line["speed"], line["history"][0]["gift_id"]) == (500, "normal", "ok1")
    status, body = api.call("PUT", f"/accounts/{aid}/lines/A1/usage", {"month": "2026-13", "used_mb": 1}, auth)
    assert status == 422 and body["error"]["code"] == "validation_failed"


# ---------------------------------------------------------------- My Page tickets (R-LINK-12)
class TicketKeys:
    def key(self, account_id: str) -> bytes:
        return b"m" * 32


def test_my_page_ticket_is_for_contractor_links_only_and_redeems_once(lines) -> None:
    svc, replies, _ = lines
    svc.mypage_keys = TicketKeys()
    svc.store.put_settings(ACCOUNT, {"carrier_webhook_url": None, "mypage_url": "https://mypage.example/login"})
    assert chat(svc, USER, action="mypage") == "contractor_link_required"  # a user link is not enough
    assert "契約者連携" in replies.sent[-1][0]["text"]
    assert chat(svc, CONTRACTOR, action="mypage") == "mypage_ticket_issued"
    uri = replies.sent[-1][0]["template"]["actions"][0]["uri"]
    assert uri.startswith("https://mypage.example/login?ticket=v1.")
    ticket = uri.split("ticket=", 1)[1]
    assert svc.redeem_ticket(ACCOUNT, ticket)["member_number"] == "100001"
    with pytest.raises(Conflict) as e:
        svc.redeem_ticket(ACCOUNT, ticket)  # replayed
    assert e.value.code == "ticket_used"
    from tsunagu.lines.mypage import TicketRefused

    with pytest.raises(TicketRefused) as e2:
        svc.redeem_ticket("acct_other", ticket)  # another account's ticket
    assert e2.value.code == "ticket_invalid"


def test_my_page_ticket_past_its_lifetime_is_refused(lines, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tsunagu.lines import service as lines_service
    from tsunagu.lines.mypage import TICKET_SECONDS, TicketRefused

    svc, replies, _ = lines
    svc.mypage_keys = TicketKeys()
    svc.store.put_settings(ACCOUNT, {"mypage_url": "https://mypage.example/login"})
    chat(svc, CONTRACTOR, action="mypage")
    ticket = replies.sent[-1][0]["template"]["actions"][0]["uri"].split("ticket=", 1)[1]
    later = lines_service.now_ms() + TICKET_SECONDS * 1000
    monkeypatch.setattr(lines_service, "now_ms", lambda: later)
    with pytest.raises(TicketRefused) as e:
        svc.redeem_ticket(ACCOUNT, ticket)
    assert e.value.code == "ticket_expired"
