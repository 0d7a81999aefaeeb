"""会員: the member register import from CSV (progress bar, per-row errors, nothing written when a
row is refused), a member's link status, the staff release of a link with the identity-check
reason (R-LINK-6) and the link audit trail. Each action is the API's (``linking/routes.py``)."""

from __future__ import annotations

import re

from tsunagu import wiring
from tsunagu.console.registry import Action, Ctx, Html, Json, Page, Redirect, Result
from tsunagu.errors import ValidationFailed

MEMBER_NUMBER = re.compile(r"^(?:\d{4,12}|N\d{10})$")
KINDS = {"member": "会員", "contractor": "契約者", "user": "回線利用者"}
NOTICES = {"unlinked": "連携を解除しました。監査ログに記録しました。"}
MAX_CSV_BYTES = 5 * 1024 * 1024


def view(ctx: Ctx) -> Result:
    number = (ctx.query.get("number") or "").strip()
    member = None
    if number:
        if not MEMBER_NUMBER.match(number):
            raise ValidationFailed("member number: 4-12 digits or N + 10 digits", code="member_not_found")
        member = wiring.member_service().get(ctx.account_id, number)
    return Html(
        "members.html",
        {
            "title": "会員",
            "number": number,
            "member": member,
            "kinds": KINDS,
            "audit": wiring.member_service().audit(ctx.account_id)[:50],
            "notice": NOTICES.get(ctx.query.get("ok", "")),
        },
    )


def import_csv(ctx: Ctx) -> Result:
    if not ctx.body:
        raise ValidationFailed("CSVファイルを選んでください", code="csv_format")
    if len(ctx.body) > MAX_CSV_BYTES:
        raise ValidationFailed("CSVファイルは5MBまでです。ファイルを分けてください", code="batch_size")
    result = wiring.member_service().import_csv(ctx.account_id, ctx.body, all_or_nothing=True)
    ctx.audit("members_imported", "register", {"imported": result["imported"], "rejected": result["rejected"]})
    return Json(result, 200 if not result["rejected"] else 422)


def unlink(ctx: Ctx) -> Result:
    f = ctx.form
    number, kind = f.get("member_number", ""), f.get("kind", "")
    reason = (f.get("reason") or "").strip()
    if not MEMBER_NUMBER.match(number) or kind not in KINDS:
        raise ValidationFailed("member number or kind", code="validation_failed")
    if not reason or len(reason) > 500:
        raise ValidationFailed("本人確認の内容(解除の理由)を500文字以内で入力してください", code="reason_required")
    line_id = f.get("line_id") or None
    result = wiring.member_service().staff_unlink(ctx.account_id, number, kind, line_id, reason, actor=ctx.actor)
    ctx.audit("link_released", result["target"], {"reason": reason, "user_id": result["unlinked_user_id"]})
    return Redirect(f"members?number={number}&ok=unlinked")


PAGES = [
    Page(
        "members",
        "会員",
        ("members",),
        view,
        {"import": Action("members", import_csv), "unlink": Action("members", unlink)},
    )
]
