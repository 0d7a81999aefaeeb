"""The business API's face: every API function builds its resolver here (one error mapping), and
every router authenticates with ``authenticated`` and shares the path types. The error body is
``tsunagu.http``'s, the same for the lean functions."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from tsunagu import wiring
from tsunagu.errors import DomainError
from tsunagu.http import APPLICATION_JSON, TEXT_CSV, Request, error_body, refuse_malformed
from tsunagu.http import error_response as http_error_response
from tsunagu.observability import instrumented, logger

if TYPE_CHECKING:
    from tsunagu.accounts.domain import Account

# What the API functions take as a body: JSON everywhere, CSV where a route imports a file.
API_ACCEPTS = (APPLICATION_JSON, TEXT_CSV)

AccountId = Annotated[str, Path(max_length=64)]
UserId = Annotated[str, Path(pattern=r"^U[0-9a-f]{32}$")]
# Query parameters that do not parse are 422 (never ignored), and the document says their types.
After = Annotated[str | None, Query(max_length=512, description="the `next` of the previous page")]
JstDay = Annotated[date | None, Query(description="a JST calendar day, YYYY-MM-DD")]


def iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(error_body(code, message, details), ensure_ascii=False, default=str),
        headers=headers or None,
    )


def router() -> Router:
    """A capability's routes; an API function includes the routers of its capability."""
    return Router()  # type: ignore[no-untyped-call]


def uploaded_bytes(routes: Router | APIGatewayHttpResolver) -> bytes:
    """The request body as sent (a CSV upload), whether API Gateway passed it as text or base64."""
    import base64

    ev = routes.current_event
    raw = ev.get("body") or ""
    return base64.b64decode(raw) if ev.is_base64_encoded else raw.encode()


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


def _unsupported(accepted: tuple[str, ...] = API_ACCEPTS) -> Response[str]:
    return error_response(
        415, "unsupported_media_type", f"send the body as {' or '.join(accepted)}", [{"accepted": list(accepted)}]
    )


def build_resolver(*routers: Router) -> APIGatewayHttpResolver:
    """A resolver for one API function: its capability's routers, one error mapping for all."""
    app = APIGatewayHttpResolver(enable_validation=True)
    for r in routers:
        app.include_router(r)

    @app.exception_handler(DomainError)  # type: ignore[untyped-decorator]
    def _domain(e: DomainError) -> Response[str]:
        return error_response(e.status, e.code, e.message, e.details, e.headers)

    @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
    def _invalid(e: RequestValidationError) -> Response[str]:
        errors = e.errors()
        body_unparseable = any(err.get("type") == "json_invalid" for err in errors)
        if body_unparseable:
            return error_response(400, "invalid_json", "request body is not valid JSON")
        return error_response(422, "validation_failed", "request failed validation", _validation_details(errors))

    @app.exception_handler(RequestUnsupportedContentType)  # type: ignore[untyped-decorator]
    def _wrong_type(_: RequestUnsupportedContentType) -> Response[str]:
        return _unsupported((APPLICATION_JSON,))  # a CSV sent to a JSON route

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
        req = Request.of(event)
        refused = refuse_malformed(req, API_ACCEPTS)  # before any route: nothing written
        if refused is not None:
            return http_error_response(refused)
        if req.body and "content-type" in req.headers:  # media types are case-insensitive; Powertools' check is not
            event = {**event, "headers": {**req.headers, "content-type": req.media_type[0]}}
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
    # A route given ``responses=`` loses the success answer Powertools would have written; put it
    # back with the route's own status (200, 201 or 202).
    success = {(r.openapi_path, r.method.lower()): r.status_code for r in app._static_routes + app._dynamic_routes}
    for path, item in doc.setdefault("paths", {}).items():
        for method, op in item.items():
            responses = op.setdefault("responses", {})
            if not any(str(code).startswith(("2", "3")) for code in responses):
                responses[str(success.get((path, method), 200))] = {"description": "Successful Response"}
            _document_shared_errors(path, method, op)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):  # every 422 is the shared Error body
        schemas.pop(unused, None)
    doc["paths"].update(EXTRA_OPENAPI["paths"])
    schemas.update(EXTRA_OPENAPI["schemas"])
    return doc


# The answers every route shares, by what the route has: a body, a key to check, path parameters.
# A route's own refusals (409, 403, 502 …) are declared on its decorator with ``errors(…)``.
def _document_shared_errors(path: str, method: str, op: dict[str, Any]) -> None:
    responses: dict[str, Any] = op.setdefault("responses", {})
    found: dict[str, str] = {}
    if "requestBody" in op:
        found["400"] = "not JSON, not UTF-8, or nested too deeply (invalid_json, invalid_encoding)"
        found["415"] = "a body in a media type this route does not take (unsupported_media_type)"
    if "requestBody" in op or op.get("parameters"):
        found["422"] = "failed validation (validation_failed, number_too_large, invalid_text, or the route's own code)"
    if path.startswith("/accounts"):
        found["401"] = "missing or wrong API key (unauthorized)"
    if path.startswith("/accounts/{"):
        found["404"] = "the account is not the key's, or the named item does not exist (account_not_found, …)"
    if "HTTPValidationError" in json.dumps(responses.get("422", {})) and "422" not in found:
        del responses["422"]  # nothing to validate on this route
    for status, description in found.items():
        if status not in responses or "HTTPValidationError" in json.dumps(responses[status]):
            responses[status] = _error_schema(description)


def errors(**by_status: str) -> dict[int, Any]:
    """A route's own refusals for its decorator: ``errors(s409="over quota (quota_exceeded)")``;
    a 429 also documents its ``Retry-After`` header."""
    out = {int(k.lstrip("s")): _error_schema(v) for k, v in by_status.items()}
    if 429 in out:
        out[429]["headers"] = {
            "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
        }
    return out


def csv_or_json(description: str, schema: dict[str, Any] | None = None) -> dict[int, Any]:
    """A 200 that is JSON by default and a CSV file with ``format=csv`` (or CSV only, ``schema=None``)."""
    content: dict[str, Any] = {"text/csv": {"schema": {"type": "string"}}}
    if schema is not None:
        content["application/json"] = {"schema": schema}
    return {200: {"description": description, "content": content}}
