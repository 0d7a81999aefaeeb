"""Scheduled (daily, JST): snapshot every account's friend and block counts."""

from typing import Any

from tsunagu import wiring
from tsunagu.observability import metrics
from tsunagu.schedules import scheduled_handler

stats = wiring.friend_stats_service()


def snapshot(event: dict[str, Any]) -> dict[str, Any]:
    result = stats.snapshot()
    metrics.add_metric(name="FriendStatsAccounts", unit="Count", value=result["accounts"])
    return result


lambda_handler = scheduled_handler(snapshot)
