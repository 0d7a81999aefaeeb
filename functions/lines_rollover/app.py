"""Scheduled lines jobs, one per schedule's ``job`` input:
``rollover`` (00:00 JST on the 1st, the default) - every account's lines back to their
allowance; data left over, gifts received included, expires with the month (R-GIFT-1).
Idempotent: a line already in the month is left alone. ``{"month": "YYYY-MM"}`` runs a given
month. ``outbox`` (every 5 minutes) - announce to the carrier the gifts whose announcement never
reached the forward queue (a crash or an SQS failure right after the gift's transaction)."""

from typing import Any

from tsunagu import wiring
from tsunagu.schedules import scheduled_handler

lines = wiring.lines_service()
accounts = wiring.account_store()


def job(event: dict[str, Any]) -> dict[str, Any]:
    kind = event.get("job", "rollover")
    if kind == "outbox":
        return {"job": "outbox", **lines.announce_pending()}
    if kind != "rollover":
        raise ValueError(f"unknown lines job {kind!r}")
    month = event.get("month")
    totals = {"accounts": 0, "lines": 0, "rolled_over": 0}
    for account_id in accounts.list_ids():
        r = lines.rollover(account_id, month)
        totals["accounts"] += 1
        totals["lines"] += r["lines"]
        totals["rolled_over"] += r["rolled_over"]
    return totals


lambda_handler = scheduled_handler(job)
