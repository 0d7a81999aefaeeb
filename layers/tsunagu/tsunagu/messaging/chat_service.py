"""Chat history export (R-HIST-1, R-LINK-15): one user's or all users' 1:1 history as CSV,
in pages (a Lambda response is at most 6 MB), with an opaque cursor for the next page."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from tsunagu import keys
from tsunagu.errors import ValidationFailed
from tsunagu.messaging.chats import parse_jst_date, to_csv
from tsunagu.messaging.ports import ChatArchive

MAX_PAGE = 5000


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode() if key else None


def decode_cursor(token: str | None, account_id: str, user_id: str | None) -> dict[str, Any] | None:
    if not token:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValidationFailed("cursor is not one this API gave out", code="invalid_cursor") from None
    # A cursor must point into the caller's own partition: never another account's chats.
    want = ("PK", keys.chat_partition(account_id, user_id)) if user_id else ("GSI1PK", keys.chats_index(account_id))
    if not isinstance(key, dict) or key.get(want[0]) != want[1] or not all(isinstance(v, str) for v in key.values()):
        raise ValidationFailed("cursor is not one this API gave out", code="invalid_cursor")
    return key


@dataclass
class ChatExport:
    archive: ChatArchive

    def export(
        self,
        account_id: str,
        user_id: str | None,
        since: str | None,
        until: str | None,
        limit: int | str | None,
        cursor: str | None,
    ) -> tuple[str, str | None, int]:
        """CSV text, the cursor of the next page (None when done), and the row count."""
        try:
            since_ms = parse_jst_date(since)
            until_ms = parse_jst_date(until, end_of_day=True)
        except (ValueError, OverflowError):
            raise ValidationFailed("since/until must be dates like 2026-11-22 (JST)", code="invalid_date") from None
        if since_ms is not None and until_ms is not None and since_ms >= until_ms:
            raise ValidationFailed("since must be before until", code="invalid_date")
        try:
            n = int(limit) if limit else MAX_PAGE
        except ValueError:
            raise ValidationFailed("limit must be a whole number", code="invalid_limit") from None
        if not 1 <= n <= MAX_PAGE:
            raise ValidationFailed(f"limit must be 1 to {MAX_PAGE}", code="invalid_limit")
        start = decode_cursor(cursor, account_id, user_id)
        rows, nxt = self.archive.page(account_id, user_id, since_ms, until_ms, n, start)
        return to_csv(rows), encode_cursor(nxt), len(rows)
