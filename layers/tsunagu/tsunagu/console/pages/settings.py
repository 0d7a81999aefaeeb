"""設定: the staff (invite with scopes, disable) and the staff audit trail. Inviting shows the
invitation link once; the same is ``POST /accounts/{accountId}/staff`` in the API."""

from __future__ import annotations

from tsunagu.console.domain import SCOPES
from tsunagu.console.registry import Action, Ctx, Html, Page, Redirect, Result

NOTICES = {"disabled": "スタッフを無効にしました。"}


def view(ctx: Ctx, invite_url: str | None = None) -> Result:
    return Html(
        "settings.html",
        {
            "title": "設定",
            "staff": ctx.staff.members(ctx.account_id),
            "audit": ctx.staff.audit_trail(ctx.account_id, 100),
            "invite_url": invite_url,
            "notice": NOTICES.get(ctx.query.get("ok", "")),
        },
    )


def invite(ctx: Ctx) -> Result:
    f = ctx.form
    scopes = [s for s in SCOPES if f.get(f"scope_{s}") == "on"]
    _, token = ctx.staff.invite(ctx.account_id, f.get("email", ""), f.get("name", ""), scopes, ctx.actor)
    return view(ctx, f"/console/{ctx.account_id}/invite?t={token}")


def disable(ctx: Ctx) -> Result:
    ctx.staff.disable(ctx.account_id, f"{ctx.form.get('staff_id', '')}"[:64], ctx.actor)
    return Redirect("settings?ok=disabled")


PAGES = [
    Page(
        "settings",
        "設定",
        ("admin",),
        view,
        {"invite": Action("admin", invite), "disable": Action("admin", disable)},
    )
]
