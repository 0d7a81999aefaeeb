"""What the help desk depends on, as Protocols: its store, the answerer (two adapters: the
embedded FAQ retrieval and Amazon Bedrock), LINE's reply and push APIs, the usage ledger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tsunagu.helpdesk.domain import Conversation
    from tsunagu.helpdesk.retrieval import FaqEntry


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    faq_id: str | None
    confidence: float  # 0 ... 1; below the account's threshold the chat is escalated
    source: str  # faq | bedrock


class Answerer(Protocol):
    def answer(self, account_id: str, question: str) -> Answer | None: ...


class FaqSource(Protocol):
    def faq(self, account_id: str) -> list[FaqEntry]: ...
    def faq_revision(self, account_id: str) -> int: ...


class HelpdeskStore(FaqSource, Protocol):
    def put_faq(self, account_id: str, entries: list[FaqEntry], replace_all: bool) -> int: ...
    def settings(self, account_id: str) -> dict[str, Any] | None: ...
    def put_settings(self, account_id: str, settings: dict[str, Any]) -> None: ...
    def conversation(self, account_id: str, user_id: str) -> tuple[Conversation, tuple[str, int] | None]: ...
    def save(
        self, account_id: str, before: Conversation, after: Conversation, sealed_reply: tuple[str, int] | None = None
    ) -> bool: ...
    def clear_reply_token(self, account_id: str, user_id: str) -> None: ...
    def queue(self, account_id: str, limit: int = 100) -> list[Conversation]: ...
    def count(self, account_id: str, day: str, adds: dict[str, int]) -> None: ...
    def counters(self, account_id: str, day: str) -> dict[str, int]: ...


class OperatorLine(Protocol):
    def reply_messages(self, access_token: str, reply_token: str, messages: list[dict[str, Any]]) -> list[str]: ...
    def push(self, access_token: str, to: str, messages: list[dict[str, Any]], retry_key: str) -> str: ...


class Ledger(Protocol):
    def record(self, account_id: str, send_id: str, kind: str, recipients: int, at_ms: int) -> bool: ...
