"""Scheduled (hourly): notification messages with no delivery event 24 hours after they were
sent are marked undelivered (line-platform.md 4.5)."""

from typing import Any

from tsunagu import wiring
from tsunagu.observability import logger, metrics
from tsunagu.schedules import scheduled_handler

sweep = wiring.notification_sweep()


def run(event: dict[str, Any]) -> dict[str, Any]:
    swept = sweep.run()
    total = sum(swept.values())
    metrics.add_metric(name="NotificationsUndelivered", unit="Count", value=total)
    logger.info("sweep done", extra={"undelivered": total, "accounts": len(swept)})
    return {"undelivered": total, "accounts": swept}


lambda_handler = scheduled_handler(run)
