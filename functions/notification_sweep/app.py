"""Scheduled (hourly): notification messages with no delivery event 24 hours after they were
sent are marked undelivered (line-platform.md 4.5)."""

from typing import Any

from tsunagu import wiring
from tsunagu.observability import logger, metrics, tracer

tracing = tracer()
sweep = wiring.notification_sweep()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracing.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    swept = sweep.run()
    total = sum(swept.values())
    metrics.add_metric(name="NotificationsUndelivered", unit="Count", value=total)
    logger.info("sweep done", extra={"undelivered": total, "accounts": len(swept)})
    return {"undelivered": total, "accounts": swept}
