"""1:1 chat history (R-HIST-1, R-LINK-15): LINE does not carry 1:1 chats over to a new
device, so tsunagu archives every inbound message and every reply it sends, and exports them
as CSV that Excel opens correctly with Japanese text (UTF-8 with BOM, CRLF)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

JST = timezone(timedelta(hours=9))
Direction = Literal["in", "out"]

KIND_LABELS = {
    "text": "テキスト",
    "sticker": "スタンプ",
    "image": "画像",
    "video": "動画",
    "audio": "音声",
    "file": "ファイル",
    "location": "位置情報",
}
ORIGIN_LABELS = {"user": "ユーザー", "greeting": "あいさつメッセージ", "auto_response": "自動応答", "reply": "応答"}
CSV_HEADER = ["日時(JST)", "ユーザーID", "方向", "種類", "内容", "送信元", "メッセージID", "取消"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    user_id: str
    timestamp_ms: int
    message_id: str
    direction: Direction
    kind: str
    content: str
    origin: str  # user | greeting | auto_response | reply
    unsent: bool = False


def summarize(message: dict[str, Any]) -> str:
    """A one-cell description of a LINE message object (content is not downloaded)."""
    kind = message.get("type", "")
    if kind == "text":
        return str(message.get("text", ""))
    if kind == "sticker":
        return f"package {message.get('packageId', '')} / sticker {message.get('stickerId', '')}"
    if kind == "file":
        return f"{message.get('fileName', '')} ({message.get('fileSize', '?')} bytes)"
    if kind == "location":
        parts = [message.get("title"), message.get("address"), f"{message.get('latitude')},{message.get('longitude')}"]
        return " ".join(str(p) for p in parts if p)
    if kind in ("image", "video", "audio"):
        return f"[{KIND_LABELS[kind]}]"
    return f"[{kind}]"


def inbound(event: dict[str, Any]) -> ChatMessage | None:
    """The archived form of a message event, for 1:1 chats only (groups and rooms are not 1:1)."""
    source = event.get("source") or {}
    message = event.get("message") or {}
    if event.get("type") != "message" or source.get("type") != "user" or not source.get("userId"):
        return None
    if not message.get("id"):
        return None
    return ChatMessage(
        user_id=source["userId"],
        timestamp_ms=int(event.get("timestamp", 0)),
        message_id=str(message["id"]),
        direction="in",
        kind=str(message.get("type", "unknown")),
        content=summarize(message),
        origin="user",
    )


def _cell(value: str) -> str:
    # A cell that starts like a formula would run in Excel (CSV injection): make it text.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def to_csv(messages: list[ChatMessage], with_header: bool = True) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    if with_header:
        w.writerow(CSV_HEADER)
    for m in messages:
        when = datetime.fromtimestamp(m.timestamp_ms / 1000, UTC).astimezone(JST).strftime("%Y-%m-%d %H:%M:%S")
        w.writerow(
            [
                when,
                m.user_id,
                "受信" if m.direction == "in" else "送信",
                KIND_LABELS.get(m.kind, m.kind),
                _cell("" if m.unsent else m.content),
                ORIGIN_LABELS.get(m.origin, m.origin),
                m.message_id,
                "取消済み" if m.unsent else "",
            ]
        )
    return ("\ufeff" if with_header else "") + buf.getvalue()


def parse_jst_date(value: str | None, end_of_day: bool = False) -> int | None:
    """``YYYY-MM-DD`` (a JST calendar day) -> epoch ms of its start (or of the next day)."""
    if not value:
        return None
    day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=JST)
    if end_of_day:
        day += timedelta(days=1)
    return int(day.timestamp() * 1000)
