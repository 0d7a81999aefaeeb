"""Help desk use cases (R-HELP-1, R-PLAN-5): answer a member's question from the FAQ, escalate to
an operator (the word, a button, or low confidence), keep the bot quiet while an operator has the
chat, let operators answer through the API (reply while the member's reply token is valid, push
otherwise) and hand the chat back; queue metrics. Conversation steps are conditional writes on
the version read: a step that lost a race is retried by the caller's SQS redelivery."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tsunagu.accounts.ports import ChannelSecrets
from tsunagu.errors import BadRequest, ChannelNotConfigured, Conflict, UpstreamError
from tsunagu.helpdesk import domain as h
from tsunagu.helpdesk.ports import Answerer, HelpdeskStore, Ledger, OperatorLine
from tsunagu.helpdesk.retrieval import FaqEntry
from tsunagu.helpdesk.sealing import seal, unseal
from tsunagu.linking.ports import KeyRing

REPLY_TOKEN_USABLE_MS = 50_000  # LINE: one minute from receipt; keep a margin
OPERATOR_BUTTON = {
    "type": "action",
    "action": {"type": "postback", "label": "オペレーターと話す", "data": "action=operator"},
}


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class HelpDesk:
    store: HelpdeskStore
    answerer: Answerer
    secrets: ChannelSecrets
    line: OperatorLine
    keyring: KeyRing
    ledger: Ledger | None = None
    chat_plus: Callable[[str], bool] | None = None  # is Chat Plus active for the account today
    clock: Callable[[], datetime] = utcnow

    def _seal_key(self, account_id: str) -> bytes:
        # Its own key, derived from the account's key ring: never the factor-hashing key itself.
        return hmac.new(self.keyring.key(account_id), b"tsunagu/helpdesk/reply-token", hashlib.sha256).digest()

    def hours(self, account_id: str) -> h.Hours:
        return h.hours_from(self.store.settings(account_id))

    # -- the member's side (message worker) ----------------------------------------------
    def handle(self, account_id: str, event: dict[str, Any]) -> str | None:
        """The help desk's answer to a 1:1 text or postback, or None when it is not the help
        desk's to answer (no FAQ, not a question): the auto-responses then have their turn."""
        source = event.get("source") or {}
        if source.get("type") != "user" or event.get("type") not in ("message", "postback"):
            return None
        user_id, now = str(source["userId"]), self.clock()
        hours = self.hours(account_id)
        conv, _ = self.store.conversation(account_id, user_id)
        current, timeout = h.expire(conv, now, hours)
        day = h.day_of(now)
        if h.wants_bot_back(event) and current.state != h.BOT:
            self._save(account_id, conv, h.hand_back(current, now))
            self.store.count(account_id, day, {"handed_back": 1})
            self._reply(account_id, event, [{"type": "text", "text": "自動応答に戻りました。ご質問をどうぞ。"}])
            return "handed_back"
        if current.state in h.SILENT:
            # An operator has this chat: no bot reply; keep the reply token (sealed) for them.
            token = event.get("replyToken")
            sealed = (seal(self._seal_key(account_id), str(token)), h.ms(now)) if token else None
            self._save(account_id, conv, h.member_spoke(current, now), sealed)
            return "with_operator"
        if timeout:
            self._save(account_id, conv, current)
            self.store.count(account_id, day, {timeout: 1})
            conv = current
        message = event.get("message") or {}
        if h.wants_operator(event):
            return self._escalate(account_id, event, conv, str(message.get("text", "")), now, hours, "asked")
        if event.get("type") != "message" or message.get("type") != "text":
            return None
        question = str(message.get("text", "")).strip()
        answer = self.answerer.answer(account_id, question) if question else None
        if answer is None and not self.store.faq_revision(account_id):
            return None  # no FAQ ever loaded: the help desk is off for this account
        if answer is None or answer.confidence < hours.threshold or not answer.text:
            return self._escalate(account_id, event, conv, question, now, hours, "low_confidence")
        reply = {"type": "text", "text": answer.text, "quickReply": {"items": [OPERATOR_BUTTON]}}
        self._reply(account_id, event, [reply])
        self.store.count(account_id, day, {"ai_answered": 1})
        return "ai_answered"

    def _escalate(
        self,
        account_id: str,
        event: dict[str, Any],
        conv: h.Conversation,
        question: str,
        now: datetime,
        hours: h.Hours,
        why: str,
    ) -> str:
        after = h.escalate(conv, question, now, hours)
        ahead = sum(1 for c in self.store.queue(account_id) if c.state == h.WAITING and c.user_id != conv.user_id)
        self._save(account_id, conv, after)
        text = h.escalation_message(after, now, hours, ahead)
        if why == "low_confidence":
            text = "自動応答ではお答えできませんでした。" + text
        self._reply(account_id, event, [{"type": "text", "text": text}])
        if conv.state == h.BOT:
            self.store.count(account_id, h.day_of(now), {"escalated": 1, f"escalated_{after.state}": 1})
        return f"escalated_{after.state}"

    def _save(
        self, account_id: str, before: h.Conversation, after: h.Conversation, sealed: tuple[str, int] | None = None
    ) -> None:
        if not self.store.save(account_id, before, after, sealed):
            # Another worker moved this conversation between our read and write: fail the
            # record so SQS redelivers it and it is decided on the new state.
            raise UpstreamError("conversation changed concurrently; retry", code="conversation_conflict")

    def _reply(self, account_id: str, event: dict[str, Any], messages: list[dict[str, Any]]) -> None:
        token = self.secrets.access_token(account_id)
        reply_token = event.get("replyToken")
        if token is None or not reply_token:
            return
        try:
            self.line.reply_messages(token, str(reply_token), messages)
        except BadRequest:
            return  # final (an expired token)
        if self.ledger is not None:
            digest = hashlib.sha256(str(reply_token).encode()).hexdigest()[:32]
            self.ledger.record(account_id, f"reply-{digest}", "reply", 1, int(self.clock().timestamp() * 1000))

    # -- the operators' side (API) --------------------------------------------------------
    def operator_reply(self, account_id: str, user_id: str, text: str, request_id: str | None = None) -> dict[str, Any]:
        now = self.clock()
        conv, sealed = self.store.conversation(account_id, user_id)
        current, _ = h.expire(conv, now, self.hours(account_id))
        after = h.operator_answered(current, now)  # refuses a conversation with the bot
        token = self.secrets.access_token(account_id)
        if token is None:
            raise ChannelNotConfigured("the account has no channel credentials", code="channel_not_configured")
        if not self.store.save(account_id, conv, after):
            raise Conflict("the conversation changed; read it again", code="conversation_changed")
        messages = [{"type": "text", "text": text}]
        via = "push"
        reply_token = None
        if sealed and h.ms(now) - sealed[1] <= REPLY_TOKEN_USABLE_MS:
            reply_token = unseal(self._seal_key(account_id), sealed[0])
        if reply_token:
            self.store.clear_reply_token(account_id, user_id)  # single use
            try:
                self.line.reply_messages(token, reply_token, messages)
                via = "reply"
            except BadRequest:
                via = "push"  # expired meanwhile: push instead
        send_id = "chat-" + (request_id or uuid.uuid4().hex)
        if via == "push":
            self.line.push(token, user_id, messages, str(uuid.uuid5(uuid.NAMESPACE_URL, f"{account_id}/{send_id}")))
        chat_plus = bool(self.chat_plus and self.chat_plus(account_id))
        # R-PLAN-5: with Chat Plus, operator messages are not additional (billable) messages.
        kind = "chat" if via == "reply" or chat_plus else "push"
        if self.ledger is not None:
            self.ledger.record(account_id, send_id, kind, 1, int(now.timestamp() * 1000))
        day = h.day_of(now)
        if current.state in (h.WAITING, h.QUEUED):
            wait = max(0, h.ms(now) - current.queued_at_ms)
            self.store.count(account_id, day, {"operator_answered": 1, "wait_ms_total": wait, "wait_count": 1})
        return {"user_id": user_id, "via": via, "metered_as": kind, "chat_plus": chat_plus, "state": after.state}

    def hand_back(self, account_id: str, user_id: str) -> dict[str, Any]:
        now = self.clock()
        conv, _ = self.store.conversation(account_id, user_id)
        after = h.hand_back(conv, now)
        if not self.store.save(account_id, conv, after):
            raise Conflict("the conversation changed; read it again", code="conversation_changed")
        self.store.count(account_id, h.day_of(now), {"handed_back": 1})
        return after.view()

    def queue(self, account_id: str) -> dict[str, Any]:
        now, hours = self.clock(), self.hours(account_id)
        waiting = []
        for c in self.store.queue(account_id):
            current, timeout = h.expire(c, now, hours)
            if timeout is None and current.state in (h.WAITING, h.QUEUED):
                waiting.append({**current.view(), "waiting_ms": max(0, h.ms(now) - current.queued_at_ms)})
        day = h.day_of(now)
        counts = self.store.counters(account_id, day)
        answered = counts.get("wait_count", 0)
        return {
            "open": hours.is_open(now),
            "next_opening": hours.next_opening(now).isoformat(),
            "waiting": [w for w in waiting if w["state"] == h.WAITING],
            "queued_for_opening": [w for w in waiting if w["state"] == h.QUEUED],
            "metrics": {
                "day": day,
                "waiting": sum(1 for w in waiting if w["state"] == h.WAITING),
                "queued_for_opening": sum(1 for w in waiting if w["state"] == h.QUEUED),
                "answered_by_ai": counts.get("ai_answered", 0),
                "answered_by_operator": counts.get("operator_answered", 0),
                "escalated": counts.get("escalated", 0),
                "timed_out": counts.get("timed_out", 0) + counts.get("idle", 0),
                "handed_back": counts.get("handed_back", 0),
                "average_wait_ms": (counts.get("wait_ms_total", 0) // answered) if answered else None,
            },
        }

    # -- the FAQ and settings ------------------------------------------------------------
    def load_faq(self, account_id: str, rows: Any, replace_all: bool = False) -> dict[str, Any]:
        entries = parse_faq(rows)
        removed = self.store.put_faq(account_id, entries, replace_all)
        return {"loaded": len(entries), "removed": removed}

    def load_faq_csv(self, account_id: str, data: bytes, replace_all: bool = False) -> dict[str, Any]:
        return self.load_faq(account_id, faq_csv_rows(data), replace_all)

    def faq(self, account_id: str) -> list[dict[str, Any]]:
        return [
            {"faq_id": e.faq_id, "question": e.question, "answer": e.answer, "category": e.category}
            for e in self.store.faq(account_id)
        ]

    def ask(self, account_id: str, question: str) -> dict[str, Any]:
        """What the answerer would say (for operators tuning the FAQ); changes nothing."""
        a = self.answerer.answer(account_id, question)
        threshold = self.hours(account_id).threshold
        if a is None:
            return {"answer": None, "faq_id": None, "confidence": 0.0, "escalates": True}
        return {
            "answer": a.text,
            "faq_id": a.faq_id,
            "confidence": a.confidence,
            "source": a.source,
            "escalates": a.confidence < threshold or not a.text,
        }

    def settings(self, account_id: str) -> dict[str, Any]:
        return self.hours(account_id).view()

    def put_settings(self, account_id: str, settings: dict[str, Any]) -> dict[str, Any]:
        merged = {**self.hours(account_id).view(), **settings}
        try:
            hours = h.hours_from(merged)
            hours.business  # noqa: B018 - an unknown calendar is refused here, not at the next question
        except ValueError as e:
            raise BadRequest(str(e), code="invalid_helpdesk_settings") from None
        if hours.close <= hours.open:
            raise BadRequest("close must be after open", code="invalid_helpdesk_settings")
        self.store.put_settings(account_id, hours.view())
        return hours.view()


# ---------------------------------------------------------------- FAQ input
FAQ_COLUMNS = ("faq_id", "question", "answer", "category")
MAX_FAQ = 500


class FaqRefused(BadRequest):
    status = 422


def parse_faq(rows: Any) -> list[FaqEntry]:
    """Every row or none (nothing is half-loaded)."""
    if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_FAQ:
        raise FaqRefused(f"send 1 to {MAX_FAQ} entries", code="invalid_faq")
    out, errors, seen = [], [], set()
    for n, r in enumerate(rows, start=1):
        problem = _faq_problem(r)
        if problem is None and r["faq_id"].strip() in seen:
            problem = ("faq_id", "faq_id appears twice")
        if problem:
            errors.append({"row": n, "field": problem[0], "message": problem[1]})
            continue
        fid = r["faq_id"].strip()
        seen.add(fid)
        out.append(FaqEntry(fid, r["question"].strip(), r["answer"].strip(), str(r.get("category") or "").strip()))
    if errors:
        raise FaqRefused(f"{len(errors)} entr(ies) refused; nothing was stored", code="invalid_faq", details=errors)
    return out


def _faq_problem(r: Any) -> tuple[str, str] | None:
    if not isinstance(r, dict):
        return ("", "each entry must be an object")
    if set(r) - set(FAQ_COLUMNS):
        return ("", "unknown field(s): " + ", ".join(sorted(map(str, set(r) - set(FAQ_COLUMNS)))))
    limits = {"faq_id": 40, "question": 500, "answer": 2000, "category": 60}
    for name, limit in limits.items():
        value = r.get(name, "")
        if not isinstance(value, str):
            return (name, "must be text")
        if name != "category" and not value.strip():
            return (name, "is required")
        if len(value) > limit:
            return (name, f"at most {limit} characters")
    fid = r["faq_id"].strip()
    if not all(ch.isascii() and (ch.isalnum() or ch in "-_.") for ch in fid):
        return ("faq_id", "letters, digits, - _ . only")
    return None


def faq_csv_rows(data: bytes) -> list[dict[str, Any]]:
    from tsunagu.text import csv_table

    return list(
        csv_table(
            data,
            required={"faq_id", "question", "answer"},
            allowed=FAQ_COLUMNS,
            refuse=lambda message, code: FaqRefused(message, code=code),
        )
    )
