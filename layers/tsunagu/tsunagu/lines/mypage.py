"""My Page auto-login tickets (R-LINK-12: a contractor link opens the company's My Page from LINE
without typing the password). tsunagu issues a short-lived, single-use, signed ticket; the
company's site receives it in the My Page URL and redeems it server to server
(``POST /accounts/{accountId}/mypage/tickets/redeem`` with its API key), which answers the member
number once. Protocol in docs/lines.md.

Format: ``v1.<payload>.<mac>``, both base64url without padding; payload is compact JSON
``{"a": accountId, "m": memberNumber, "j": ticketId, "exp": unix seconds}``; mac is
HMAC-SHA256 over ``v1.<payload>`` with the account's My Page key (Secrets Manager). No LINE user
id travels in it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from tsunagu.errors import DomainError

TICKET_SECONDS = 300  # the member taps the button within 5 minutes, or asks again


class TicketRefused(DomainError):
    status = 400


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Ticket:
    account_id: str
    member_number: str
    ticket_id: str
    expires_at: int


def issue(key: bytes, account_id: str, member_number: str, now: int) -> tuple[str, Ticket]:
    t = Ticket(account_id, member_number, secrets.token_hex(16), now + TICKET_SECONDS)
    body = json.dumps(
        {"a": account_id, "m": member_number, "j": t.ticket_id, "exp": t.expires_at}, separators=(",", ":")
    )
    signed = "v1." + _b64(body.encode())
    return signed + "." + _b64(hmac.new(key, signed.encode(), hashlib.sha256).digest()), t


def read(key: bytes, account_id: str, ticket: str, now: int) -> Ticket:
    """The ticket's content after its signature, account and expiry are checked."""
    parts = ticket.split(".")
    if len(parts) != 3 or parts[0] != "v1" or len(ticket) > 400:
        raise TicketRefused("not a login ticket", code="ticket_invalid")
    try:
        mac = _unb64(parts[2])
        doc: Any = json.loads(_unb64(parts[1]))
    except ValueError:
        raise TicketRefused("not a login ticket", code="ticket_invalid") from None
    expected = hmac.new(key, f"v1.{parts[1]}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected) or not isinstance(doc, dict) or doc.get("a") != account_id:
        raise TicketRefused("the ticket's signature does not verify", code="ticket_invalid")
    t = Ticket(str(doc["a"]), str(doc["m"]), str(doc["j"]), int(doc["exp"]))
    if now >= t.expires_at:
        raise TicketRefused("the ticket has expired; open My Page from LINE again", code="ticket_expired")
    return t


def ticket_hash(ticket_id: str) -> str:
    return hashlib.sha256(ticket_id.encode()).hexdigest()


def login_button(url: str, ticket: str) -> dict[str, Any]:
    """The reply: a buttons template whose URI action opens My Page with the ticket."""
    sep = "&" if "?" in url else "?"
    return {
        "type": "template",
        "altText": "マイページを開く",
        "template": {
            "type": "buttons",
            "text": "マイページにログインします(5分以内に開いてください)。",
            "actions": [{"type": "uri", "label": "マイページを開く", "uri": f"{url}{sep}ticket={ticket}"}],
        },
    }
