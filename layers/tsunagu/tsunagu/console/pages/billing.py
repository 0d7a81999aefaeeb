"""請求: the plan in force and pending changes, this month's usage and cost, the budget
(Standard plan) and a closed month's invoice with its CSV (``billing/routes.py``'s services)."""

from __future__ import annotations

import re

from tsunagu import wiring
from tsunagu.billing.service import invoice_csv
from tsunagu.console.forms import as_int
from tsunagu.console.registry import Action, Ctx, Download, Html, Page, Redirect, Result
from tsunagu.errors import DomainError, ValidationFailed

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
PLANS = {"communication": "コミュニケーションプラン", "light": "ライトプラン", "standard": "スタンダードプラン"}
NOTICES = {"budget": "予算を保存しました。"}


def view(ctx: Ctx) -> Result:
    svc = wiring.billing_service()
    aid = ctx.account_id
    month = ctx.query.get("month", "")
    if month and not MONTH.match(month):
        raise ValidationFailed("month must be YYYY-MM", code="invalid_month")
    if ctx.rest == "invoice.csv":
        if not month:
            raise ValidationFailed("month must be YYYY-MM", code="invalid_month")
        doc = svc.invoice(aid, month)
        ctx.audit("invoice_exported", month)
        return Download(invoice_csv(doc), f"invoice-{aid}-{month}.csv")
    invoice, invoice_error = None, None
    if month:
        try:
            invoice = svc.invoice(aid, month)
        except DomainError as e:
            invoice_error = e.code
    return Html(
        "billing.html",
        {
            "title": "請求",
            "plan": svc.plan_view(aid),
            "plans": PLANS,
            "usage": svc.usage(aid),
            "month": month,
            "invoice": invoice,
            "invoice_error": invoice_error,
            "notice": NOTICES.get(ctx.query.get("ok", "")),
        },
    )


def _whole(value: str | None, limit: int) -> int | None:
    n = as_int(value)
    if n is None:
        return None
    if not isinstance(n, int) or not 0 <= n <= limit:
        raise ValidationFailed("金額・通数は0以上の整数で入力してください", code="validation_failed")
    return n


def budget(ctx: Ctx) -> Result:
    yen = _whole(ctx.form.get("monthly_yen"), 10**12)
    messages = _whole(ctx.form.get("monthly_messages"), 10**10)
    wiring.billing_service().set_budget(ctx.account_id, yen, messages)
    ctx.audit("budget_set", "billing", {"monthly_yen": yen, "monthly_messages": messages})
    return Redirect("billing?ok=budget")


PAGES = [Page("billing", "請求", ("billing",), view, {"budget": Action("billing", budget)})]
