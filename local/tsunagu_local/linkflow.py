"""The member's side of linking, scripted over HTTP: say something in the chat (through the
LINE sandbox), open the link page from the reply, post the form. Shared by the walk-through and
the end-to-end tests."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlencode

from tsunagu_local.client import Reply, request


def say(sandbox_url: str, channel_id: str, user: str, text: str, drain: Callable[[], object]) -> None:
    """The LINE user sends ``text``; returns when the workers have handled it."""
    event = {"type": "message", "source": {"type": "user", "userId": user}, "message": {"type": "text", "text": text}}
    request("POST", f"{sandbox_url}/_sandbox/channels/{channel_id}/webhooks", {"events": [event]})
    drain()


def reply_texts(sandbox_url: str) -> list[str]:
    calls = request("GET", f"{sandbox_url}/_sandbox/calls?path=/v2/bot/message/reply").json["calls"]
    # Flex and template replies (remaining data, gifts) have no text: their altText stands in.
    return [str(m.get("text") or m.get("altText", "")) for m in (c["body"]["messages"][0] for c in calls)]


def open_link_page(sandbox_url: str, channel_id: str, user: str, drain: Callable[[], object]) -> dict[str, str]:
    """The member taps 「連携」 and opens the link in tsunagu's reply: URL, session id, CSRF
    token and cookie of the page."""
    say(sandbox_url, channel_id, user, "連携", drain)
    reply = next(t for t in reversed(reply_texts(sandbox_url)) if "/link/" in t)
    url = re.search(r"(http\S+/link/\S+)", reply).group(1)  # type: ignore[union-attr]
    r = request("GET", url)
    if r.status != 200:
        raise AssertionError(f"link page answered {r.status}: {r.text[:300]}")
    return {
        "url": url,
        "reply": reply,
        "cookie": r.headers["set-cookie"].split(";", 1)[0],
        "s": re.search(r'name="s" value="([^"]+)"', r.text).group(1),  # type: ignore[union-attr]
        "csrf": re.search(r'name="csrf" value="([^"]+)"', r.text).group(1),  # type: ignore[union-attr]
    }


def submit_link_form(
    api_url: str, account_id: str, page: dict[str, str], kind: str, cookie: str | None = "same", **fields: str
) -> Reply:
    """Post the page's form (``cookie=None`` leaves the CSRF cookie out)."""
    form = {"s": page["s"], "csrf": page["csrf"], "kind": kind, **fields}
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if cookie:
        headers["Cookie"] = page["cookie"] if cookie == "same" else cookie
    return request("POST", f"{api_url}/link/{account_id}", data=urlencode(form).encode(), headers=headers)


def error_code(r: Reply) -> str | None:
    m = re.search(r'data-code="([^"]+)"', r.text)
    return m.group(1) if m else None
