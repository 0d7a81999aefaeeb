"""友だち / 会員: the friend list (filter by state, by tag and by link state), a friend's page with link history and the
1:1 chat history, and its CSV export (R-HIST-1, the same exporter as the API)."""

from __future__ import annotations

import re

from tsunagu import wiring
from tsunagu.console.registry import Ctx, Download, Html, Page, Result
from tsunagu.errors import NotFound

USER_ID = re.compile(r"^U[0-9a-f]{32}$")
STATES = {"friend": "友だち", "blocked": "ブロック中", "unfollowed": "ブロック中"}


def _friend_page(ctx: Ctx) -> Result:
    user_id, _, tail = ctx.rest.partition("/")
    if not USER_ID.match(user_id):
        raise NotFound("no such friend", code="friend_not_found")
    aid = ctx.account_id
    friend = wiring.friend_query().one(aid, user_id)  # 404 for another account's user
    if tail == "chats.csv":
        body, _, _ = wiring.chat_export().export(aid, user_id, None, None, None, None)
        ctx.audit("chats_exported", user_id)
        return Download(body, f"chats-{user_id}.csv")
    if tail:
        raise NotFound("no such page")
    links = wiring.link_store().user_links(aid, user_id)
    messages, more = wiring.chat_archive().page(aid, user_id, None, None, 200, None)
    return Html(
        "friend.html",
        {
            "title": "友だちの詳細",
            "friend": friend,
            "state": STATES.get(friend["state"], friend["state"]),
            "links": links,
            "messages": messages,
            "more": more is not None,
        },
    )


LINK_STATES = {"linked": "連携済み", "unlinked": "未連携"}


def _filtered(ctx: Ctx, tag: str, link: str, tags: list[str]) -> Result:
    """Tag and link-state filters: the audiences room's rule over every friend's facts (one
    pass, the same rule as a segment; blocked friends never match), 100 at a time."""
    parts: list[dict[str, object]] = []
    if tag:
        if tag not in tags:
            raise NotFound("no such tag", code="unknown_tag")
        parts.append({"tag": tag})
    if link:
        parts.append({"linked": link == "linked"})
    rule = parts[0] if len(parts) == 1 else {"all": parts}
    after = ctx.query.get("after") or None
    found = wiring.audiences().browse(ctx.account_id, rule, after if after and USER_ID.match(after) else None)
    return Html(
        "friends.html",
        {
            "title": "友だち",
            "filtered": True,
            "rows": [{**f, "state": "friend", "last_event_ms": None} for f in found["friends"]],
            "matched": found["count"],
            "states": STATES,
            "state": "",
            "q": "",
            "tag": tag,
            "tags": tags,
            "link": link,
            "link_states": LINK_STATES,
            "next": found["next"],
            "counts": wiring.friend_query().page(ctx.account_id, "1", None)["counts"],
        },
    )


def view(ctx: Ctx) -> Result:
    if ctx.rest:
        return _friend_page(ctx)
    tag, link = (ctx.query.get("tag") or "").strip(), ctx.query.get("link") or ""
    if link not in LINK_STATES:
        link = ""
    tags = wiring.audiences().vocabulary(ctx.account_id)["tags"]
    if tag or link:
        return _filtered(ctx, tag, link, tags)
    want = ctx.query.get("state", "")
    page = wiring.friend_query().page(ctx.account_id, "100", ctx.query.get("after") or None)
    rows = [f for f in page["friends"] if not want or f["state"] == want]
    find = (ctx.query.get("q") or "").strip()
    if find:
        rows = [f for f in rows if find in f["user_id"]]
    return Html(
        "friends.html",
        {
            "title": "友だち",
            "rows": rows,
            "states": STATES,
            "state": want,
            "q": find,
            "filtered": False,
            "tag": "",
            "tags": tags,
            "link": "",
            "link_states": LINK_STATES,
            "next": page["next"],
            "counts": page["counts"],
        },
    )


PAGES = [Page("friends", "友だち", ("members", "messaging"), view)]
