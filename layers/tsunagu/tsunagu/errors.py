"""Domain errors: each business failure has a stable machine-readable code, a message and the
HTTP status the API maps it to. Handlers never invent status codes of their own."""

from __future__ import annotations


class DomainError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, details: object | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details


class ValidationFailed(DomainError):
    code = "validation_failed"
    status = 422


class BadRequest(DomainError):
    code = "bad_request"
    status = 400


class Unauthorized(DomainError):
    code = "unauthorized"
    status = 401


class Forbidden(DomainError):
    code = "forbidden"
    status = 403


class NotFound(DomainError):
    code = "not_found"
    status = 404


class Conflict(DomainError):
    code = "conflict"
    status = 409


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"
    status = 415


class PayloadTooLarge(DomainError):
    code = "payload_too_large"
    status = 413


class InvalidSignature(Unauthorized):
    code = "invalid_signature"


class ChannelNotConfigured(DomainError):
    code = "channel_not_configured"
    status = 409


class UpstreamError(DomainError):
    """LINE (or another upstream) failed in a way that may succeed on retry."""

    code = "upstream_error"
    status = 502


# LINE's answers, declared here so services catch them without knowing the HTTP client.
class LineRefused(BadRequest):
    """LINE answered 4xx: final, retrying the same request cannot help."""

    code = "line_refused"

    def __init__(self, status: int, message: str):
        super().__init__(f"LINE refused the request ({status}): {message}")
        self.http_status = status


class LineApiError(UpstreamError):
    def __init__(self, status: int, message: str):
        super().__init__(f"LINE answered {status}: {message}", code="line_api_error")
        self.http_status = status
