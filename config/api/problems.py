"""RFC 9457 problem documents for every API error, from one exception handler.

Every refusal has a machine-readable ``code``; validation failures list each bad field with an
RFC 6901 JSON pointer into the request. Domain errors (ledger, financing, parties) know nothing
of HTTP: ``DOMAIN_PROBLEMS`` maps each one's ``code`` to a status and a title, here, once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from typing import Any, NamedTuple

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string
from rest_framework import exceptions as drf
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from ledger.exceptions import FieldError

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://docs.chainfin.example/problems/"
VALIDATION_TITLE = "The request has invalid fields."


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


class RequestInvalid(ApiProblem):
    """A request (body, query or header) that is not what the endpoint takes: 422, each
    problem located by a JSON pointer. Events have their own, ``ledger.exceptions.EventInvalid``,
    which the same status and code describe."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        super().__init__(422, "validation_error", VALIDATION_TITLE, errors=errors)


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


class DomainProblem(NamedTuple):
    status: int
    title: str


@cache
def domain_bases() -> tuple[type[Exception], ...]:
    """The base class of each app's domain errors, as settings.API_DOMAIN_ERRORS names them.

    Named in settings, not imported here: the ledger's API imports this module, and the ledger
    may not depend on financing, not even through config.
    """
    return tuple(import_string(path) for path in settings.API_DOMAIN_ERRORS)


# code -> status and title. A domain error is looked up by its own code first (document formats
# set one per instance, e.g. "xml_too_large"), then by the code of each class it inherits from,
# so every base's code is the fallback of its family. A test holds every class to an entry.
DOMAIN_PROBLEMS: dict[str, DomainProblem] = {
    # ledger
    "ledger_error": DomainProblem(422, "The ledger refused the request."),
    "validation_error": DomainProblem(422, VALIDATION_TITLE),
    "event_conflict": DomainProblem(409, "The request contradicts what the ledger already holds."),
    "idempotency_key_reused": DomainProblem(
        422, "This Idempotency-Key was used for another request."
    ),
    "ubl_rejected": DomainProblem(422, "The document was refused."),
    "epcis_rejected": DomainProblem(422, "The document was refused."),
    "xml_too_large": DomainProblem(413, "The document was refused."),
    "cosignature_refused": DomainProblem(422, "The cosignature was refused."),
    "proof_unavailable": DomainProblem(422, "No such proof."),
    "entry_not_sequenced": DomainProblem(409, "The entry is not in the log yet; retry shortly."),
    # financing
    "financing_error": DomainProblem(422, "The financing request was refused."),
    "advance_refused": DomainProblem(422, "The advance was refused."),
    "not_permitted": DomainProblem(403, "This party may not do that."),
    "maker_checker": DomainProblem(403, "The checker must not be the maker."),
    "wrong_state": DomainProblem(409, "The advance is not in a state that allows this."),
    "approval_void": DomainProblem(409, "What was approved has changed; approve it again."),
    "quote_changed": DomainProblem(409, "The price changed; accept the new quote."),
    "facility_invalid": DomainProblem(422, "The facility's terms are invalid."),
    "file_refused": DomainProblem(422, "The file was refused."),
    "file_too_large": DomainProblem(413, "The file was refused."),
    # parties
    "party_error": DomainProblem(422, "The request was refused."),
    "merchant_not_active": DomainProblem(409, "The merchant is not active."),
    "bank_details_invalid": DomainProblem(422, "The bank account details are not valid."),
    "not_an_owner": DomainProblem(403, "Only an owner of the merchant may do this."),
    "last_owner": DomainProblem(409, "The merchant would be left without an owner."),
    "member_not_found": DomainProblem(404, "No such member of this merchant."),
    "member_already_added": DomainProblem(409, "The person is a member already."),
    "member_email_refused": DomainProblem(422, "This address cannot be added."),
    "report_uploaded_elsewhere": DomainProblem(409, "Another marketplace uploaded this file."),
}


def domain_problem(exc: Exception) -> DomainProblem | None:
    """The status and title of a domain error, by its code; None for anything else."""
    if not isinstance(exc, domain_bases()):
        return None
    codes = [getattr(exc, "code", "")]
    codes += [c for cls in type(exc).__mro__ if isinstance(c := cls.__dict__.get("code"), str)]
    return next((DOMAIN_PROBLEMS[code] for code in codes if code in DOMAIN_PROBLEMS), None)


def _domain_response(
    exc: Exception, found: DomainProblem, context: Mapping[str, Any]
) -> HttpResponse:
    errors: list[FieldError] = list(getattr(exc, "errors", []))
    message: str = getattr(exc, "message", "")
    reasons: Mapping[str, Sequence[tuple[str, str]]] | None = getattr(exc, "reasons", None)
    if reasons is not None:  # per-item refusals (AdvanceRefused): located where the body names them
        locate = _locator(context)
        errors = [
            FieldError(locate(item), f"{code}: {text}")
            for item, pairs in reasons.items()
            for code, text in pairs
        ] or [FieldError("", message or str(exc))]
    detail = message or ("" if errors else str(exc))
    return problem_response(
        found.status, str(getattr(exc, "code", "")), found.title, detail, errors
    )


def _locator(context: Mapping[str, Any]) -> Callable[[str], str]:
    """Where the request body names an item a refusal speaks of: the view's ``reasons_at``
    (e.g. "/receivables") is a list in the body, and the item's pointer is its index there."""
    at: str = getattr(context.get("view"), "reasons_at", "")
    request = context.get("request")
    listed: Any = getattr(request, "data", None) if request is not None else None
    for part in at.split("/")[1:]:
        listed = listed.get(part) if isinstance(listed, dict) else None
    items = listed if isinstance(listed, list) else []

    def locate(item: str) -> str:
        return f"{at}/{items.index(item)}" if item in items else ""

    return locate


def _drf_errors(detail: Any, pointer: str = "") -> list[FieldError]:
    if isinstance(detail, dict):
        return [
            e
            for key, value in detail.items()
            # A serializer's non-field errors are about the object itself: they point at it.
            for e in _drf_errors(
                value, pointer if key == api_settings.NON_FIELD_ERRORS_KEY else f"{pointer}/{key}"
            )
        ]
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
    drf.ValidationError: ("validation_error", VALIDATION_TITLE),
}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse | None:
    """DRF's EXCEPTION_HANDLER: every known error becomes a problem document."""
    if isinstance(exc, ApiProblem):
        return problem_response(
            exc.status, exc.code, exc.title, exc.detail, exc.errors, exc.headers
        )
    found = domain_problem(exc)
    if found is not None:
        return _domain_response(exc, found, context)
    if isinstance(exc, drf.APIException):
        drf_response = drf_exception_handler(exc, context)  # for its headers (WWW-Authenticate)
        code, title = next(
            (v for k, v in _DRF_CODES.items() if isinstance(exc, k)), ("error", "Error.")
        )
        errors = _drf_errors(exc.detail) if isinstance(exc, drf.ValidationError) else []
        detail = "" if errors else str(exc.detail)
        headers = dict(drf_response.items()) if drf_response is not None else {}
        headers.pop("Content-Type", None)
        status = 422 if isinstance(exc, drf.ValidationError) else exc.status_code
        return problem_response(status, code, title, detail, errors, headers)
    return None


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404 for /api/: a problem document instead of an HTML page."""
    return problem_response(404, "not_found", "Not found.", f"No API route at {request.path}.")


def api_server_error(request: HttpRequest) -> HttpResponse:
    return problem_response(500, "server_error", "Internal error; it has been logged.")
