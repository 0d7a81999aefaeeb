"""Message worker use case: archive inbound 1:1 messages (R-HIST-1), honour ``unsend``, and
answer with a free reply when the account has one for the event (R-MSG-2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tsunagu.domain.chats import inbound
from tsunagu.ports import AccountStore, ChatArchive
from tsunagu.services.replies import ReplyService


@dataclass
class MessageService:
    accounts: AccountStore
    archive: ChatArchive
    replies: ReplyService

    def handle(self, account_id: str, event: dict[str, Any], received_at_ms: int) -> str:
        account = self.accounts.profile(account_id)
        if account is None:
            return "unknown_account"
        source = event.get("source") or {}
        if event.get("type") == "unsend":
            message_id = str((event.get("unsend") or {}).get("messageId", ""))
            done = source.get("userId") and self.archive.mark_unsent(account_id, source["userId"], message_id)
            return "unsent" if done else "unsend_unknown_message"
        message = inbound(event)
        if message is not None:
            # Conditional write: a redelivered event archives nothing twice.
            self.archive.put(account_id, message, account.chat_retention_days)
        return self.replies.handle(account_id, event, received_at_ms, account)
