"""Statements: the months, one month's statement on screen, as CSV and as PDF; the chain export
and the recipe to check it offline."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from ledger import verify
from ledger.exceptions import ProofUnavailable
from ledger.log.notes import SigningKeyInvalid
from merchants.models import Merchant
from portal.access import merchant_required, portal_context
from portal.statements.chain import bank_key, chain_bundle
from portal.statements.csv_export import statements_csv
from portal.statements.pdf import statements_pdf
from portal.statements.selectors import Statement, statement_months, statements_read
from portal.statements.words import statement_sections

CHAIN_FILE = "chain.json"
_MONTH = re.compile(r"(?P<year>20[0-9]{2})-(?P<month>0[1-9]|1[0-2])")


def _month_statements(merchant: Merchant, month: str) -> tuple[date, list[Statement]]:
    """The statements of ``month`` ("YYYY-MM"); 404 for a malformed month or one in which
    nothing of this merchant's moved (another merchant's months included)."""
    match = _MONTH.fullmatch(month)
    if match is None:
        raise Http404("No such month.")
    first = date(int(match["year"]), int(match["month"]), 1)
    statements = statements_read(merchant=merchant, month=first)
    if not statements:
        raise Http404("No statement for this month.")
    return first, statements


def _filename(merchant: Merchant, name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{merchant.public_id}-{name}")


def _attachment(response: HttpResponse, merchant: Merchant, name: str) -> HttpResponse:
    response["Content-Disposition"] = f'attachment; filename="{_filename(merchant, name)}"'
    return response


@merchant_required
def statement_list(request: HttpRequest) -> HttpResponse:
    portal = portal_context(request)
    months = statement_months(merchant=portal.merchant)
    return render(
        request,
        "portal/statements/list.html",
        {"portal": portal, "nav": "statements", "months": months},
    )


@merchant_required
def statement_show(request: HttpRequest, month: str) -> HttpResponse:
    portal = portal_context(request)
    first, statements = _month_statements(portal.merchant, month)
    return render(
        request,
        "portal/statements/detail.html",
        {
            "portal": portal,
            "nav": "statements",
            "month": first,
            "month_code": month,
            "statements": [(s, statement_sections(s)) for s in statements],
        },
    )


@merchant_required
def statement_csv_download(request: HttpRequest, month: str) -> HttpResponse:
    portal = portal_context(request)
    _, statements = _month_statements(portal.merchant, month)
    text = statements_csv(merchant=portal.merchant, statements=statements)
    # A byte-order mark, so that spreadsheets read the Chinese words as UTF-8.
    response = HttpResponse("\ufeff" + text, content_type="text/csv; charset=utf-8")
    return _attachment(response, portal.merchant, f"statement-{month}.csv")


@merchant_required
def statement_pdf_download(request: HttpRequest, month: str) -> HttpResponse:
    portal = portal_context(request)
    first, statements = _month_statements(portal.merchant, month)
    pdf = statements_pdf(
        merchant=portal.merchant, month=first, statements=statements, now=timezone.now()
    )
    response = HttpResponse(pdf, content_type="application/pdf")
    return _attachment(response, portal.merchant, f"statement-{month}.pdf")


@merchant_required
def chain_export(request: HttpRequest) -> HttpResponse:
    portal = portal_context(request)
    try:
        key = bank_key()
    except SigningKeyInvalid:
        key = ""
    command = f"python -m ledger.verify {_filename(portal.merchant, CHAIN_FILE)}"
    return render(
        request,
        "portal/statements/export.html",
        {
            "portal": portal,
            "nav": "statements",
            "bank_key": key,
            "install_command": "python -m pip install cryptography",
            "verify_command": f"{command} --key '{key}'" if key else command,
        },
    )


@merchant_required
def chain_export_download(request: HttpRequest) -> HttpResponse:
    portal = portal_context(request)
    try:
        bundle = chain_bundle(merchant=portal.merchant)
    except (ProofUnavailable, SigningKeyInvalid):
        # Nothing signed yet (a fresh log): a matter of seconds, not the merchant's fault.
        response = render(
            request,
            "portal/statements/export_unavailable.html",
            {"portal": portal, "nav": "statements"},
            status=503,
        )
        response["Retry-After"] = "60"
        return response
    text = json.dumps(bundle, indent=1, ensure_ascii=False) + "\n"
    response = HttpResponse(text, content_type="application/json; charset=utf-8")
    return _attachment(response, portal.merchant, CHAIN_FILE)


@merchant_required
def verifier_download(request: HttpRequest) -> HttpResponse:
    """The offline verifier itself: one file that needs only ``cryptography``."""
    response = HttpResponse(
        Path(verify.__file__).read_bytes(), content_type="text/x-python; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="verify.py"'
    return response
