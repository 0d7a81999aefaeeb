"""ヘルプデスク: the operator inbox of the help desk (issue 19, R-HELP-1): who waits for an operator
(oldest first), who is queued for the next opening, today's figures; a conversation with the 1:1
chat history, the operator's reply and the hand-back to the bot. Each action is the API's
(``helpdesk/routes.py`` → ``HelpDesk.operator_reply`` / ``hand_back``); nothing is decided here."""

from __future__ import annotations

import re
import uuid

from tsunagu import wiring
from tsunagu.console.registry import Action, Ctx, Html, Page, Redirect, Result
from tsunagu.errors import NotFound, ValidationFailed

USER_ID = re.compile(r"^U[0-9a-f]{32}$")
REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_REPLY = 5000
STATES = {"bot": "自動応答中", "waiting": "オペレーター待ち", "queued": "営業時間外(開始待ち)", "operator": "対応中"}
NOTICES = {"replied": "返信を送りました。", "handed_back": "自動応答に戻しました。"}


def _user(value: str) -> str:
    if not USER_ID.match(value):
        raise NotFound("no such conversation", code="friend_not_found")
    return value


def _conversation(ctx: Ctx, user_id: str) -> Result:
    aid = ctx.account_id
    wiring.friend_query().one(aid, user_id)  # 404 for a user who is not this account's friend
    conv, _ = wiring.helpdesk_store().conversation(aid, user_id)
    messages, more = wiring.chat_archive().page(aid, user_id, None, None, 200, None)
    return Html(
        "conversation.html",
        {
            "title": "ヘルプデスクの会話",
            "conv": conv.view(),
            "states": STATES,
            "messages": messages,
            "more": more is not None,
            "request_id": uuid.uuid4().hex,  # one per rendered form: a double submit sends once
            "max_reply": MAX_REPLY,
            "notice": NOTICES.get(ctx.query.get("ok", "")),
        },
    )


def view(ctx: Ctx) -> Result:
    if ctx.rest:
        return _conversation(ctx, _user(ctx.rest))
    q = wiring.help_desk().queue(ctx.account_id)
    return Html(
        "helpdesk.html",
        {
            "title": "ヘルプデスク",
            "q": q,
            "states": STATES,
            "notice": NOTICES.get(ctx.query.get("ok", "")),
        },
    )


def reply(ctx: Ctx) -> Result:
    user_id = _user(ctx.form.get("user_id", ""))
    text = (ctx.form.get("text") or "").strip()
    if not text or len(text) > MAX_REPLY:
        raise ValidationFailed(f"返信は1文字以上{MAX_REPLY}文字以内で入力してください", code="validation_failed")
    request_id = ctx.form.get("request_id") or None
    if request_id is not None and not REQUEST_ID.match(request_id):
        raise ValidationFailed("request_id", code="validation_failed")
    sent = wiring.help_desk().operator_reply(ctx.account_id, user_id, text, request_id)
    ctx.audit("operator_replied", user_id, {"via": sent["via"], "metered_as": sent["metered_as"]})
    return Redirect(f"helpdesk/{user_id}?ok=replied")


def hand_back(ctx: Ctx) -> Result:
    user_id = _user(ctx.form.get("user_id", ""))
    wiring.help_desk().hand_back(ctx.account_id, user_id)
    ctx.audit("handed_back", user_id)
    return Redirect("helpdesk?ok=handed_back")


PAGES = [
    Page(
        "helpdesk",
        "ヘルプデスク",
        ("messaging", "members"),
        view,
        {"reply": Action("messaging", reply), "handback": Action("messaging", hand_back)},
    )
]
