"""Scheduled (daily, JST): LINE's per-unit statistics (and narrowcast progress) of every campaign
sent in the last 30 days, kept as LINE answered (null below 20 users stays null)."""

from typing import Any

from tsunagu import wiring
from tsunagu.observability import metrics
from tsunagu.schedules import scheduled_handler

campaigns = wiring.campaigns()
accounts = wiring.account_store()


def fetch(event: dict[str, Any]) -> dict[str, Any]:
    result = campaigns.fetch_recent_insights(accounts.list_ids())
    metrics.add_metric(name="CampaignInsightsFetched", unit="Count", value=result["fetched"])
    return result


lambda_handler = scheduled_handler(fetch)
