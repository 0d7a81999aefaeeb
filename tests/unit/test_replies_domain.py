"""Which free reply an event earns (R-MSG-2), and when a reply token may be used."""

from tests.conftest import line_event
from tsunagu.accounts.domain import AccountSettings, AutoResponse
from tsunagu.accounts.profile import AccountProfile
from tsunagu.messaging.replies import REPLY_EVENT_MAX_AGE_MS, REPLY_TOKEN_MAX_AGE_MS, can_reply, reply_for

API_SETTINGS = AccountSettings(
    name="shop",
    greeting="ようこそ",
    auto_responses=[
        AutoResponse(keywords=["営業時間", "hours"], match="exact", reply="9-21時"),
        AutoResponse(keywords=["クーポン"], match="contains", reply="クーポンはこちら"),
    ],
    catch_all_reply="担当者から折り返します",
)
# Workers read the stored JSON dump of the API's validated settings.
SETTINGS = AccountProfile.from_settings("acct_0123456789abcdef", API_SETTINGS.model_dump(mode="json"))


def reply_text_for(settings, event):
    r = reply_for(settings, event)
    return r.text if r else None


def text(t: str) -> dict:
    return line_event("message", message={"type": "text", "text": t, "id": "1"}, replyToken="r")


def test_follow_earns_the_greeting():
    r = reply_for(SETTINGS, line_event("follow"))
    assert r is not None
    assert (r.text, r.origin) == ("ようこそ", "greeting")


def test_keyword_reply_is_marked_as_an_auto_response():
    r = reply_for(SETTINGS, text("営業時間"))
    assert r is not None
    assert r.origin == "auto_response"


def test_exact_keyword_matches_ignoring_width_and_case():
    assert reply_text_for(SETTINGS, text("営業時間")) == "9-21時"
    assert reply_text_for(SETTINGS, text(" ＨＯＵＲＳ ")) == "9-21時"


def test_contains_keyword_matches_inside_a_sentence():
    assert reply_text_for(SETTINGS, text("今日のクーポンありますか")) == "クーポンはこちら"


def test_exact_keyword_does_not_match_inside_a_sentence_and_catch_all_answers():
    assert reply_text_for(SETTINGS, text("営業時間を教えて")) == "担当者から折り返します"


def test_non_text_messages_and_unknown_events_earn_nothing():
    sticker = line_event("message", message={"type": "sticker", "id": "1"})
    assert reply_text_for(SETTINGS, sticker) is None
    assert reply_text_for(SETTINGS, line_event("unfollow")) is None


def test_without_a_greeting_follow_earns_nothing():
    assert reply_text_for(AccountProfile("acct_0123456789abcdef"), line_event("follow")) is None


def test_standby_mode_never_replies():
    ev = line_event("follow", replyToken="r", mode="standby", ts=1_000)
    assert not can_reply(ev, received_at_ms=1_000, now_ms=1_500)


def test_event_without_reply_token_cannot_be_answered():
    assert not can_reply(line_event("follow", ts=1_000), 1_000, 1_500)


def test_a_stale_reply_token_is_not_used():
    ev = line_event("follow", replyToken="r", ts=1_000)
    assert can_reply(ev, 1_000, 1_000 + REPLY_TOKEN_MAX_AGE_MS)
    assert not can_reply(ev, 1_000, 1_001 + REPLY_TOKEN_MAX_AGE_MS)


def test_a_redelivered_event_older_than_twenty_minutes_is_not_answered():
    ev = line_event("follow", replyToken="r", ts=0)
    now = REPLY_EVENT_MAX_AGE_MS + 1
    assert not can_reply(ev, received_at_ms=now, now_ms=now)


def test_the_workers_profile_reads_every_setting_the_api_stores():
    stored = AccountSettings(
        name="x",
        greeting="g",
        catch_all_reply="c",
        chat_retention_days=30,
        forward_urls=["https://a.example.com/h"],
        auto_responses=[AutoResponse(keywords=["k"], match="contains", reply="r")],
    )
    p = AccountProfile.from_settings("acct_0123456789abcdef", stored.model_dump(mode="json"))
    assert (p.greeting, p.catch_all_reply, p.chat_retention_days) == ("g", "c", 30)
    assert p.forward_urls == ("https://a.example.com/h",)
    assert p.auto_responses[0].keywords == ("k",) and p.auto_responses[0].match == "contains"
