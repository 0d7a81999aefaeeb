"""Message worker use case: archive inbound 1:1 messages (R-HIST-1), honour ``unsend``, and
answer with a free reply when the account has one for the event (R-MSG-2)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tsunagu.accounts.ports import AccountStore
from tsunagu.lines.domain import line_command
from tsunagu.linking.service import LinkingService
from tsunagu.messaging.chats import inbound
from tsunagu.messaging.ports import ChatArchive, FriendTagger
from tsunagu.messaging.replies import can_reply, keyword_reply
from tsunagu.messaging.reply_service import ReplyService

if TYPE_CHECKING:
    from tsunagu.helpdesk.service import HelpDesk
    from tsunagu.lines.service import LinesService

LINK_COMMANDS = {"連携": "link", "連携する": "link", "連携解除": "unlink", "連携状況": "link_status"}
POSTBACK_COMMANDS = {"action=link": "link", "action=unlink": "unlink", "action=link_status": "link_status"}


def link_command(event: dict[str, Any]) -> str | None:
    """The OA menu's linking actions: a rich-menu postback, or the same words typed."""
    if event.get("type") == "postback":
        return POSTBACK_COMMANDS.get(str((event.get("postback") or {}).get("data", "")))
    message = event.get("message") or {}
    if event.get("type") == "message" and message.get("type") == "text":
        return LINK_COMMANDS.get(str(message.get("text", "")).strip())
    return None


@dataclass
class MessageService:
    accounts: AccountStore
    archive: ChatArchive
    replies: ReplyService
    linking: LinkingService | None = None
    lines: LinesService | None = None
    helpdesk: HelpDesk | None = None
    tagger: FriendTagger | None = None

    def handle(self, account_id: str, event: dict[str, Any], received_at_ms: int, origin: str = "") -> str:
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
        if self.tagger is not None and source.get("type") == "user" and source.get("userId"):
            self.tagger.on_event(account_id, source["userId"], event)  # tag rules (set ADD/DELETE: idempotent)
        command = link_command(event) if self.linking is not None else None
        if command is not None and self.linking is not None and source.get("type") == "user":
            return self._link_command(account_id, command, source["userId"], event, received_at_ms, origin)
        services = self.lines is not None or self.helpdesk is not None
        if services and source.get("type") == "user" and keyword_reply(account, event) is None:
            answered = self._services(account_id, source["userId"], event, received_at_ms)
            if answered is not None:
                return answered
        return self.replies.handle(account_id, event, received_at_ms, account)

    def _services(self, account_id: str, user_id: str, event: dict[str, Any], received_at_ms: int) -> str | None:
        """Remaining data and gifts (R-LINK-12, R-GIFT-1), then the help desk (R-HELP-1); None:
        neither answers, so the keyword auto-responses have their turn."""
        fresh = can_reply(event, received_at_ms, int(time.time() * 1000))
        cmd = line_command(event) if self.lines is not None else None
        if cmd is not None and self.lines is not None:
            return self.lines.handle_chat(account_id, user_id, cmd, event["replyToken"]) if fresh else "no_reply"
        if self.helpdesk is not None:
            # Without a usable reply token the help desk still records an operator's chat.
            outcome = self.helpdesk.handle(account_id, event if fresh else {**event, "replyToken": None})
            if outcome is not None:
                return f"helpdesk_{outcome}"
        return None

    def _link_command(
        self, account_id: str, command: str, user_id: str, event: dict[str, Any], received_at_ms: int, origin: str
    ) -> str:
        assert self.linking is not None
        if not can_reply(event, received_at_ms, int(time.time() * 1000)):
            return "no_reply"
        if command == "link":
            return self.linking.start(account_id, user_id, event["replyToken"], origin)
        if command == "unlink":
            done = self.linking.unlink_self(account_id, user_id)
            text = "連携を解除しました。友だち登録はそのままです。" if done else "解除できる連携はありません。"
        else:
            links = self.linking.status(account_id, user_id)
            text = ("連携中: " + "、".join(lk["member_number"] for lk in links)) if links else "連携はありません。"
        self.replies.send_text(account_id, event, text)
        return f"link_{command}"
