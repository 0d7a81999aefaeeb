"""Scheduled billing jobs (EventBridge Scheduler, JST), one per schedule's ``job`` input:
``daily`` - usage rollup, the LINE quota check and stale quota reservations given back (every
account, or only ``account_ids`` when an operator re-runs it for some);
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
    only = event.get("account_ids")  # an operator re-running the daily job for named accounts
    if only is not None and not (isinstance(only, list) and all(isinstance(a, str) for a in only)):
        raise ValueError("account_ids must be a list of account ids")
    if job == "daily":
        result: dict[str, Any] = {
            "rollup": billing.daily_rollup(only=only),
            "quota_check": billing.quota_check(only=only),
            "released_stale": billing.release_stale(only=only),
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
