"""One exception handler answers every domain error by its code; no view translates by hand."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from rest_framework.test import APIRequestFactory

import ledger.formats.epcis
import ledger.formats.ubl
import ledger.formats.ubl_xml
from config.api.problems import (
    DOMAIN_PROBLEMS,
    api_exception_handler,
    domain_bases,
    domain_problem,
)
from financing.api.views import AdvanceCreateApi
from financing.exceptions import AdvanceRefused, FinancingError, RequestKeyReused
from ledger.exceptions import EventConflict, IdempotencyKeyReused, LedgerError
from merchants.exceptions import MerchantNotActive, PartyError

ROOT = Path(__file__).resolve().parents[2]
BASES = (LedgerError, FinancingError, PartyError)


def _family(base: type[Exception]) -> Iterator[type[Exception]]:
    yield base
    for sub in base.__subclasses__():
        yield from _family(sub)


def test_the_handler_knows_every_domain_error_base() -> None:
    assert set(domain_bases()) == set(BASES)
    assert len(settings.API_DOMAIN_ERRORS) == len(BASES)


@pytest.mark.parametrize("error_class", [c for base in BASES for c in _family(base)])
def test_every_domain_error_class_has_a_status_by_its_code(error_class: type[Exception]) -> None:
    code = error_class.__dict__.get("code")
    assert isinstance(code, str), f"{error_class.__name__} declares no code of its own"
    assert code in DOMAIN_PROBLEMS, f"{error_class.__name__}: {code!r} is not mapped"
    assert 400 <= DOMAIN_PROBLEMS[code].status < 500


def _format_codes() -> set[tuple[str, str]]:
    """Every code the document formats raise, as written in their source."""
    found = set()
    modules = (
        (ledger.formats.ubl, "ubl"),
        (ledger.formats.ubl_xml, "ubl"),
        (ledger.formats.epcis, "epcis"),
    )
    for module, name in modules:
        source = Path(module.__file__ or "").read_text()
        found |= {(name, c) for c in re.findall(r'"((?:ubl|epcis|xml)_[a-z_]+)"', source)}
    return found


@pytest.mark.parametrize(("module", "code"), sorted(_format_codes()))
def test_document_refusals_keep_their_statuses(module: str, code: str) -> None:
    error_class = (
        ledger.formats.ubl.UblRejected if module == "ubl" else ledger.formats.epcis.EpcisRejected
    )
    found = domain_problem(error_class(code, "Refused.", "/x"))

    assert found is not None
    assert found.status == (413 if code.endswith("_too_large") else 422)


def _handled(exc: Exception, context: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    response = api_exception_handler(exc, context or {})
    assert response is not None
    assert response["Content-Type"] == "application/problem+json"
    return response.status_code, json.loads(response.content)


def test_an_advance_refusal_points_at_each_invoice_where_the_body_named_it() -> None:
    request = APIRequestFactory().post(
        "/api/v1/advances", {"receivables": ["INV-1", "INV-2", "INV-3"]}, format="json"
    )
    view = AdvanceCreateApi()
    drf_request = view.initialize_request(request)
    refused = AdvanceRefused(
        "Some invoices cannot be financed now.",
        {"INV-3": [("NO_DELIVERY", "Not delivered."), ("RETURNED", "Returned.")]},
    )

    status, problem = _handled(refused, {"view": view, "request": drf_request})

    assert (status, problem["code"]) == (422, "advance_refused")
    assert problem["detail"] == "Some invoices cannot be financed now."
    assert problem["errors"] == [
        {"pointer": "/receivables/2", "detail": "NO_DELIVERY: Not delivered."},
        {"pointer": "/receivables/2", "detail": "RETURNED: Returned."},
    ]


def test_a_refusal_without_reasons_points_at_the_body() -> None:
    status, problem = _handled(AdvanceRefused("One advance is in one currency.", {}))

    assert status == 422
    assert problem["errors"] == [{"pointer": "", "detail": "One advance is in one currency."}]


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (RequestKeyReused("This idempotency key was used for another advance request."), 422,
         "idempotency_key_reused"),
        (IdempotencyKeyReused(source="acme", idempotency_key="k"), 422, "idempotency_key_reused"),
        (EventConflict("/ref", "Already an order."), 409, "event_conflict"),
        (MerchantNotActive(public_id="mer_x", status="closed"), 409, "merchant_not_active"),
    ],
)  # fmt: skip
def test_domain_errors_by_code(error: Exception, status: int, code: str) -> None:
    handled_status, problem = _handled(error)

    assert (handled_status, problem["code"], problem["status"]) == (status, code, status)
    assert problem["title"] == DOMAIN_PROBLEMS[code].title


def test_no_api_view_catches_a_domain_error_to_answer_it() -> None:
    """Only the handler turns domain errors into responses. (The ledger's views still catch
    EventInvalid and EventConflict, to relocate their pointers into the request, and re-raise.)"""
    for path in ROOT.glob("*/api/views.py"):
        source = path.read_text()
        caught = re.findall(r"except \(?([A-Za-z, ]+)\)? as", source)
        names = {n.strip() for group in caught for n in group.split(",")}
        assert names <= {"EventInvalid", "EventConflict", "ApiProblem"}, (path, names)
        assert "ApiProblem(422" not in source, path
