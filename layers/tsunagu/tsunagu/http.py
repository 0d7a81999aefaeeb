"""The HTTP face every function shares, lean ones included: the error body, JSON and HTML answers
in API Gateway's proxy format, the parsed request, cookies and the JSON body check.

No pydantic and no event-handler framework here: the webhook intake, the redemption function and
the member-facing pages import this module on their hot path. The resolver-based API functions
build on it in ``tsunagu.api``.

Error body, always: ``{"error": {"code": "<stable code>", "message": "<human text>"}}``."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from tsunagu.errors import BadRequest, DomainError, UnsupportedMediaType, ValidationFailed
from tsunagu.text import has_lone_surrogate

JSON = "application/json; charset=utf-8"
HTML = "text/html; charset=utf-8"

# What a body may be sent as. A missing content-type is read as JSON (what curl users expect).
APPLICATION_JSON = "application/json"
TEXT_CSV = "text/csv"
FORM = "application/x-www-form-urlencoded"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        err["details"] = details
    return {"error": err}


def respond(
    status: int,
    body: str,
    content_type: str,
    headers: dict[str, str] | None = None,
    cookies: list[str] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "statusCode": status,
        "headers": {"content-type": content_type, "cache-control": "no-store", **(headers or {})},
        "body": body,
    }
    if cookies is not None:
        out["cookies"] = cookies
    return out


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return respond(status, json.dumps(body, ensure_ascii=False, default=str), JSON, headers)


def error_response(e: DomainError) -> dict[str, Any]:
    return json_response(e.status, error_body(e.code, e.message, e.details))


def html_response(
    status: int,
    html: str,
    csp: str,
    headers: dict[str, str] | None = None,
    cookies: list[str] | None = None,
) -> dict[str, Any]:
    """A member-facing page: never cached, never framed, no referrer (ids travel in URLs)."""
    page_headers = {
        "content-security-policy": csp,
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
        **(headers or {}),
    }
    return respond(status, html, HTML, page_headers, cookies or [])


def cookie(name: str, value: str, path: str, max_age: int, public_base_url: str) -> str:
    """HttpOnly, SameSite=Lax, and Secure unless the site itself is plain http (the local stack)."""
    secure = "" if public_base_url.startswith("http://") else "; Secure"
    return f"{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"


@dataclass(frozen=True)
class Request:
    """An API Gateway HTTP API (v2) event, read once: header names lower-cased."""

    method: str
    path: str
    account_id: str
    headers: dict[str, str]
    query: dict[str, str]
    cookies: dict[str, str]
    body: bytes
    domain: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, event: dict[str, Any]) -> Request:
        raw = event.get("body") or ""
        body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8", "surrogatepass")
        ctx = event.get("requestContext") or {}
        return cls(
            method=str((ctx.get("http") or {}).get("method", "")),
            path=str(event.get("rawPath", "")),
            account_id=str((event.get("pathParameters") or {}).get("accountId", "")),
            headers={k.lower(): v for k, v in (event.get("headers") or {}).items()},
            query=dict(event.get("queryStringParameters") or {}),
            cookies=dict(c.split("=", 1) for c in event.get("cookies", []) if "=" in c),
            body=body,
            domain=str(ctx.get("domainName", "")),
            raw=event,
        )

    def origin(self, public_base_url: str) -> str:
        """Where tsunagu is reached from outside: the configured base URL, else the API's domain."""
        return public_base_url or f"https://{self.domain}"

    @property
    def media_type(self) -> tuple[str, str]:
        """The body's media type and charset parameter, lower-cased (JSON when none is sent)."""
        value = self.headers.get("content-type", "")
        kind, _, params = value.partition(";")
        charset = ""
        for param in params.split(";"):
            name, _, v = param.partition("=")
            if name.strip().lower() == "charset":
                charset = v.strip().strip('"').lower()
        return (kind.strip().lower() or APPLICATION_JSON), charset

    def json(self) -> Any:
        """The body as JSON, with the refusals of :func:`parse_json`."""
        return parse_json(self.body)


def parse_json(data: bytes) -> Any:
    """A JSON body, or the 4xx that says why not: 400 ``invalid_encoding`` for bytes that are not
    UTF-8, 400 ``invalid_json`` when it does not parse (or nests too deeply), 422
    ``number_too_large`` for an integer past Python's 4,300-digit conversion limit, 422
    ``invalid_text`` for a lone UTF-16 surrogate, which no store keeps."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8 text; send JSON encoded as UTF-8", code="invalid_encoding") from None
    try:
        doc = json.loads(text)
    except ValueError as e:
        if "integer string conversion" in str(e):
            raise ValidationFailed("a number in the body has too many digits", code="number_too_large") from None
        raise BadRequest("request body is not valid JSON", code="invalid_json") from None
    except RecursionError:
        raise BadRequest("request body is nested too deeply", code="invalid_json") from None
    if has_lone_surrogate(doc):
        raise ValidationFailed("the body holds a lone UTF-16 surrogate (\\ud800-\\udfff)", code="invalid_text")
    return doc


def refuse_malformed(req: Request, accepts: tuple[str, ...] = (APPLICATION_JSON,)) -> DomainError | None:
    """The one gate every HTTP function puts a request through before any route runs (so a refused
    request writes nothing): a body in a media type the function does not take is 415 with the
    types it does; a JSON body must be UTF-8 JSON (:func:`parse_json`). ``None`` when the request
    may go on. Bodies of other accepted types (CSV in UTF-8 or Shift_JIS, forms) are their
    route's to decode."""
    if not req.body:
        return None
    kind, charset = req.media_type
    is_json = kind == APPLICATION_JSON
    if not (is_json and APPLICATION_JSON in accepts) and kind not in accepts:
        return UnsupportedMediaType(
            f"a body sent as {kind} is not accepted here; send {' or '.join(accepts)}",
            details=[{"accepted": list(accepts)}],
        )
    if is_json:
        if charset and charset not in ("utf-8", "utf8"):
            return UnsupportedMediaType("JSON is accepted in UTF-8 only", details=[{"accepted": list(accepts)}])
        try:
            parse_json(req.body)
        except DomainError as e:
            return e
    elif kind == FORM:
        try:
            req.body.decode("utf-8")
        except UnicodeDecodeError:
            return BadRequest("the form is not UTF-8 text", code="invalid_encoding")
    return None
