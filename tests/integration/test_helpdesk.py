"""The help desk on moto (R-HELP-1, R-PLAN-5): FAQ answers from the co-op's FAQ (seed 004),
escalation inside and outside operator hours (holidays too), bot silence while an operator has
the chat, operator replies by reply token or push with Chat Plus metering, hand-back, timeouts,
queue metrics; the FAQ API and its bad input through the real handler."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tsunagu import wiring
from tsunagu.billing.usage_store import DynamoUsageLedger
from tsunagu.helpdesk import domain as h
from tsunagu.helpdesk.answerers import FaqAnswerer
from tsunagu.helpdesk.sealing import unseal
from tsunagu.helpdesk.service import HelpDesk
from tsunagu.helpdesk.store import DynamoHelpdeskStore

DATA = Path(__file__).resolve().parents[2] / "local" / "tsunagu_local" / "data"
ACCOUNT = "acct_help"
USER = "U" + "a" * 32
OTHER = "U" + "b" * 32


def jst(y: int, mo: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, mo, d, hh, mm, tzinfo=h.JST)


@dataclass
class FakeLine:
    replies: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    pushes: list[tuple[str, list[dict[str, Any]], str]] = field(default_factory=list)

    def reply_messages(self, access_token: str, reply_token: str, messages: list[dict[str, Any]]) -> list[str]:
        self.replies.append((reply_token, messages))
        return ["1"]

    def push(self, access_token: str, to: str, messages: list[dict[str, Any]], retry_key: str) -> str:
        self.pushes.append((to, messages, retry_key))
        return "sent"


class Tokens:
    def access_token(self, account_id: str) -> str | None:
        return "token"

    def channel_secret(self, account_id: str) -> str | None:
        return "secret"

    def put(self, account_id: str, channel_secret: str, access_token: str) -> None: ...


class Keys:
    def key(self, account_id: str) -> bytes:
        return b"k" * 32


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Desk:
    svc: HelpDesk
    line: FakeLine
    clock: Clock
    ledger: DynamoUsageLedger
    chat_plus: dict[str, bool]
    n: int = 0

    def say(self, text: str, user: str = USER, postback: str | None = None) -> str | None:
        self.n += 1
        event: dict[str, Any] = {
            "type": "postback" if postback else "message",
            "source": {"type": "user", "userId": user},
            "replyToken": f"rt{self.n:04d}",
            "webhookEventId": f"ev{self.n}",
        }
        if postback:
            event["postback"] = {"data": postback}
        else:
            event["message"] = {"type": "text", "id": str(self.n), "text": text}
        return self.svc.handle(ACCOUNT, event)

    def last_reply(self) -> str:
        return str(self.line.replies[-1][1][0]["text"])


@pytest.fixture
def desk(stack) -> Desk:  # type: ignore[no-untyped-def]
    table = stack.tables["Table"]
    store = DynamoHelpdeskStore(table)
    line, clock, ledger, chat_plus = FakeLine(), Clock(jst(2026, 12, 3, 11, 0)), DynamoUsageLedger(table), {"on": False}
    svc = HelpDesk(store, FaqAnswerer(store), Tokens(), line, Keys(), ledger, lambda a: chat_plus["on"], clock)
    svc.load_faq_csv(ACCOUNT, (DATA / "coop_faq.csv").read_bytes())
    return Desk(svc, line, clock, ledger, chat_plus)


def test_a_faq_question_is_answered_from_the_coop_faq_with_an_operator_button(desk: Desk) -> None:
    assert desk.say("クーポンは何回使えますか") == "ai_answered"
    reply = desk.line.replies[-1][1][0]
    assert "1回" in reply["text"] and reply["quickReply"]["items"][0]["action"]["data"] == "action=operator"
    assert desk.svc.queue(ACCOUNT)["metrics"]["answered_by_ai"] == 1


def test_escalation_in_hours_queues_tells_the_wait_and_silences_the_bot(desk: Desk) -> None:
    assert desk.say("オペレーターと話したい") == "escalated_waiting"
    assert "待ち時間の目安は約5分" in desk.last_reply()
    replies = len(desk.line.replies)
    desk.clock.now += timedelta(seconds=10)
    assert desk.say("クーポンは何回使えますか") == "with_operator"  # the bot stays quiet
    assert len(desk.line.replies) == replies
    q = desk.svc.queue(ACCOUNT)
    assert [w["user_id"] for w in q["waiting"]] == [USER] and q["metrics"]["waiting"] == 1
    # A second member is told there is one person ahead.
    assert desk.say("オペレーター", user=OTHER) == "escalated_waiting"
    assert "お待ちの方 1 人" in desk.last_reply() and "約10分" in desk.last_reply()


def test_the_member_reply_token_is_stored_sealed(desk: Desk, stack) -> None:  # type: ignore[no-untyped-def]
    desk.say("オペレーター")
    desk.say("至急お願いします")
    _conv, sealed = desk.svc.store.conversation(ACCOUNT, USER)
    assert sealed is not None and "rt0002" not in sealed[0]
    import boto3

    raw = str(boto3.client("dynamodb").scan(TableName=stack.tables["Table"])["Items"])
    assert "rt0002" not in raw
    assert unseal(desk.svc._seal_key(ACCOUNT), sealed[0]) == "rt0002"


def test_operator_replies_by_reply_token_then_push_and_chat_plus_decides_the_metering(desk: Desk) -> None:
    desk.say("オペレーター")
    desk.clock.now += timedelta(minutes=3)
    desk.say("至急お願いします")  # a fresh reply token, sealed for the operator
    desk.clock.now += timedelta(seconds=20)
    first = desk.svc.operator_reply(ACCOUNT, USER, "担当の山田です。", "op-1")
    assert (first["via"], first["metered_as"]) == ("reply", "chat")
    assert desk.line.replies[-1][0] == "rt0002"
    # The token is used once: the next answer is a push, billable without Chat Plus ...
    second = desk.svc.operator_reply(ACCOUNT, USER, "ご確認ください。", "op-2")
    assert (second["via"], second["metered_as"], second["chat_plus"]) == ("push", "push", False)
    assert desk.line.pushes[-1][0] == USER
    # ... and not an additional message with Chat Plus (R-PLAN-5).
    desk.chat_plus["on"] = True
    third = desk.svc.operator_reply(ACCOUNT, USER, "以上です。", "op-3")
    assert (third["via"], third["metered_as"]) == ("push", "chat")
    entries = {sid: desk.ledger.entry(ACCOUNT, f"chat-{sid}") for sid in ("op-1", "op-2", "op-3")}
    assert {k: (v["kind"], v["billable"]) for k, v in entries.items() if v} == {
        "op-1": ("chat", False),
        "op-2": ("push", True),
        "op-3": ("chat", False),
    }
    m = desk.svc.queue(ACCOUNT)["metrics"]
    assert m["answered_by_operator"] == 1 and m["average_wait_ms"] == (3 * 60 + 20) * 1000
    assert m["waiting"] == 0  # answered: off the queue


def test_a_stale_reply_token_is_not_used(desk: Desk) -> None:
    desk.say("オペレーター")
    desk.say("まだですか")
    desk.clock.now += timedelta(minutes=2)
    assert desk.svc.operator_reply(ACCOUNT, USER, "お待たせしました。")["via"] == "push"


def test_hand_back_by_the_operator_or_the_member_returns_the_bot(desk: Desk) -> None:
    desk.say("オペレーター")
    desk.svc.operator_reply(ACCOUNT, USER, "どうぞ")
    assert desk.say("ありがとう") == "with_operator"
    assert desk.svc.hand_back(ACCOUNT, USER)["state"] == "bot"
    assert desk.say("クーポンは何回使えますか") == "ai_answered"
    desk.say("オペレーター")
    assert desk.say("", postback="action=operator_end") == "handed_back"
    assert desk.say("クーポンは何回使えますか") == "ai_answered"
    assert desk.svc.queue(ACCOUNT)["metrics"]["handed_back"] == 2


def test_waiting_without_an_operator_times_out_back_to_the_bot(desk: Desk) -> None:
    desk.say("オペレーター")
    desk.clock.now += timedelta(minutes=61)
    assert desk.say("クーポンは何回使えますか") == "ai_answered"
    assert desk.svc.queue(ACCOUNT)["metrics"]["timed_out"] == 1


def test_outside_hours_the_member_is_told_when_operators_are_back_and_the_ai_keeps_answering(desk: Desk) -> None:
    desk.clock.now = jst(2026, 12, 4, 20, 30)  # Friday evening
    assert desk.say("オペレーター") == "escalated_queued"
    assert "12月07日 10:00" in desk.last_reply()
    assert desk.say("クーポンは何回使えますか") == "ai_answered"
    q = desk.svc.queue(ACCOUNT)
    assert q["open"] is False and [w["user_id"] for w in q["queued_for_opening"]] == [USER]
    desk.clock.now = jst(2026, 12, 7, 10, 15)  # Monday: operators are in
    q = desk.svc.queue(ACCOUNT)
    assert [w["user_id"] for w in q["waiting"]] == [USER] and q["waiting"][0]["waiting_ms"] == 15 * 60_000
    assert desk.svc.operator_reply(ACCOUNT, USER, "おはようございます")["state"] == "operator"


def test_on_a_national_holiday_the_question_waits_for_the_next_business_day(desk: Desk) -> None:
    desk.clock.now = jst(2026, 11, 23, 12, 0)  # 勤労感謝の日
    assert desk.say("担当者と話したい") == "escalated_queued"
    assert "11月24日 10:00" in desk.last_reply()


def test_low_confidence_escalates(desk: Desk) -> None:
    assert desk.say("ポイントの有効期限を延長してほしい") == "escalated_waiting"
    assert desk.last_reply().startswith("自動応答ではお答えできませんでした。")


def test_operator_cannot_answer_a_conversation_with_the_bot(desk: Desk) -> None:
    with pytest.raises(h.HelpdeskRefused) as e:
        desk.svc.operator_reply(ACCOUNT, USER, "hello")
    assert e.value.code == "not_escalated"


def test_no_faq_means_no_help_desk(stack) -> None:  # type: ignore[no-untyped-def]
    store = DynamoHelpdeskStore(stack.tables["Table"])
    svc = HelpDesk(store, FaqAnswerer(store), Tokens(), FakeLine(), Keys())
    event = {"type": "message", "source": {"type": "user", "userId": USER}, "message": {"type": "text", "text": "q"}}
    assert svc.handle("acct_nofaq", event) is None  # the auto-responses answer instead


def test_a_warm_answerer_sees_a_new_faq_at_once(desk: Desk) -> None:
    assert desk.say("クーポンは何回使えますか") == "ai_answered"
    desk.svc.load_faq(
        ACCOUNT, [{"faq_id": "Q2-4", "question": "クーポンは何回使えますか", "answer": "何回でも使えます。"}]
    )
    assert desk.say("クーポンは何回使えますか") == "ai_answered"
    assert desk.last_reply().startswith("何回でも")


# ---------------------------------------------------------------- through the API handler
@pytest.fixture
def account(api) -> tuple[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    from tests.integration.conftest import OPERATOR_KEY

    status, body = api.call(
        "POST", "/accounts", {"name": "生協", "plan": "light"}, {"authorization": f"Bearer {OPERATOR_KEY}"}
    )
    assert status == 201, body
    return body["account_id"], {"authorization": f"Bearer {body['api_key']}"}


def test_faq_csv_api_loads_and_bad_csv_changes_nothing(api, account, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(wiring, "line_client", lambda: FakeLine())
    aid, auth = account
    csv_headers = {**auth, "content-type": "text/csv"}
    status, body = api.call(
        "POST", f"/accounts/{aid}/faq/import", headers=csv_headers, raw=(DATA / "coop_faq.csv").read_bytes()
    )
    assert (status, body) == (200, {"loaded": 16, "removed": 0})
    bad = b"faq_id,question,answer\nX1,q,a\nX1,q2,a2\n"
    status, body = api.call("POST", f"/accounts/{aid}/faq/import", headers=csv_headers, raw=bad)
    assert status == 422 and body["error"]["code"] == "invalid_faq"
    status, body = api.call("POST", f"/accounts/{aid}/faq/import", headers=csv_headers, raw=b"question\nq\n")
    assert status == 422 and body["error"]["code"] == "csv_columns"
    status, body = api.call("GET", f"/accounts/{aid}/faq", headers=auth)
    assert len(body["entries"]) == 16 and not any(e["faq_id"] == "X1" for e in body["entries"])
    status, body = api.call(
        "POST", f"/accounts/{aid}/helpdesk/ask", {"question": "値引きシールの商品にクーポンは使える?"}, auth
    )
    assert status == 200 and body["faq_id"] == "Q2-2" and body["escalates"] is False
    status, body = api.call("POST", f"/accounts/{aid}/helpdesk/conversations/{USER}/replies", {"text": "x"}, auth)
    assert status == 409 and body["error"]["code"] == "not_escalated"
    status, body = api.call("PUT", f"/accounts/{aid}/helpdesk/settings", {"open": "19:00", "close": "10:00"}, auth)
    assert status == 400 and body["error"]["code"] == "invalid_helpdesk_settings"
    status, body = api.call("GET", f"/accounts/{aid}/helpdesk/queue", headers={"authorization": "Bearer nope"})
    assert status == 401


def test_helpdesk_settings_round_trip_through_the_store(desk: Desk) -> None:
    saved = desk.svc.put_settings(ACCOUNT, {"open": "09:30", "threshold": 0.4, "calendar": "weekends"})
    assert saved["threshold"] == 0.4 and desk.svc.settings(ACCOUNT)["open"] == "09:30"
    assert desk.svc.hours(ACCOUNT).threshold == 0.4
