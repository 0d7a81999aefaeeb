"""Scheduled billing jobs (EventBridge Scheduler, JST), one per schedule's ``job`` input:
``daily`` - usage rollup, the LINE quota check and stale quota reservations given back;
``close`` - the monthly invoice close on the 1st (the previous month); ``points`` - R-PTS-1
points on the 10th. Each is safe to re-run."""

from datetime import timedelta
from typing import Any

from tsunagu import wiring
from tsunagu.observability import logger, metrics
from tsunagu.schedules import scheduled_handler

billing = wiring.billing_service()


def run(event: dict[str, Any]) -> dict[str, Any]:
    job = event.get("job", "daily")
    if job == "daily":
        result: dict[str, Any] = {
            "rollup": billing.daily_rollup(),
            "quota_check": billing.quota_check(),
            "released_stale": billing.release_stale(),
        }
    elif job == "close":
        month = event.get("month") or (billing.today().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
        result = {"month": month, "accounts": billing.close_month(month)}
        outcomes = list(result["accounts"].values())
        metrics.add_metric(name="InvoicesClosed", unit="Count", value=outcomes.count("closed"))
        metrics.add_metric(name="InvoicesFailed", unit="Count", value=outcomes.count("failed"))
    elif job == "points":
        result = {"granted": billing.grant_points(event.get("month"))}
    else:
        raise ValueError(f"unknown billing job {job!r}")
    logger.info("billing job done", extra={"job": job})
    return {"job": job, **result}


lambda_handler = scheduled_handler(run)
