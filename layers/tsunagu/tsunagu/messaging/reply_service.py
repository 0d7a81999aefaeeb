"""Free replies (R-MSG-2): the greeting on follow, keyword and catch-all auto-responses.
Every reply sent is archived as the outbound side of the 1:1 chat (R-HIST-1) and recorded once
in the usage ledger (kind greeting / auto_response / reply, not billable), keyed by its reply
token - a redelivered event cannot count twice."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from tsunagu.accounts.ports import AccountStore, ChannelSecrets
from tsunagu.accounts.profile import AccountProfile
from tsunagu.errors import BadRequest
from tsunagu.messaging.chats import ChatMessage
from tsunagu.messaging.ports import ChatArchive, LineMessaging
from tsunagu.messaging.replies import can_reply, reply_for


@dataclass
class ReplyService:
    accounts: AccountStore
    secrets: ChannelSecrets
    line: LineMessaging
    archive: ChatArchive | None = None
    ledger: Any = None  # DynamoUsageLedger

    def _meter(self, account_id: str, reply_token: str, kind: str) -> None:
        if self.ledger is not None:
            # Keyed on a hash of the token: one reply per token, and no token at rest.
            digest = hashlib.sha256(reply_token.encode()).hexdigest()[:32]
            self.ledger.record(account_id, f"reply-{digest}", kind, 1, int(time.time() * 1000))

    def handle(
        self, account_id: str, event: dict[str, Any], received_at_ms: int, account: AccountProfile | None = None
    ) -> str:
        now_ms = int(time.time() * 1000)
        if not can_reply(event, received_at_ms, now_ms):
            return "no_reply"
        if account is None:
            account = self.accounts.profile(account_id)
            if account is None:
                return "unknown_account"
        reply = reply_for(account, event)
        if reply is None:
            return "no_reply"
        token = self.secrets.access_token(account_id)
        if token is None:
            return "channel_not_configured"
        try:
            sent_ids = self.line.reply(token, event["replyToken"], [reply.text])
        except BadRequest:
            # 4xx (e.g. "Invalid reply token") is final: retrying cannot make the token valid.
            return "refused"
        self._meter(account_id, event["replyToken"], reply.origin)
        user_id = (event.get("source") or {}).get("userId")
        if self.archive is not None and user_id and (event.get("source") or {}).get("type") == "user":
            for i, mid in enumerate(sent_ids or [f"reply-{event.get('webhookEventId')}"]):
                self.archive.put(
                    account_id,
                    ChatMessage(user_id, now_ms + i, str(mid), "out", "text", reply.text, reply.origin),
                    account.chat_retention_days,
                )
        return "replied"

    def send_text(self, account_id: str, event: dict[str, Any], text: str) -> bool:
        """A system reply (linking status etc.); False when the token is refused or missing."""
        token = self.secrets.access_token(account_id)
        if token is None or not event.get("replyToken"):
            return False
        try:
            self.line.reply(token, event["replyToken"], [text])
        except BadRequest:
            return False
        self._meter(account_id, event["replyToken"], "reply")
        return True
