"""The help desk's rules (R-HELP-1): AI answers around the clock, human operators 10:00-19:00 JST
on the account's business calendar, and escalation from the AI to an operator in the same 1:1
chat. Chat Plus (R-PLAN-5): operator messages are not counted as additional messages.

The conversation of one LINE user is a small state machine (pure; the store writes each step
conditioned on the version it read):

    bot ──escalate, in hours──▶ waiting ──operator answers──▶ operator ──hand back / idle──▶ bot
     │                            └──no operator within wait_timeout──▶ bot (timed out)
     └──escalate, outside hours──▶ queued ──operators open──▶ (listed as waiting) ──▶ operator …

- ``waiting`` and ``operator``: bot replies stop for that user; the member's messages are kept
  in the chat archive for the operator.
- ``queued`` (asked outside hours): the member is told when operators are back; the AI keeps
  answering other questions meanwhile (R-HELP-1: 24/7), and the question waits for the morning.
- Timeouts are applied when the conversation is next touched (a member message, the queue
  listing), so no scheduler has to walk conversations."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from tsunagu.billing.calendar import CALENDARS, BusinessCalendar
from tsunagu.errors import DomainError

JST = timezone(timedelta(hours=9), "JST")
ESCALATION_WORDS = ("オペレーター", "オペレータ", "有人", "担当者", "人と話したい")
ESCALATION_POSTBACK = "action=operator"
HANDBACK_POSTBACK = "action=operator_end"

BOT, WAITING, QUEUED, OPERATOR = "bot", "waiting", "queued", "operator"
SILENT = frozenset({WAITING, OPERATOR})  # bot replies stop


# The business calendars, plus one for desks staffed every day of the year.
HELPDESK_CALENDARS = {**CALENDARS, "every_day": BusinessCalendar("every_day", weekends=False)}


class HelpdeskRefused(DomainError):
    status = 409


@dataclass(frozen=True, slots=True)
class Hours:
    """Operator hours: ``open``-``close`` JST on the business days of ``calendar``."""

    open: time = time(10, 0)
    close: time = time(19, 0)
    calendar: str = "jp_holidays_year_end"
    wait_timeout_min: int = 60  # waiting with no operator answer -> back to the bot
    idle_timeout_min: int = 30  # an operator conversation with no message -> back to the bot
    handle_min: int = 5  # the average minutes one conversation ahead adds to the wait
    threshold: float = 0.25  # below this confidence the question goes to an operator

    @property
    def business(self) -> BusinessCalendar:
        try:
            return HELPDESK_CALENDARS[self.calendar]
        except KeyError:
            raise ValueError(f"unknown calendar {self.calendar!r}; one of {sorted(HELPDESK_CALENDARS)}") from None

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(JST)
        return self.business.is_business_day(local.date()) and self.open <= local.time() < self.close

    def next_opening(self, at: datetime) -> datetime:
        """The next moment operators are in (``at`` itself when they are)."""
        if self.is_open(at):
            return at
        local = at.astimezone(JST)
        day: date = local.date()
        if self.business.is_business_day(day) and local.time() < self.open:
            return datetime.combine(day, self.open, JST)
        day = self.business.next_business_day(day)
        return datetime.combine(day, self.open, JST)

    def view(self) -> dict[str, Any]:
        return {
            "open": self.open.strftime("%H:%M"),
            "close": self.close.strftime("%H:%M"),
            "calendar": self.calendar,
            "wait_timeout_min": self.wait_timeout_min,
            "idle_timeout_min": self.idle_timeout_min,
            "handle_min": self.handle_min,
            "threshold": self.threshold,
        }


def hours_from(d: dict[str, Any] | None) -> Hours:
    if not d:
        return Hours()
    return Hours(
        time.fromisoformat(str(d.get("open", "10:00"))),
        time.fromisoformat(str(d.get("close", "19:00"))),
        str(d.get("calendar", "jp_holidays_year_end")),
        int(d.get("wait_timeout_min", 60)),
        int(d.get("idle_timeout_min", 30)),
        int(d.get("handle_min", 5)),
        float(d.get("threshold", 0.25)),
    )


@dataclass(frozen=True, slots=True)
class Conversation:
    user_id: str
    state: str = BOT
    version: int = 0
    question: str = ""
    since_ms: int = 0  # when it entered its state
    queued_at_ms: int = 0  # when it joined the operator queue (the wait is counted from here)
    last_activity_ms: int = 0

    def view(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "state": self.state,
            "question": self.question,
            "since_ms": self.since_ms,
            "queued_at_ms": self.queued_at_ms or None,
            "last_activity_ms": self.last_activity_ms,
        }


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def at_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


def wants_operator(event: dict[str, Any]) -> bool:
    if event.get("type") == "postback":
        return str((event.get("postback") or {}).get("data", "")) == ESCALATION_POSTBACK
    message = event.get("message") or {}
    if event.get("type") != "message" or message.get("type") != "text":
        return False
    text = unicodedata.normalize("NFKC", str(message.get("text", "")))
    return any(w in text for w in ESCALATION_WORDS)


def wants_bot_back(event: dict[str, Any]) -> bool:
    return event.get("type") == "postback" and str((event.get("postback") or {}).get("data", "")) == HANDBACK_POSTBACK


def expire(c: Conversation, now: datetime, hours: Hours) -> tuple[Conversation, str | None]:
    """Apply a due timeout: (the conversation now, ``timed_out`` / ``idle`` or None)."""
    now_ms = ms(now)
    if c.state == WAITING and now_ms - c.queued_at_ms > hours.wait_timeout_min * 60_000:
        return _to_bot(c, now_ms), "timed_out"
    if c.state == QUEUED:
        opening = hours.next_opening(at_ms(c.queued_at_ms))
        if now >= opening:
            # Operators opened: the question is waiting now; the wait timeout runs from opening.
            waiting = replace(c, state=WAITING, version=c.version + 1, since_ms=ms(opening), queued_at_ms=ms(opening))
            return expire(waiting, now, hours)
    if c.state == OPERATOR and now_ms - c.last_activity_ms > hours.idle_timeout_min * 60_000:
        return _to_bot(c, now_ms), "idle"
    return c, None


def _to_bot(c: Conversation, now_ms: int) -> Conversation:
    return Conversation(c.user_id, BOT, c.version + 1, "", now_ms, 0, now_ms)


def escalate(c: Conversation, question: str, now: datetime, hours: Hours) -> Conversation:
    """The member asked for a person (or the AI was not sure enough)."""
    now_ms = ms(now)
    if c.state in (WAITING, OPERATOR, QUEUED):
        return replace(c, version=c.version + 1, last_activity_ms=now_ms)
    state = WAITING if hours.is_open(now) else QUEUED
    return Conversation(c.user_id, state, c.version + 1, question[:500], now_ms, now_ms, now_ms)


def operator_answered(c: Conversation, now: datetime) -> Conversation:
    if c.state not in (WAITING, QUEUED, OPERATOR):
        raise HelpdeskRefused("this conversation is not with an operator", code="not_escalated")
    return replace(c, state=OPERATOR, version=c.version + 1, since_ms=ms(now), last_activity_ms=ms(now))


def hand_back(c: Conversation, now: datetime) -> Conversation:
    if c.state == BOT:
        raise HelpdeskRefused("this conversation is already with the bot", code="not_escalated")
    return _to_bot(c, ms(now))


def member_spoke(c: Conversation, now: datetime) -> Conversation:
    return replace(c, version=c.version + 1, last_activity_ms=ms(now)) if c.state in SILENT else c


def escalation_message(c: Conversation, now: datetime, hours: Hours, ahead: int) -> str:
    """What the member is told: the expected wait, or when operators are back."""
    if c.state == QUEUED:
        opening = hours.next_opening(now).astimezone(JST)
        when = opening.strftime("%m月%d日 %H:%M").lstrip("0")
        return (
            f"ただいまオペレーターの受付時間外です(受付 {hours.open:%H:%M}〜{hours.close:%H:%M})。"
            f"ご質問をお預かりしました。{when} 以降に順番にお返事します。"
        )
    wait = max(1, (ahead + 1) * hours.handle_min)
    return f"オペレーターにおつなぎします。お待ちの方 {ahead} 人、待ち時間の目安は約{wait}分です。"


def day_of(now: datetime) -> str:
    return now.astimezone(JST).date().isoformat()
