"""Scheduled (daily, JST): snapshot every account's friend and block counts."""

from typing import Any

from tsunagu import wiring
from tsunagu.observability import logger, metrics, tracer

tracing = tracer()
stats = wiring.friend_stats_service()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracing.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = stats.snapshot()
    metrics.add_metric(name="FriendStatsAccounts", unit="Count", value=result["accounts"])
    return result
