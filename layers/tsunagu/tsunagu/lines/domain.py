"""Mobile lines and their data (seed 000, the carrier): what a line is, who may see it and give
from it, the sizes of a data gift, the throttle at 0 MB and the monthly rollover.

Rules: R-LINK-12 (a user link opens the data view and gifts; a contractor link opens every line
of the contract for viewing and My Page), R-GIFT-1 (gifts of 500 ... 2,500 MB; a line at 0 MB is
throttled to 200 kbps until month end; receiving a gift lifts it).

Decisions written down once here:
- The speed state is a function of the balance: a line is throttled exactly when its remaining
  data is 0 MB. So a gift that empties the giver throttles it, and any gift received lifts the
  throttle, in the same transaction that moves the data - there is no second state to forget.
- Month rollover (JST months, as the carrier bills): on the 1st the remaining data is reset to
  the monthly allowance. Unused data, including data received as a gift, expires at month end;
  nothing carries over. A line read in a later month than its balance is rolled over first.
- A gift never crosses a month: both lines must hold this month's balance."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs

from tsunagu.errors import DomainError

JST = timezone(timedelta(hours=9), "JST")
GIFT_SIZES_MB = (500, 1000, 1500, 2000, 2500)  # R-GIFT-1
THROTTLED_KBPS = 200  # R-GIFT-1
LINE_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")  # as the member register's contract lines
GIFT_REQUEST_SECONDS = 600  # a chat gift must be confirmed within 10 minutes
CONTRACTOR_HINT = (
    "マイページへのかんたんログインには契約者連携が必要です。メニューの「連携」から、"
    "マイページのログインIDとパスワードで連携してください。"
)
LINK_HINT = (
    "データ残量の確認とデータプレゼントには利用者連携が必要です。メニューの「連携」から、"
    "マイページに表示される16桁の利用コードで連携してください。"
)


class LinesRefused(DomainError):
    """A refused line operation: stable ``code``, a Japanese message the member can read."""

    status = 422


class LineNotFound(LinesRefused):
    status = 404


def month_of(at: datetime) -> str:
    return at.astimezone(JST).strftime("%Y-%m")


def current_month(now_ms: int) -> str:
    return month_of(datetime.fromtimestamp(now_ms / 1000, UTC))


@dataclass(frozen=True, slots=True)
class MobileLine:
    line_id: str
    member_number: str  # the contract (契約) the line belongs to
    allowance_mb: int  # the monthly allowance
    remaining_mb: int  # this month's remaining data
    month: str  # the JST month ``remaining_mb`` belongs to (YYYY-MM)
    used_mb: int = 0  # this month's use as the carrier last reported it

    @property
    def throttled(self) -> bool:
        return self.remaining_mb == 0  # R-GIFT-1

    @property
    def speed(self) -> str:
        return "throttled" if self.throttled else "normal"

    def rolled_over(self, month: str) -> MobileLine:
        """The line in ``month``: a later month starts again from the allowance."""
        if month <= self.month:
            return self
        return MobileLine(self.line_id, self.member_number, self.allowance_mb, self.allowance_mb, month, 0)

    def view(self) -> dict[str, Any]:
        return {
            "line_id": self.line_id,
            "member_number": self.member_number,
            "allowance_mb": self.allowance_mb,
            "remaining_mb": self.remaining_mb,
            "used_mb": self.used_mb,
            "month": self.month,
            "speed": self.speed,
            "speed_kbps": THROTTLED_KBPS if self.throttled else None,
        }


def check_gift_size(mb: int) -> None:
    if mb not in GIFT_SIZES_MB:
        raise LinesRefused(
            "プレゼントできるのは 500MB・1,000MB・1,500MB・2,000MB・2,500MB のいずれかです。", code="gift_size"
        )


def check_gift(giver: MobileLine, receiver: MobileLine, mb: int) -> None:
    """R-GIFT-1, before anything is written (the store's conditions hold it under concurrency)."""
    check_gift_size(mb)
    if giver.line_id == receiver.line_id:
        raise LinesRefused("ご自身の回線にはプレゼントできません。", code="gift_to_self")
    if giver.remaining_mb < mb:
        raise LinesRefused(f"データ残量が足りません(残り {giver.remaining_mb:,}MB)。", code="gift_insufficient_data")


def usage_update(line: MobileLine, used_mb: int) -> MobileLine | None:
    """The line after the carrier reports ``used_mb`` (cumulative this month); None when the
    report is older than what we have (feeds arrive out of order)."""
    if used_mb < line.used_mb:
        return None
    remaining = max(0, line.remaining_mb - (used_mb - line.used_mb))
    return MobileLine(line.line_id, line.member_number, line.allowance_mb, remaining, line.month, used_mb)


# ---------------------------------------------------------------- the chat face
DATA_WORDS = frozenset({"残量", "データ残量", "残りデータ", "データ量"})
MYPAGE_WORDS = frozenset({"マイページ", "マイページログイン"})
GIFT_WORD = re.compile(r"^(?:データ)?プレゼント(?:\s+(?P<to>[A-Za-z0-9_-]{1,32})(?:\s+(?P<mb>\d{3,5})(?:MB)?)?)?$")


@dataclass(frozen=True, slots=True)
class LineCommand:
    action: str  # data | gift | gift_confirm | gift_cancel | mypage
    to: str | None = None
    mb: int | None = None
    request_id: str | None = None


def line_command(event: dict[str, Any]) -> LineCommand | None:
    """The rich menu's postbacks (``action=data``, ``action=gift&to=…&mb=…``, ``action=gift_confirm&id=…``)
    or the same typed: 「残量」, 「プレゼント」, 「プレゼント L0002 500」."""
    if event.get("type") == "postback":
        q = parse_qs(str((event.get("postback") or {}).get("data", "")))
        action = (q.get("action") or [""])[0]
        if action not in ("data", "gift", "gift_confirm", "gift_cancel", "mypage"):
            return None
        mb = (q.get("mb") or [""])[0]
        to = (q.get("to") or [""])[0]
        request_id = (q.get("id") or [""])[0]
        return LineCommand(action, to or None, int(mb) if mb.isdigit() and len(mb) <= 6 else None, request_id or None)
    message = event.get("message") or {}
    if event.get("type") != "message" or message.get("type") != "text":
        return None
    text = unicodedata.normalize("NFKC", str(message.get("text", ""))).strip()
    if text in DATA_WORDS:
        return LineCommand("data")
    if text in MYPAGE_WORDS:
        return LineCommand("mypage")
    m = GIFT_WORD.match(text)
    if m:
        return LineCommand("gift", m.group("to"), int(m.group("mb")) if m.group("mb") else None)
    return None


def remaining_bubble(lines: list[MobileLine], title: str = "データ残量") -> dict[str, Any]:
    """A Flex bubble with one row per line (LINE's Flex Message schema)."""
    rows: list[dict[str, Any]] = []
    for ln in lines[:10]:
        state = f"速度制限中({THROTTLED_KBPS}kbps)" if ln.throttled else "通常速度"
        rows.append(
            {
                "type": "box",
                "layout": "vertical",
                "margin": "md",
                "contents": [
                    {"type": "text", "text": f"回線 {ln.line_id}", "size": "sm", "color": "#888888"},
                    {
                        "type": "text",
                        "text": f"{ln.remaining_mb:,}MB / {ln.allowance_mb:,}MB",
                        "size": "lg",
                        "weight": "bold",
                    },
                    {
                        "type": "text",
                        "text": state,
                        "size": "xs",
                        "color": "#D0021B" if ln.throttled else "#1DB446",
                    },
                ],
            }
        )
    month = lines[0].month if lines else ""
    return {
        "type": "flex",
        "altText": "データ残量: " + "、".join(f"{ln.line_id} {ln.remaining_mb:,}MB" for ln in lines[:10]),
        "contents": {
            "type": "bubble",
            "body": {
                "type": "box",
                "layout": "vertical",
                "contents": [
                    {"type": "text", "text": title, "weight": "bold", "size": "xl"},
                    {"type": "text", "text": f"{month} 月分", "size": "xs", "color": "#888888"},
                    *rows,
                ],
            },
        },
    }


def quick_reply_text(text: str, choices: list[tuple[str, str]]) -> dict[str, Any]:
    """A text message with postback quick-reply buttons (at most 13, LINE's limit)."""
    return {
        "type": "text",
        "text": text,
        "quickReply": {
            "items": [
                {"type": "action", "action": {"type": "postback", "label": label[:20], "data": data}}
                for label, data in choices[:13]
            ]
        },
    }


def confirm_gift(request_id: str, giver: str, receiver: str, mb: int) -> dict[str, Any]:
    """The confirm step (LINE's confirm template: two postback buttons)."""
    text = f"回線 {giver} から回線 {receiver} へ {mb:,}MB をプレゼントします。よろしいですか?"
    return {
        "type": "template",
        "altText": text,
        "template": {
            "type": "confirm",
            "text": text[:240],
            "actions": [
                {"type": "postback", "label": "プレゼントする", "data": f"action=gift_confirm&id={request_id}"},
                {"type": "postback", "label": "やめる", "data": f"action=gift_cancel&id={request_id}"},
            ],
        },
    }


def text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


# ---------------------------------------------------------------- loading lines (API, CSV)
CSV_COLUMNS = ("line_id", "member_number", "allowance_mb", "remaining_mb", "used_mb")
MAX_LINES_PER_REQUEST = 1000
MAX_MB = 10_000_000  # 10 TB: anything larger is a unit mistake
MEMBER_NUMBER = re.compile(r"^(?:\d{4,12}|N\d{10})$")  # as the member register


def _mb(row: dict[str, Any], name: str, default: int | None = None) -> int:
    raw = row.get(name)
    if raw is None or raw == "":
        if default is None:
            raise LinesRefused(f"{name} is required", code="invalid_line", details=name)
        return default
    if isinstance(raw, bool) or not (isinstance(raw, int) or (isinstance(raw, str) and raw.strip().isdigit())):
        raise LinesRefused(f"{name} must be a whole number of MB", code="invalid_line", details=name)
    value = int(raw)
    if not 0 <= value <= MAX_MB:
        raise LinesRefused(f"{name} must be 0 to {MAX_MB} MB", code="invalid_line", details=name)
    return value


def parse_line(row: Any, month: str) -> MobileLine:
    """One line as the business sends it (JSON object or CSV row); raises LinesRefused."""
    if not isinstance(row, dict):
        raise LinesRefused("each line must be an object", code="invalid_line")
    unknown = set(row) - set(CSV_COLUMNS)
    if unknown:
        raise LinesRefused(f"unknown field(s): {', '.join(sorted(map(str, unknown)))}", code="invalid_line")
    line_id = str(row.get("line_id") or "").strip()
    if not LINE_ID.match(line_id):
        raise LinesRefused("line_id: 1-32 letters, digits, - or _", code="invalid_line", details="line_id")
    member = str(row.get("member_number") or "").strip()
    if not MEMBER_NUMBER.match(member):
        raise LinesRefused("member_number is not a member number", code="invalid_line", details="member_number")
    allowance = _mb(row, "allowance_mb")
    remaining = _mb(row, "remaining_mb", allowance)
    return MobileLine(line_id, member, allowance, remaining, month, _mb(row, "used_mb", 0))


def parse_lines(rows: Any, month: str) -> list[MobileLine]:
    """Every row or none: a bad row is reported with its number and nothing is stored."""
    if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_LINES_PER_REQUEST:
        raise LinesRefused(f"send 1 to {MAX_LINES_PER_REQUEST} lines", code="invalid_lines")
    out: list[MobileLine] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, row in enumerate(rows, start=1):
        try:
            ln = parse_line(row, month)
        except LinesRefused as e:
            errors.append({"row": n, "code": e.code, "message": e.message, "field": e.details})
            continue
        if ln.line_id in seen:
            errors.append(
                {"row": n, "code": "duplicate_line_id", "message": "line_id appears twice", "field": "line_id"}
            )
        seen.add(ln.line_id)
        out.append(ln)
    if errors:
        raise LinesRefused(f"{len(errors)} row(s) refused; nothing was stored", code="invalid_lines", details=errors)
    return out


def csv_rows(data: bytes) -> list[dict[str, Any]]:
    """UTF-8 (BOM or not) or Shift_JIS CSV with a header of CSV_COLUMNS; raises LinesRefused."""
    from tsunagu.text import csv_table

    rows = csv_table(
        data,
        required={"line_id", "member_number", "allowance_mb"},
        allowed=CSV_COLUMNS,
        refuse=lambda message, code: LinesRefused(message, code=code),
    )
    return [{k: v.strip() for k, v in r.items() if v.strip()} for r in rows]
