"""通知メッセージ: templates with their approval state (approve a version), the batches, a
batch's report and its undelivered CSV (the same services as ``notifications/routes.py``)."""

from __future__ import annotations

import re

from tsunagu import wiring
from tsunagu.console.forms import as_int
from tsunagu.console.registry import Action, Ctx, Download, Html, Page, Redirect, Result
from tsunagu.errors import NotFound, ValidationFailed

BATCH_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TEMPLATE_ID = re.compile(r"^ntpl_[0-9a-f]{21}$")
STATUS = {"draft": "下書き", "pending": "審査待ち", "approved": "承認済み", "rejected": "差し戻し"}
NOTICES = {"approved": "テンプレートを承認しました。"}


def view(ctx: Ctx) -> Result:
    aid = ctx.account_id
    batches = wiring.notification_batches()
    if ctx.rest:
        batch_id, _, tail = ctx.rest.partition("/")
        if not BATCH_ID.match(batch_id):
            raise NotFound("no such batch", code="batch_not_found")
        if tail == "undelivered.csv":
            body, _ = batches.undelivered_csv(aid, batch_id)
            ctx.audit("undelivered_exported", batch_id)
            return Download(body, f"undelivered-{batch_id}.csv")
        if tail:
            raise NotFound("no such page")
        return Html("batch.html", {"title": "配信結果", "report": batches.report(aid, batch_id)})
    return Html(
        "notifications.html",
        {
            "title": "通知メッセージ",
            "templates": wiring.notification_templates().list(aid),
            "batches": batches.list(aid),
            "status": STATUS,
            "notice": NOTICES.get(ctx.query.get("ok", "")),
        },
    )


def approve(ctx: Ctx) -> Result:
    tid = ctx.form.get("template_id", "")
    version = as_int(ctx.form.get("version"))
    if not isinstance(version, int):
        raise ValidationFailed("version", code="validation_failed")
    if not TEMPLATE_ID.match(tid):
        raise NotFound("no such template", code="template_not_found")
    note = (ctx.form.get("note") or "").strip()[:500] or None
    wiring.notification_templates().approve(ctx.account_id, tid, version, note)
    ctx.audit("template_approved", tid, {"version": version, "note": note})
    return Redirect("notifications?ok=approved")


PAGES = [Page("notifications", "通知メッセージ", ("messaging",), view, {"approve": Action("messaging", approve)})]
