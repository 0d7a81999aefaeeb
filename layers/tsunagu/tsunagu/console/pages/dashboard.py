"""ダッシュボード: friends, blocks, linked share, this month's billable messages against the
free allowance and the cap (chart), cost so far and the month-end forecast, and alerts."""

from __future__ import annotations

from typing import Any

from tsunagu import wiring
from tsunagu.console.registry import Ctx, Html, Page, Result
from tsunagu.errors import DomainError

QUOTA_ALERT_SHARE = 0.8  # alert when 80 % of the cap or of the free allowance is used


def _linked_users(account_id: str, cap: int = 20_000) -> int:
    """Linked LINE users (one GSI query page after another, up to ``cap``)."""
    n, cursor = 0, None
    while n < cap:
        users, cursor = wiring.link_store().linked_users(account_id, 1000, cursor)
        n += len(users)
        if not cursor:
            break
    return n


def alerts(usage: dict[str, Any], month: dict[str, Any] | None) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    billable = int(usage.get("billable_messages") or 0)
    cap = usage.get("cap")
    if cap and billable >= QUOTA_ALERT_SHARE * int(cap):
        out.append({"level": "warn", "text": f"今月の送信数が上限({int(cap):,}通)の80%を超えました。"})
    free = usage.get("free_messages")
    if free and billable >= int(free):
        out.append({"level": "info", "text": "今月の無料メッセージ数を使い切りました。以降は追加料金がかかります。"})
    elif free and billable >= QUOTA_ALERT_SHARE * int(free):
        out.append({"level": "info", "text": "今月の無料メッセージ数の80%を使いました。"})
    if month and month["forecast"].get("blocked"):
        out.append({"level": "warn", "text": "このペースでは月末までに送信上限に達する見込みです。"})
    return out


def view(ctx: Ctx) -> Result:
    aid = ctx.account_id
    counts = wiring.friend_store().counts(aid)
    linked = _linked_users(aid)
    billing = wiring.billing_service()
    usage = billing.usage(aid)
    try:
        month: dict[str, Any] | None = billing.month_to_date(aid)
    except DomainError:  # no plan in force yet
        month = None
    friends = int(counts.get("friends", 0))
    chart = {
        "days": [r["day"][-2:] for r in (month or {}).get("days", [])],
        "billable": [r["billable_messages"] for r in (month or {}).get("days", [])],
        "free": usage.get("free_messages"),
        "cap": usage.get("cap"),
    }
    return Html(
        "dashboard.html",
        {
            "title": "ダッシュボード",
            "friends": friends,
            "blocked": int(counts.get("blocked", 0)),
            "linked": linked,
            "linked_share": (100 * linked / friends) if friends else None,
            "usage": usage,
            "month": month,
            "chart": chart,
            "alerts": alerts(usage, month),
        },
    )


PAGES = [Page("dashboard", "ダッシュボード", (), view)]
