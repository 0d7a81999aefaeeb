"""Logger, metrics and the opt-in tracer, configured once.

LINE user ids are masked in logs; tokens, secrets and raw personal data are never logged.
The X-Ray tracer costs ~0.6 s of cold start, so it is imported only when TRACING_ENABLED=true."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from tsunagu.config import get_settings

# A request that emits no business metric is normal here; don't warn about it on every call.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger(utc=True)
metrics = Metrics()


def mask_user_id(user_id: str | None) -> str | None:
    """``U4af4980629...`` -> ``U4af4…0629``: enough to correlate, not enough to message."""
    if not user_id or len(user_id) < 10:
        return user_id
    return f"{user_id[:5]}…{user_id[-4:]}"


class _NoTracer:
    def capture_lambda_handler(self, fn: Any = None, **_: Any) -> Any:
        return fn if fn is not None else (lambda f: f)

    def capture_method(self, fn: Any = None, **_: Any) -> Any:
        return fn if fn is not None else (lambda f: f)


def tracer() -> Any:
    if get_settings().tracing_enabled:
        from aws_lambda_powertools import Tracer

        return Tracer()
    return _NoTracer()


API_REQUEST_ID = "requestContext.requestId"
LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def instrumented(correlation_id_path: str | None = API_REQUEST_ID) -> Callable[[LambdaHandler], LambdaHandler]:
    """The one decorator stack of every Lambda entry, in a fixed order: the logger (with the API
    request id as correlation id for HTTP functions), metrics flushed per invocation, then the
    opt-in tracer innermost."""
    tracing = tracer()

    def wrap(handler: LambdaHandler) -> LambdaHandler:
        traced = tracing.capture_lambda_handler(handler)
        flushed = metrics.log_metrics(traced)
        entry: LambdaHandler = logger.inject_lambda_context(correlation_id_path=correlation_id_path, clear_state=True)(
            flushed
        )
        return entry

    return wrap
