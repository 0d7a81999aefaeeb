"""The one place that maps errors to HTTP: every API function builds its resolver here.

Error body, always: ``{"error": {"code": "<stable code>", "message": "<human text>"}}``."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from tsunagu.errors import DomainError
from tsunagu.observability import logger


def error_response(status: int, code: str, message: str, details: Any = None) -> Response[str]:
    err: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        err["details"] = details
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"error": err}, ensure_ascii=False, default=str),
    )


def _validation_details(errors: Any) -> list[dict[str, Any]]:
    # Never echo the rejected input back: it may hold a secret or personal data.
    return [{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "")} for e in errors]


def build_resolver() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True)

    @app.exception_handler(DomainError)  # type: ignore[untyped-decorator]
    def _domain(e: DomainError) -> Response[str]:
        return error_response(e.status, e.code, e.message, e.details)

    @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
    def _invalid(e: RequestValidationError) -> Response[str]:
        errors = e.errors()
        body_unparseable = any(err.get("type") == "json_invalid" for err in errors)
        if body_unparseable:
            return error_response(400, "invalid_json", "request body is not valid JSON")
        return error_response(422, "validation_failed", "request failed validation", _validation_details(errors))

    @app.not_found
    def _not_found(_: NotFoundError) -> Response[str]:
        return error_response(404, "route_not_found", "no such route")

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def _unexpected(e: Exception) -> Response[str]:
        logger.exception("unhandled error")
        return error_response(500, "internal_error", "internal error; it has been logged")

    return app
