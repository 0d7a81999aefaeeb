"""Scheduled (daily, JST): snapshot every account's friend and block counts."""

from typing import Any

from tsunagu import wiring
from tsunagu.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = wiring.friend_stats_service().snapshot()
    metrics.add_metric(name="FriendStatsAccounts", unit="Count", value=result["accounts"])
    return result
