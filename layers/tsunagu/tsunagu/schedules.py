"""The one way a scheduled job (EventBridge Scheduler) is wired: ``job(event)`` inside the same
logger / metrics / (opt-in) tracer decorators as the SQS workers, without Powertools' batch
utility (it loads asyncio: ~50 ms of a scheduled function's cold start, measured with
``bench/cold_start.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tsunagu.observability import LambdaHandler as Handler
from tsunagu.observability import instrumented


def scheduled_handler(job: Callable[[dict[str, Any]], dict[str, Any]]) -> Handler:
    """A Lambda handler for an EventBridge schedule: ``job(event)`` inside the decorators."""

    @instrumented(correlation_id_path=None)
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return job(event or {})

    return lambda_handler
