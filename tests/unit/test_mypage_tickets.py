"""My Page login tickets (R-LINK-12): signed, short-lived, bound to one account; the format is
what docs/lines.md tells the company's site."""

from __future__ import annotations

import base64
import json

import pytest

from tsunagu.lines import mypage
from tsunagu.lines.mypage import TicketRefused

KEY = b"k" * 32


def test_a_ticket_reads_back_within_its_lifetime() -> None:
    ticket, t = mypage.issue(KEY, "acct_a", "N0000000001", 1_000)
    assert ticket.startswith("v1.") and "N0000000001" not in ticket.split(".")[0]
    back = mypage.read(KEY, "acct_a", ticket, 1_000 + mypage.TICKET_SECONDS - 1)
    assert back == t and back.expires_at == 1_300


def test_a_stale_ticket_is_refused() -> None:
    ticket, _ = mypage.issue(KEY, "acct_a", "N0000000001", 1_000)
    with pytest.raises(TicketRefused) as e:
        mypage.read(KEY, "acct_a", ticket, 1_300)
    assert e.value.code == "ticket_expired"


@pytest.mark.parametrize("kind", ["other_key", "other_account", "tampered", "garbage", "truncated"])
def test_forged_or_foreign_tickets_are_invalid(kind: str) -> None:
    ticket, _ = mypage.issue(KEY, "acct_a", "N0000000001", 1_000)
    key, account = KEY, "acct_a"
    if kind == "other_key":
        key = b"x" * 32
    elif kind == "other_account":
        account = "acct_b"
    elif kind == "tampered":
        v, payload, mac = ticket.split(".")
        doc = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        doc["m"] = "N9999999999"
        forged = base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode().rstrip("=")
        ticket = f"{v}.{forged}.{mac}"
    elif kind == "garbage":
        ticket = "v1.%%%.%%%"
    else:
        ticket = ticket.rsplit(".", 1)[0]
    with pytest.raises(TicketRefused) as e:
        mypage.read(key, account, ticket, 1_001)
    assert e.value.code == "ticket_invalid"


def test_login_button_is_a_valid_line_message() -> None:
    from linebot.v3.messaging import ReplyMessageRequest

    msg = mypage.login_button("https://mypage.example/login", "v1.a.b")
    ReplyMessageRequest.from_dict({"replyToken": "t", "messages": [msg]})
    assert msg["template"]["actions"][0]["uri"] == "https://mypage.example/login?ticket=v1.a.b"
