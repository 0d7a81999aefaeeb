"""クーポン: the coupons with their counts, creating one (validated by the API's own model), the
redemption report by store and day (CSV too), and voiding a redemption within its policy."""

from __future__ import annotations

from typing import Any

from tsunagu import wiring
from tsunagu.console.forms import as_int
from tsunagu.console.registry import Action, Ctx, Download, Html, Page, Redirect, Result
from tsunagu.errors import ValidationFailed

NOTICES = {"created": "クーポンを作成しました。", "voided": "利用を取り消しました。"}


def _model_errors(e: Any) -> ValidationFailed:
    fields = ", ".join(".".join(str(p) for p in err.get("loc", ())) for err in e.errors())
    return ValidationFailed(f"入力内容に誤りがあります({fields})", code="invalid_coupon")


def view(ctx: Ctx) -> Result:
    svc = wiring.redemptions()
    report = svc.report(ctx.account_id, ctx.query.get("since") or None, ctx.query.get("until") or None)
    if ctx.rest == "report.csv":
        return Download(svc.report_csv(report), f"redemptions-{report['since']}-{report['until']}.csv")
    return Html(
        "coupons.html",
        {
            "title": "クーポン",
            "coupons": wiring.coupon_catalog().list(ctx.account_id),
            "report": report,
            "notice": NOTICES.get(ctx.query.get("ok", "")),
        },
    )


def create(ctx: Ctx) -> Result:
    from pydantic import ValidationError

    from tsunagu.coupons.routes import CouponIn

    f = ctx.form
    doc: dict[str, Any] = {
        "title": f.get("title", ""),
        "kind": f.get("kind", ""),
        "amount": as_int(f.get("amount")),
        "valid_days": {"first": f.get("first", ""), "last": f.get("last", "")},
        "per_person_limit": as_int(f.get("per_person_limit")) or 1,
        "members_only": f.get("members_only") == "on",
        "grant_on_follow": f.get("grant_on_follow") == "on",
    }
    try:
        body = CouponIn.model_validate(doc)
    except ValidationError as e:
        raise _model_errors(e) from None
    made = wiring.coupon_catalog().create(ctx.account_id, body.definition_data(), body.grant_on_follow, False)
    ctx.audit("coupon_created", str(made.get("coupon_id", "")), {"title": body.title})
    return Redirect("coupons?ok=created")


def void(ctx: Ctx) -> Result:
    rid = (ctx.form.get("redemption_id") or "").strip()
    reason = (ctx.form.get("reason") or "").strip()[:200] or None
    if not rid or len(rid) > 64:
        raise ValidationFailed("利用記録のIDを入力してください", code="redemption_not_found")
    wiring.redemptions().void(ctx.account_id, rid, reason)
    ctx.audit("redemption_voided", rid, {"reason": reason})
    return Redirect("coupons?ok=voided")


PAGES = [
    Page(
        "coupons",
        "クーポン",
        ("coupons", "pos"),
        view,
        {"create": Action("coupons", create), "void": Action("pos", void)},
    )
]
