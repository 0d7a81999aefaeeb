"""Lines domain: gift sizes and refusals (R-GIFT-1), the throttle at 0 MB, the rollover, the
carrier's usage feed, the chat commands and what LINE is sent (R-LINK-12)."""

from __future__ import annotations

import pytest

from tsunagu.lines import domain as d
from tsunagu.lines.domain import LinesRefused, MobileLine


def line(line_id: str = "L1", remaining: int = 1000, allowance: int = 3000, month: str = "2026-12") -> MobileLine:
    return MobileLine(line_id, "100001", allowance, remaining, month)


@pytest.mark.parametrize("mb", [500, 1000, 1500, 2000, 2500])
def test_every_gift_size_of_r_gift_1_is_accepted(mb: int) -> None:
    d.check_gift(line("L1", 3000), line("L2"), mb)


@pytest.mark.parametrize("mb", [0, 100, 499, 501, 750, 3000, -500])
def test_a_gift_of_another_size_is_refused(mb: int) -> None:
    with pytest.raises(LinesRefused) as e:
        d.check_gift(line("L1", 3000), line("L2"), mb)
    assert e.value.code == "gift_size"


def test_a_gift_to_oneself_is_refused() -> None:
    with pytest.raises(LinesRefused) as e:
        d.check_gift(line("L1"), line("L1"), 500)
    assert e.value.code == "gift_to_self"


def test_a_gift_larger_than_the_remaining_data_is_refused() -> None:
    with pytest.raises(LinesRefused) as e:
        d.check_gift(line("L1", 499), line("L2"), 500)
    assert e.value.code == "gift_insufficient_data"


def test_a_line_at_zero_mb_is_throttled_to_200_kbps_and_any_data_lifts_it() -> None:
    assert line(remaining=0).throttled and line(remaining=0).view()["speed_kbps"] == 200
    assert not line(remaining=1).throttled and line(remaining=1).view()["speed"] == "normal"


def test_rollover_resets_to_the_allowance_and_gifts_expire_with_the_month() -> None:
    ln = MobileLine("L1", "100001", 3000, 4500, "2026-11", used_mb=200)  # 1,500 MB received in November
    rolled = ln.rolled_over("2026-12")
    assert (rolled.remaining_mb, rolled.used_mb, rolled.month) == (3000, 0, "2026-12")
    assert ln.rolled_over("2026-11") is ln and ln.rolled_over("2026-10") is ln


def test_usage_feed_subtracts_the_new_use_never_below_zero_and_ignores_older_reports() -> None:
    ln = MobileLine("L1", "100001", 3000, 1000, "2026-12", used_mb=2000)
    after = d.usage_update(ln, 2300)
    assert after is not None and (after.remaining_mb, after.used_mb) == (700, 2300)
    emptied = d.usage_update(ln, 9000)
    assert emptied is not None and emptied.remaining_mb == 0 and emptied.throttled
    assert d.usage_update(ln, 1999) is None


def test_jst_month_boundary() -> None:
    # 2026-11-30 15:00 UTC is 2026-12-01 00:00 JST.
    assert d.current_month(1796050800000 - 1) == "2026-11"
    assert d.current_month(1796050800000) == "2026-12"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"type": "message", "message": {"type": "text", "text": "残量"}}, d.LineCommand("data")),
        ({"type": "message", "message": {"type": "text", "text": " データ残量 "}}, d.LineCommand("data")),
        ({"type": "postback", "postback": {"data": "action=data"}}, d.LineCommand("data")),
        ({"type": "message", "message": {"type": "text", "text": "プレゼント"}}, d.LineCommand("gift")),
        (
            {"type": "message", "message": {"type": "text", "text": "プレゼント L0002 500"}},
            d.LineCommand("gift", "L0002", 500),
        ),
        (
            {"type": "message", "message": {"type": "text", "text": "ﾌﾟﾚｾﾞﾝﾄ L2 1000MB"}},
            d.LineCommand("gift", "L2", 1000),
        ),
        (
            {"type": "postback", "postback": {"data": "action=gift&to=L2&mb=1500"}},
            d.LineCommand("gift", "L2", 1500),
        ),
        (
            {"type": "postback", "postback": {"data": "action=gift_confirm&id=gft_ab"}},
            d.LineCommand("gift_confirm", request_id="gft_ab"),
        ),
        ({"type": "message", "message": {"type": "text", "text": "残量を教えて"}}, None),
        ({"type": "postback", "postback": {"data": "action=link"}}, None),
    ],
)
def test_chat_commands(event: dict, expected: d.LineCommand | None) -> None:
    assert d.line_command(event) == expected


def test_parse_lines_reports_every_bad_row_and_keeps_none() -> None:
    rows = [
        {"line_id": "L1", "member_number": "100001", "allowance_mb": 3000},
        {"line_id": "L 2", "member_number": "100001", "allowance_mb": 3000},
        {"line_id": "L3", "member_number": "100001", "allowance_mb": "-1"},
        {"line_id": "L1", "member_number": "100001", "allowance_mb": 3000},
        {"line_id": "L4", "member_number": "100001", "allowance_mb": 3000, "phone": "09012345678"},
    ]
    with pytest.raises(LinesRefused) as e:
        d.parse_lines(rows, "2026-12")
    assert e.value.code == "invalid_lines"
    assert [(x["row"], x["code"]) for x in e.value.details] == [  # type: ignore[attr-defined]
        (2, "invalid_line"),
        (3, "invalid_line"),
        (4, "duplicate_line_id"),
        (5, "invalid_line"),
    ]


def test_parse_lines_defaults_remaining_to_the_allowance() -> None:
    (ln,) = d.parse_lines([{"line_id": "L1", "member_number": "100001", "allowance_mb": "3000"}], "2026-12")
    assert (ln.remaining_mb, ln.used_mb, ln.month) == (3000, 0, "2026-12")


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"line_id,member_number\nL1,100001\n", "csv_columns"),
        (b"line_id,member_number,allowance_mb,phone\nL1,100001,3000,090\n", "csv_columns"),
        (b"line_id,member_number,allowance_mb\nL1,100001,3000,extra\n", "csv_format"),
        (b"line_id\x82\xff", "csv_format"),
    ],
)
def test_malformed_lines_csv_is_refused_with_a_stable_code(data: bytes, code: str) -> None:
    with pytest.raises(LinesRefused) as e:
        d.csv_rows(data)
    assert e.value.code == code


def test_shift_jis_csv_is_read() -> None:
    data = "line_id,member_number,allowance_mb,remaining_mb\nL1,100001,3000,0\n".encode("cp932")
    assert d.csv_rows(data) == [
        {"line_id": "L1", "member_number": "100001", "allowance_mb": "3000", "remaining_mb": "0"}
    ]


def test_flex_bubble_and_confirm_template_are_valid_line_messages() -> None:
    from linebot.v3.messaging import ReplyMessageRequest

    bubble = d.remaining_bubble([line("L1", 0), line("L2", 1234)])
    confirm = d.confirm_gift("gft_" + "0" * 20, "L1", "L2", 500)
    quick = d.quick_reply_text("どの回線?", [("回線 L2", "action=gift&to=L2")])
    ReplyMessageRequest.from_dict({"replyToken": "t", "messages": [bubble, confirm, quick]})
    assert "1,234MB" in bubble["altText"]
    assert confirm["template"]["actions"][0]["data"].startswith("action=gift_confirm&id=gft_")


def test_a_malformed_flex_message_is_what_line_refuses() -> None:
    from linebot.v3.messaging import ReplyMessageRequest

    broken = d.remaining_bubble([line()])
    del broken["contents"]["body"]["layout"]
    with pytest.raises(ValueError):
        ReplyMessageRequest.from_dict({"replyToken": "t", "messages": [broken]})
