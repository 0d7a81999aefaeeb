"""Free replies (R-MSG-2): the greeting on follow, keyword and catch-all auto-responses."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tsunagu.domain.replies import can_reply, reply_text_for
from tsunagu.errors import BadRequest
from tsunagu.ports import AccountStore, ChannelSecrets, LineMessaging


@dataclass
class ReplyService:
    accounts: AccountStore
    secrets: ChannelSecrets
    line: LineMessaging

    def handle(self, account_id: str, event: dict[str, Any], received_at_ms: int) -> str:
        if not can_reply(event, received_at_ms, int(time.time() * 1000)):
            return "no_reply"
        found = self.accounts.get(account_id)
        if found is None:
            return "unknown_account"
        text = reply_text_for(found[0].settings, event)
        if text is None:
            return "no_reply"
        token = self.secrets.access_token(account_id)
        if token is None:
            return "channel_not_configured"
        try:
            self.line.reply(token, event["replyToken"], [text])
        except BadRequest:
            # 4xx (e.g. "Invalid reply token") is final: retrying cannot make the token valid.
            return "refused"
        return "replied"
