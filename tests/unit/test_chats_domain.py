"""Chat archive rules (R-HIST-1): what is archived, and a CSV Excel opens correctly."""

import csv
import io

import pytest

from tests.conftest import line_event
from tsunagu.messaging.chats import ChatMessage, inbound, parse_jst_date, summarize, to_csv


def test_a_users_text_message_is_archived_with_its_id_and_time():
    ev = line_event("message", ts=1_795_300_000_000, message={"type": "text", "id": "m1", "text": "こんにちは"})
    m = inbound(ev)
    assert m is not None
    assert (m.direction, m.kind, m.content, m.message_id, m.origin) == ("in", "text", "こんにちは", "m1", "user")


def test_group_and_room_messages_are_not_1_to_1_and_are_not_archived():
    ev = line_event("message", message={"type": "text", "id": "m1", "text": "x"})
    ev["source"] = {"type": "group", "groupId": "C1", "userId": "U1"}
    assert inbound(ev) is None


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"type": "sticker", "packageId": "446", "stickerId": "1988"}, "package 446 / sticker 1988"),
        ({"type": "image"}, "[画像]"),
        ({"type": "file", "fileName": "a.pdf", "fileSize": 10}, "a.pdf (10 bytes)"),
        (
            {"type": "location", "title": "店", "address": "鹿児島", "latitude": 31.5, "longitude": 130.5},
            "店 鹿児島 31.5,130.5",
        ),
        ({"type": "somethingNew"}, "[somethingNew]"),
    ],
)
def test_non_text_messages_are_summarised(message, expected):
    assert summarize(message) == expected


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))


def test_csv_opens_in_excel_with_japanese_text():
    out = to_csv([ChatMessage("U1", 1_795_300_000_000, "m1", "in", "text", "営業時間は？", "user")])
    assert out.startswith("\ufeff")  # UTF-8 BOM: Excel reads the file as UTF-8
    assert "\r\n" in out and "\n" not in out.replace("\r\n", "")
    header, row = rows(out)
    assert header[0] == "日時(JST)"
    assert row[0] == "2026-11-22 07:26:40"  # JST (22:26:40 UTC the day before)
    assert row[2:5] == ["受信", "テキスト", "営業時間は？"]


def test_csv_neutralises_formula_cells_and_keeps_commas_and_newlines():
    out = to_csv([ChatMessage("U1", 0, "m1", "in", "text", '=HYPERLINK("x"),\n2行目', "user")])
    cell = rows(out)[1][4]
    assert cell.startswith("'=") and "2行目" in cell


def test_unsent_messages_keep_their_row_but_not_their_content():
    out = to_csv([ChatMessage("U1", 0, "m1", "in", "text", "secret", "user", unsent=True)])
    row = rows(out)[1]
    assert row[4] == "" and row[7] == "取消済み"


def test_jst_dates_cover_the_whole_jst_day():
    start = parse_jst_date("2026-11-22")
    end = parse_jst_date("2026-11-22", end_of_day=True)
    assert end - start == 86_400_000
    assert start == 1_795_273_200_000  # 2026-11-21T15:00Z
    with pytest.raises(ValueError):
        parse_jst_date("22/11/2026")
