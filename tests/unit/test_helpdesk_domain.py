"""Help desk rules (R-HELP-1): operator hours on the business calendar (holidays, weekends), the
escalation state machine (escalate, operator answers, hand-back, timeouts), the FAQ retrieval on
the co-op's FAQ (seed 004), reply-token sealing, and the Bedrock adapter's contract (Stubber)."""

from __future__ import annotations

import csv
import json
from datetime import datetime, time
from pathlib import Path

import botocore.session
import pytest
from botocore.stub import Stubber

from tsunagu.helpdesk import domain as h
from tsunagu.helpdesk.answerers import BedrockAnswerer, FaqAnswerer
from tsunagu.helpdesk.retrieval import FaqEntry, FaqIndex, grams, normalise
from tsunagu.helpdesk.sealing import seal, unseal
from tsunagu.helpdesk.service import FaqRefused, faq_csv_rows, parse_faq

DATA = Path(__file__).resolve().parents[2] / "local" / "tsunagu_local" / "data"
HOURS = h.Hours()


def jst(y: int, mo: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, mo, d, hh, mm, tzinfo=h.JST)


def faq() -> list[FaqEntry]:
    with (DATA / "coop_faq.csv").open(encoding="utf-8") as f:
        return [FaqEntry(r["faq_id"], r["question"], r["answer"], r["category"]) for r in csv.DictReader(f)]


# ---------------------------------------------------------------- hours
@pytest.mark.parametrize(
    ("at", "open_"),
    [
        (jst(2026, 12, 3, 9, 59), False),
        (jst(2026, 12, 3, 10, 0), True),  # Thursday 10:00
        (jst(2026, 12, 3, 18, 59), True),
        (jst(2026, 12, 3, 19, 0), False),  # closes at 19:00
        (jst(2026, 12, 5, 12, 0), False),  # Saturday
        (jst(2026, 11, 23, 12, 0), False),  # 勤労感謝の日 (a Monday in 2026)
        (jst(2026, 12, 30, 12, 0), False),  # year-end closure
    ],
)
def test_operator_hours_are_10_to_19_jst_on_business_days(at: datetime, open_: bool) -> None:
    assert HOURS.is_open(at) is open_


def test_next_opening_skips_evenings_weekends_and_holidays() -> None:
    assert HOURS.next_opening(jst(2026, 12, 3, 8, 0)) == jst(2026, 12, 3, 10, 0)
    assert HOURS.next_opening(jst(2026, 12, 4, 20, 0)) == jst(2026, 12, 7, 10, 0)  # Friday night -> Monday
    assert HOURS.next_opening(jst(2026, 11, 20, 19, 30)) == jst(2026, 11, 24, 10, 0)  # over Mon 23rd holiday
    assert HOURS.next_opening(jst(2026, 12, 3, 11, 0)) == jst(2026, 12, 3, 11, 0)


def test_hours_follow_the_accounts_calendar() -> None:
    weekends_only = h.hours_from({"calendar": "weekends", "open": "09:00", "close": "17:00"})
    assert weekends_only.is_open(jst(2026, 11, 23, 9, 0))  # holidays are working days on this calendar
    assert not weekends_only.is_open(jst(2026, 11, 23, 17, 0))


# ---------------------------------------------------------------- the state machine
def test_escalation_in_hours_waits_for_an_operator_and_silences_the_bot() -> None:
    now = jst(2026, 12, 3, 11, 0)
    c = h.escalate(h.Conversation("U1"), "解約したい", now, HOURS)
    assert c.state == h.WAITING and c.state in h.SILENT and c.question == "解約したい"
    msg = h.escalation_message(c, now, HOURS, ahead=2)
    assert "お待ちの方 2 人" in msg and "約15分" in msg


def test_escalation_outside_hours_is_queued_for_the_morning_and_says_when() -> None:
    now = jst(2026, 12, 4, 21, 0)  # Friday night
    c = h.escalate(h.Conversation("U1"), "質問", now, HOURS)
    assert c.state == h.QUEUED and c.state not in h.SILENT  # the AI keeps answering meanwhile
    assert "12月07日 10:00" in h.escalation_message(c, now, HOURS, 0)
    # At opening the question is waiting for an operator, its wait counted from 10:00.
    opened, why = h.expire(c, jst(2026, 12, 7, 10, 5), HOURS)
    assert (opened.state, why) == (h.WAITING, None) and opened.queued_at_ms == h.ms(jst(2026, 12, 7, 10, 0))
    still, _ = h.expire(c, jst(2026, 12, 6, 12, 0), HOURS)
    assert still.state == h.QUEUED


def test_waiting_times_out_back_to_the_bot() -> None:
    c = h.escalate(h.Conversation("U1"), "q", jst(2026, 12, 3, 11, 0), HOURS)
    same, why = h.expire(c, jst(2026, 12, 3, 12, 0), HOURS)
    assert (same.state, why) == (h.WAITING, None)
    back, why = h.expire(c, jst(2026, 12, 3, 12, 1), HOURS)
    assert (back.state, why) == (h.BOT, "timed_out") and back.version == c.version + 1


def test_operator_answer_then_idle_timeout_and_member_activity_keeps_it() -> None:
    c = h.escalate(h.Conversation("U1"), "q", jst(2026, 12, 3, 11, 0), HOURS)
    op = h.operator_answered(c, jst(2026, 12, 3, 11, 10))
    assert op.state == h.OPERATOR
    spoke = h.member_spoke(op, jst(2026, 12, 3, 11, 35))
    assert h.expire(spoke, jst(2026, 12, 3, 12, 0), HOURS)[1] is None  # 25 min after the member spoke
    assert h.expire(op, jst(2026, 12, 3, 11, 41), HOURS) == (h._to_bot(op, h.ms(jst(2026, 12, 3, 11, 41))), "idle")


def test_hand_back_and_refusals() -> None:
    op = h.operator_answered(h.escalate(h.Conversation("U1"), "q", jst(2026, 12, 3, 11), HOURS), jst(2026, 12, 3, 11))
    assert h.hand_back(op, jst(2026, 12, 3, 11, 5)).state == h.BOT
    with pytest.raises(h.HelpdeskRefused) as e:
        h.hand_back(h.Conversation("U1"), jst(2026, 12, 3, 11))
    assert e.value.code == "not_escalated"
    with pytest.raises(h.HelpdeskRefused):
        h.operator_answered(h.Conversation("U1"), jst(2026, 12, 3, 11))


def test_escalating_again_keeps_the_place_in_the_queue() -> None:
    c = h.escalate(h.Conversation("U1"), "first", jst(2026, 12, 3, 11), HOURS)
    again = h.escalate(c, "second", jst(2026, 12, 3, 11, 20), HOURS)
    assert (again.state, again.question, again.queued_at_ms) == (h.WAITING, "first", c.queued_at_ms)


@pytest.mark.parametrize(
    ("event", "wants"),
    [
        ({"type": "message", "message": {"type": "text", "text": "オペレーターと話したい"}}, True),
        ({"type": "message", "message": {"type": "text", "text": "ｵﾍﾟﾚｰﾀｰ"}}, True),
        ({"type": "postback", "postback": {"data": "action=operator"}}, True),
        ({"type": "message", "message": {"type": "text", "text": "クーポンは何回使えますか"}}, False),
        ({"type": "message", "message": {"type": "sticker"}}, False),
    ],
)
def test_the_word_or_the_button_asks_for_an_operator(event: dict, wants: bool) -> None:
    assert h.wants_operator(event) is wants


# ---------------------------------------------------------------- retrieval
def test_normalise_and_grams_are_width_and_punctuation_blind() -> None:
    assert normalise("ＬＩＮＥクーポン、使えますか?") == normalise("LINEクーポン使えますか")
    assert grams("連携") == ["連携"] and "連携" in grams("連携したい")


def test_faq_questions_are_answered_by_their_own_entry() -> None:
    idx = FaqIndex(faq())
    for e in idx.entries:
        best = idx.best(e.question)
        assert best is not None and best.entry.faq_id == e.faq_id and best.confidence > 0.8


def test_paraphrases_mostly_find_the_right_entry_and_small_talk_has_low_confidence() -> None:
    idx = FaqIndex(faq())
    with (DATA / "coop_faq_questions.csv").open(encoding="utf-8") as f:
        labelled = list(csv.DictReader(f))
    assert len(labelled) >= 60
    hits = sum(1 for q in labelled if (m := idx.best(q["question"])) and m.entry.faq_id == q["faq_id"])
    assert hits / len(labelled) >= 0.8  # bench/helpdesk.py records the exact figure
    for chat in ("こんにちは", "ありがとう", "今日の天気は?"):
        m = idx.best(chat)
        assert m is None or m.confidence < HOURS.threshold


def test_empty_faq_answers_nothing() -> None:
    assert FaqIndex([]).best("クーポン") is None


# ---------------------------------------------------------------- FAQ input
def test_faq_rows_are_all_or_nothing_with_row_numbers() -> None:
    rows = [
        {"faq_id": "A", "question": "q", "answer": "a"},
        {"faq_id": "A", "question": "q2", "answer": "a2"},
        {"faq_id": "B", "question": "", "answer": "a"},
        {"faq_id": "C D", "question": "q", "answer": "a"},
        {"faq_id": "E", "question": "q", "answer": "a", "extra": 1},
        {"faq_id": "F", "question": 5, "answer": "a"},
    ]
    with pytest.raises(FaqRefused) as e:
        parse_faq(rows)
    assert e.value.code == "invalid_faq"
    assert [x["row"] for x in e.value.details] == [2, 3, 4, 5, 6]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"id,question,answer\n1,q,a\n", "csv_columns"),
        (b"faq_id,question\n1,q\n", "csv_columns"),
        (b"faq_id,question,answer\n1,q,a,extra\n", "csv_format"),
        (b"faq_id,question,answer\n1,\x82\xff,a\n", "csv_format"),
    ],
)
def test_malformed_faq_csv_is_refused_with_a_stable_code(data: bytes, code: str) -> None:
    with pytest.raises(FaqRefused) as e:
        faq_csv_rows(data)
    assert e.value.code == code


def test_the_coop_faq_csv_loads() -> None:
    entries = parse_faq(faq_csv_rows((DATA / "coop_faq.csv").read_bytes()))
    assert len(entries) == 16 and entries[0].faq_id == "Q1-1"


# ---------------------------------------------------------------- sealing
def test_reply_tokens_are_sealed_and_refused_when_altered_or_under_another_key() -> None:
    key, token = b"k" * 32, "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
    sealed = seal(key, token)
    assert token not in sealed and unseal(key, sealed) == token
    assert seal(key, token) != sealed  # a fresh nonce each time
    assert unseal(b"x" * 32, sealed) is None
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    assert unseal(key, flipped) is None
    assert unseal(key, "not base64!") is None


# ---------------------------------------------------------------- Bedrock (contract, Stubber)
class Faqs:
    def faq(self, account_id: str) -> list[FaqEntry]:
        return faq()

    def faq_revision(self, account_id: str) -> int:
        return 1


def bedrock_client():  # type: ignore[no-untyped-def]
    return botocore.session.get_session().create_client(
        "bedrock-runtime", region_name="ap-northeast-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def converse_reply(text: str) -> dict:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 10, "outputTokens": 10, "totalTokens": 20},
        "metrics": {"latencyMs": 100},
    }


def test_bedrock_answers_from_a_retrieved_entry_with_the_configured_model() -> None:
    client = bedrock_client()
    answerer = BedrockAnswerer(FaqAnswerer(Faqs()), "anthropic.claude-3-haiku-20240307-v1:0", client)
    with Stubber(client) as stub:
        expected = {
            "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
            "system": [{"text": answerer_prompt()}],
            "messages": stubbed_any(),
            "inferenceConfig": {"maxTokens": 400, "temperature": 0},
        }
        stub.add_response(
            "converse", converse_reply(json.dumps({"faq_id": "Q2-4", "answer": "お一人様1回です。"})), expected
        )
        a = answerer.answer("acct", "クーポンは何回使えますか")
        stub.assert_no_pending_responses()
    assert a is not None and (a.faq_id, a.text, a.confidence, a.source) == ("Q2-4", "お一人様1回です。", 1.0, "bedrock")


@pytest.mark.parametrize(
    "model_text",
    ['{"faq_id": null, "answer": ""}', "I cannot help", '{"faq_id": "Q9-9", "answer": "made up"}'],
)
def test_bedrock_without_a_grounded_answer_escalates(model_text: str) -> None:
    client = bedrock_client()
    answerer = BedrockAnswerer(FaqAnswerer(Faqs()), "model-x", client)
    with Stubber(client) as stub:
        stub.add_response("converse", converse_reply(model_text))
        a = answerer.answer("acct", "クーポンは何回使えますか")
    assert a is not None and a.confidence == 0.0 and a.faq_id is None


def test_bedrock_errors_reach_the_caller_so_the_record_is_retried() -> None:
    client = bedrock_client()
    answerer = BedrockAnswerer(FaqAnswerer(Faqs()), "model-x", client)
    with Stubber(client) as stub:
        stub.add_client_error("converse", "ThrottlingException", http_status_code=429)
        with pytest.raises(client.exceptions.ThrottlingException):
            answerer.answer("acct", "クーポンは何回使えますか")


def answerer_prompt() -> str:
    from tsunagu.helpdesk.answerers import SYSTEM_PROMPT

    return SYSTEM_PROMPT


def stubbed_any():  # type: ignore[no-untyped-def]
    from botocore.stub import ANY

    return ANY


def test_open_and_close_defaults_match_r_help_1() -> None:
    assert (HOURS.open, HOURS.close) == (time(10, 0), time(19, 0))


def test_every_day_calendar_staffs_weekends_and_unknown_calendars_are_refused() -> None:
    assert h.hours_from({"calendar": "every_day"}).is_open(jst(2026, 12, 5, 12, 0))  # Saturday
    with pytest.raises(ValueError):
        h.hours_from({"calendar": "lunar"}).is_open(jst(2026, 12, 5, 12, 0))
