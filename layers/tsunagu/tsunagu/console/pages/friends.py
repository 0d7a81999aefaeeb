"""友だち / 会員: the friend list (filter by state), a friend's page with link history and the
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


def view(ctx: Ctx) -> Result:
    if ctx.rest:
        return _friend_page(ctx)
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
            "next": page["next"],
            "counts": page["counts"],
        },
    )


PAGES = [Page("friends", "友だち", ("members", "messaging"), view)]
