"""What messaging depends on, as Protocols: friend state, the chat archive and LINE's reply API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tsunagu.messaging.chats import ChatMessage
    from tsunagu.messaging.friendship import FriendSnapshot, Transition


class FriendStore(Protocol):
    def get(self, account_id: str, user_id: str) -> FriendSnapshot | None: ...
    def apply(
        self, account_id: str, user_id: str, event_id: str, previous: FriendSnapshot | None, t: Transition
    ) -> bool: ...
    def counts(self, account_id: str) -> dict[str, int]: ...
    def event_applied(self, account_id: str, event_id: str) -> bool: ...
    def put_daily_snapshot(self, account_id: str, day: str, counts: dict[str, int]) -> None: ...


class ChatArchive(Protocol):
    def put(self, account_id: str, m: ChatMessage, retention_days: int) -> bool: ...
    def mark_unsent(self, account_id: str, user_id: str, message_id: str) -> bool: ...
    def page(
        self,
        account_id: str,
        user_id: str | None,
        since_ms: int | None,
        until_ms: int | None,
        limit: int,
        cursor: dict[str, Any] | None,
    ) -> tuple[list[ChatMessage], dict[str, Any] | None]: ...


class LineMessaging(Protocol):
    def reply(self, access_token: str, reply_token: str, texts: list[str]) -> list[str]: ...
    def issue_link_token(self, access_token: str, user_id: str) -> str: ...


class FriendDirectory(FriendStore, Protocol):
    """Friend state read by the API and by other capabilities (member segments)."""

    def list(
        self, account_id: str, limit: int = 100, start: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]: ...


class FriendTagger(Protocol):
    """The audiences capability's automatic tags: keyword and postback rules (campaigns room)."""

    def on_event(self, account_id: str, user_id: str, event: dict[str, Any]) -> int: ...
