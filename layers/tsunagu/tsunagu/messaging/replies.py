"""Which free reply (R-MSG-2) an event earns: the greeting on follow, keyword auto-responses
and the catch-all on text messages. Never in standby mode, never with a stale reply token."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from tsunagu.accounts.profile import AccountProfile

# LINE: a reply token must be used within one minute of receipt, and never once 20 minutes have
# passed since the event occurred (line-platform.md 2.1). Keep a margin for the call itself.
REPLY_TOKEN_MAX_AGE_MS = 50_000
REPLY_EVENT_MAX_AGE_MS = 20 * 60_000


def _norm(text: str) -> str:
    # Full-width and half-width forms match each other ("ＨＥＬＰ" == "help").
    return unicodedata.normalize("NFKC", text).strip().casefold()


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    origin: str  # greeting | auto_response


def reply_for(settings: AccountProfile, event: dict[str, Any]) -> Reply | None:
    """Exact keywords first, then "contains" keywords, then the catch-all."""
    kind = event.get("type")
    if kind == "follow":
        return Reply(settings.greeting, "greeting") if settings.greeting else None
    if kind != "message" or event.get("message", {}).get("type") != "text":
        return None
    keyword = keyword_reply(settings, event)
    if keyword is not None:
        return keyword
    return Reply(settings.catch_all_reply, "auto_response") if settings.catch_all_reply else None


def keyword_reply(settings: AccountProfile, event: dict[str, Any]) -> Reply | None:
    """The keyword auto-response a text message matches (not the catch-all): the business's own
    rules, which answer before the help desk does."""
    if event.get("type") != "message" or (event.get("message") or {}).get("type") != "text":
        return None
    text = _norm(event["message"].get("text", ""))
    for ar in settings.auto_responses:
        if ar.match == "exact" and any(_norm(k) == text for k in ar.keywords):
            return Reply(ar.reply, "auto_response")
    for ar in settings.auto_responses:
        if ar.match == "contains" and any(_norm(k) in text for k in ar.keywords):
            return Reply(ar.reply, "auto_response")
    return None


def can_reply(event: dict[str, Any], received_at_ms: int, now_ms: int) -> bool:
    if event.get("mode", "active") != "active" or not event.get("replyToken"):
        return False
    if now_ms - received_at_ms > REPLY_TOKEN_MAX_AGE_MS:
        return False
    return now_ms - int(event.get("timestamp", 0)) <= REPLY_EVENT_MAX_AGE_MS
