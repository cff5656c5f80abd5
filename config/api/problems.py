"""RFC 9457 problem documents for every API error, from one exception handler.

Every refusal has a machine-readable ``code``; validation failures list each bad field with an
RFC 6901 JSON pointer into the request.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions as drf
from rest_framework.views import exception_handler as drf_exception_handler

from ledger.exceptions import (
    EventConflict,
    EventInvalid,
    FieldError,
    IdempotencyKeyReused,
    LedgerError,
)

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://docs.chainfin.example/problems/"


class ApiProblem(Exception):
    """An API refusal that is not a domain error: authentication, tenancy, limits, framing."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str = "",
        errors: Iterable[FieldError] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status, self.code, self.title, self.detail = status, code, title, detail
        self.errors = list(errors)
        self.headers = headers or {}


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str = "",
    errors: Iterable[FieldError] = (),
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    document: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "code": code,
    }
    if detail:
        document["detail"] = detail
    errors = list(errors)
    if errors:
        document["errors"] = [{"pointer": e.pointer, "detail": e.message} for e in errors]
    response = HttpResponse(
        orjson.dumps(document), status=status, content_type=PROBLEM_CONTENT_TYPE
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


_DOMAIN_STATUS: list[tuple[type[LedgerError], int, str]] = [
    (EventInvalid, 422, "The request has invalid fields."),
    (EventConflict, 409, "The request contradicts what the ledger already holds."),
    (IdempotencyKeyReused, 422, "This key was already used for a different event."),
]


def _drf_errors(detail: Any, pointer: str = "") -> list[FieldError]:
    if isinstance(detail, dict):
        return [e for key, value in detail.items() for e in _drf_errors(value, f"{pointer}/{key}")]
    if isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            return [FieldError(pointer, str(item)) for item in detail]
        return [e for i, item in enumerate(detail) for e in _drf_errors(item, f"{pointer}/{i}")]
    return [FieldError(pointer, str(detail))]


_DRF_CODES: dict[type[drf.APIException], tuple[str, str]] = {
    drf.NotAuthenticated: ("not_authenticated", "Authentication is required."),
    drf.AuthenticationFailed: ("authentication_failed", "The credentials were refused."),
    drf.PermissionDenied: ("permission_denied", "This credential may not do that."),
    drf.NotFound: ("not_found", "Not found."),
    drf.MethodNotAllowed: ("method_not_allowed", "Method not allowed."),
    drf.NotAcceptable: ("not_acceptable", "Cannot produce the requested media type."),
    drf.UnsupportedMediaType: ("unsupported_media_type", "Unsupported media type."),
    drf.ParseError: ("malformed_request", "The request body could not be parsed."),
    drf.Throttled: ("rate_limited", "Too many requests."),
    drf.ValidationError: ("validation_error", "The request has invalid fields."),
}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse | None:
    """DRF's EXCEPTION_HANDLER: every known error becomes a problem document."""
    if isinstance(exc, ApiProblem):
        return problem_response(
            exc.status, exc.code, exc.title, exc.detail, exc.errors, exc.headers
        )
    for error_type, status, title in _DOMAIN_STATUS:
        if isinstance(exc, error_type):
            errors = getattr(exc, "errors", [])
            return problem_response(status, exc.code, title, str(exc) if not errors else "", errors)
    if isinstance(exc, LedgerError):  # document formats (UBL, EPCIS) refusing their input
        status = 413 if exc.code.endswith("_too_large") else 422
        detail = getattr(exc, "message", str(exc))
        errors = getattr(exc, "errors", [])
        return problem_response(status, exc.code, "The document was refused.", detail, errors)
    if isinstance(exc, drf.APIException):
        response = drf_exception_handler(exc, context)  # for its headers (WWW-Authenticate, ...)
        code, title = next(
            (v for k, v in _DRF_CODES.items() if isinstance(exc, k)), ("error", "Error.")
        )
        errors = _drf_errors(exc.detail) if isinstance(exc, drf.ValidationError) else []
        detail = "" if errors else str(exc.detail)
        headers = dict(response.items()) if response is not None else {}
        headers.pop("Content-Type", None)
        status = 422 if isinstance(exc, drf.ValidationError) else exc.status_code
        return problem_response(status, code, title, detail, errors, headers)
    return None


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404 for /api/: a problem document instead of an HTML page."""
    return problem_response(404, "not_found", "Not found.", f"No API route at {request.path}.")


def api_server_error(request: HttpRequest) -> HttpResponse:
    return problem_response(500, "server_error", "Internal error; it has been logged.")
