"""The business API's face: every API function builds its resolver here (one error mapping), and
every router authenticates with ``authenticated`` and shares the path types. The error body is
``tsunagu.http``'s, the same for the lean functions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Path

from tsunagu import wiring
from tsunagu.errors import DomainError
from tsunagu.http import error_body
from tsunagu.observability import instrumented, logger
from tsunagu.text import json_has_lone_surrogate

if TYPE_CHECKING:
    from tsunagu.accounts.domain import Account

AccountId = Annotated[str, Path(max_length=64)]
UserId = Annotated[str, Path(pattern=r"^U[0-9a-f]{32}$")]


def error_response(status: int, code: str, message: str, details: Any = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(error_body(code, message, details), ensure_ascii=False, default=str),
    )


def router() -> Router:
    """A capability's routes; an API function includes the routers of its capability."""
    return Router()  # type: ignore[no-untyped-call]


def authenticated(routes: Router | APIGatewayHttpResolver, account_id: str) -> Account:
    """The account the request's ``Authorization: Bearer`` key opens: 401 for a missing or wrong
    key, 404 when the key belongs to another account. Every business route starts here."""
    account = wiring.account_service().authenticate(routes.current_event.headers.get("authorization"), account_id)
    logger.append_keys(account_id=account_id)
    return account


def csv_response(body: str, filename: str, headers: dict[str, str] | None = None) -> Response[str]:
    """A CSV download Excel opens as UTF-8 (the body carries the BOM where the exporter adds it)."""
    return Response(
        status_code=200,
        content_type="text/csv; charset=utf-8",
        body=body,
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"', **(headers or {})},
    )


def _validation_details(errors: Any) -> list[dict[str, Any]]:
    # Never echo the rejected input back: it may hold a secret or personal data.
    return [{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "")} for e in errors]


def _not_json(app: APIGatewayHttpResolver) -> bool:
    """True when a body was sent with a content-type that is not JSON (a missing
    content-type is read as JSON, as curl users expect)."""
    event = app.current_event
    ctype = (event.headers.get("content-type") or "").split(";")[0].strip().lower()
    return bool(event.body) and bool(ctype) and not ctype.endswith("json")


def _refuse_unstorable_text(app: APIGatewayHttpResolver, next_middleware: Any) -> Any:
    """Before any route runs: a body with a lone surrogate is refused (nothing written)."""
    if _not_json(app):  # a CSV upload (UTF-8 or Shift_JIS) is its route's to decode
        return next_middleware(app)
    try:
        body = app.current_event.decoded_body
    except UnicodeDecodeError:  # not UTF-8, so not JSON: the route's validation answers it
        return next_middleware(app)
    if isinstance(body, str) and json_has_lone_surrogate(body):
        return error_response(
            422, "invalid_text", "the body holds a lone UTF-16 surrogate (\\ud800-\\udfff); send valid Unicode text"
        )
    return next_middleware(app)


def build_resolver(*routers: Router) -> APIGatewayHttpResolver:
    """A resolver for one API function: its capability's routers, one error mapping for all."""
    app = APIGatewayHttpResolver(enable_validation=True)
    app.use(middlewares=[_refuse_unstorable_text])
    for r in routers:
        app.include_router(r)

    @app.exception_handler(DomainError)  # type: ignore[untyped-decorator]
    def _domain(e: DomainError) -> Response[str]:
        return error_response(e.status, e.code, e.message, e.details)

    @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
    def _invalid(e: RequestValidationError) -> Response[str]:
        if _not_json(app):
            return error_response(415, "unsupported_media_type", "send the body as application/json")
        errors = e.errors()
        body_unparseable = any(err.get("type") == "json_invalid" for err in errors)
        if body_unparseable:
            return error_response(400, "invalid_json", "request body is not valid JSON")
        return error_response(422, "validation_failed", "request failed validation", _validation_details(errors))

    @app.not_found
    def _not_found(_: NotFoundError) -> Response[str]:
        return error_response(404, "route_not_found", "no such route")

    from pydantic import ValidationError  # resolver functions load pydantic anyway; lean ones never get here

    @app.exception_handler(ValidationError)  # type: ignore[untyped-decorator]
    def _model_invalid(e: ValidationError) -> Response[str]:
        # A model built inside a route (e.g. settings merged with a patch) refused the input.
        return error_response(422, "validation_failed", "request failed validation", _validation_details(e.errors()))

    @app.exception_handler(RecursionError)  # type: ignore[untyped-decorator]
    def _too_deep(_: RecursionError) -> Response[str]:
        return error_response(400, "invalid_json", "request body is nested too deeply")

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def _unexpected(e: Exception) -> Response[str]:
        logger.exception("unhandled error")
        return error_response(500, "internal_error", "internal error; it has been logged")

    return app


def api_handler(app: APIGatewayHttpResolver) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda entry of an API function: the resolver inside the logger / metrics / (opt-in)
    tracer decorators, in the same order as the workers' and the lean functions'."""

    @instrumented()
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return dict(app.resolve(event, context))

    return lambda_handler


def _error_schema(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


# Routes served by functions that do not use the resolver (kept lean for cold start), and the
# error body every route shares: documented here so /openapi.json describes the whole API.
EXTRA_OPENAPI: dict[str, Any] = {
    "paths": {
        "/line/{accountId}/webhook": {
            "post": {
                "summary": "LINE webhook intake (signed by LINE with the channel secret)",
                "operationId": "line_webhook",
                "parameters": [
                    {"name": "accountId", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "x-line-signature", "in": "header", "required": True, "schema": {"type": "string"}},
                ],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {
                    "200": {"description": "events accepted and queued (also for an empty events array)"},
                    "400": _error_schema("valid signature, but not a LINE webhook (code invalid_webhook)"),
                    "401": _error_schema("missing or wrong signature (code invalid_signature)"),
                    "404": _error_schema("unknown account or no channel credentials (code unknown_account)"),
                    "413": _error_schema("body too large (code payload_too_large)"),
                },
            }
        },
        "/health": {
            "get": {"summary": "liveness", "operationId": "health", "responses": {"200": {"description": "ok"}}}
        },
    },
    "schemas": {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "description": "stable, machine-readable"},
                        "message": {"type": "string"},
                        "details": {"type": "array", "items": {"type": "object"}},
                    },
                }
            },
        }
    },
}


def openapi_document(app: APIGatewayHttpResolver, title: str = "tsunagu", version: str = "0.1.0") -> dict[str, Any]:
    doc: dict[str, Any] = app.get_openapi_schema(title=title, version=version).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    doc.setdefault("paths", {}).update(EXTRA_OPENAPI["paths"])
    doc.setdefault("components", {}).setdefault("schemas", {}).update(EXTRA_OPENAPI["schemas"])
    return doc
