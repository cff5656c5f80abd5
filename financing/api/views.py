"""The financing API: merchants quote and request advances; both parties read receivables.

Merchant keys act for their one merchant (``calling_merchant``); nothing in a request can name
another. A marketplace key reads only the assigned receivables it sent, so it knows whom to pay.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from config.api.authentication import SignedApiKeyAuthentication
from config.api.parsers import StrictJSONParser
from config.api.permissions import IsAnyApiKey, IsMerchantKey, api_principal, calling_merchant
from config.api.problems import ApiProblem
from config.api.throttling import CredentialRateThrottle
from financing.api import schema, selectors
from financing.eligibility import Verdict, verdicts
from financing.exceptions import AdvanceRefused, RequestKeyReused
from financing.models import Advance
from financing.services.requests import MAX_RECEIVABLES_PER_ADVANCE, AdvanceQuote, advance_quote
from financing.services.requests import advance_request as advance_request_service
from ledger.api.idempotency import idempotent
from ledger.api.views import int_query_param, json_response
from ledger.exceptions import EventInvalid, FieldError
from ledger.money import format_minor_units
from merchants.models import Merchant

MAX_PAGE = 1000
DEFAULT_PAGE = 100


class _SignedApi(APIView):
    authentication_classes = [SignedApiKeyAuthentication]
    throttle_classes = [CredentialRateThrottle]
    parser_classes = [StrictJSONParser]


class _MerchantApi(_SignedApi):
    permission_classes = [IsMerchantKey]


def _refs(data: Any, merchant: Merchant) -> list[str]:
    """The invoice refs a body names, each one checked to be the merchant's own."""
    if not isinstance(data, dict) or set(data) != {"receivables"}:
        raise EventInvalid([FieldError("", 'The body must be {"receivables": ["<ref>", ...]}.')])
    refs = data["receivables"]
    if (
        not isinstance(refs, list)
        or not 1 <= len(refs) <= MAX_RECEIVABLES_PER_ADVANCE
        or not all(isinstance(ref, str) and 1 <= len(ref) <= 128 for ref in refs)
    ):
        raise EventInvalid(
            [
                FieldError(
                    "/receivables",
                    f"Must be a list of 1 to {MAX_RECEIVABLES_PER_ADVANCE} invoice refs.",
                )
            ]
        )
    duplicates = [i for i, ref in enumerate(refs) if ref in refs[:i]]
    if duplicates:
        raise EventInvalid([FieldError(f"/receivables/{i}", "Named twice.") for i in duplicates])
    known = selectors.invoice_refs_of(merchant, refs)
    unknown = [i for i, ref in enumerate(refs) if ref not in known]
    if unknown:
        raise ApiProblem(
            404,
            "invoice_not_found",
            "No such invoice.",
            errors=[FieldError(f"/receivables/{i}", "No invoice of yours.") for i in unknown],
        )
    return refs


def _refused(exc: AdvanceRefused, refs: list[str]) -> ApiProblem:
    errors = [
        FieldError(f"/receivables/{refs.index(ref)}", f"{code}: {message}")
        for ref, reasons in exc.reasons.items()
        for code, message in reasons
    ]
    return ApiProblem(
        422, "advance_refused", exc.message, errors=errors or [FieldError("", exc.message)]
    )


def _money(minor: int, currency: str) -> str:
    return format_minor_units(minor, currency)


def _quote_json(quote: AdvanceQuote) -> dict[str, Any]:
    currency = quote.currency
    return {
        "currency": currency,
        "face": _money(quote.total("face_minor"), currency),
        "advance": _money(quote.total("advance_minor"), currency),
        "fee": _money(quote.total("fee_minor"), currency),
        "net": _money(quote.total("net_minor"), currency),
        "reserve": _money(quote.total("reserve_minor"), currency),
        "due_date": quote.due_date.isoformat(),
        "days": quote.days,
        "apr": str(quote.apr),
        "annual_rate_bp": quote.facility.annual_rate_bp,
        "advance_rate_bp": quote.facility.advance_rate_bp,
        "day_count": quote.facility.day_count,
        "receivables": [
            {
                "ref": item.verdict.ref,
                "face": _money(item.quote.face_minor, currency),
                "advance": _money(item.quote.advance_minor, currency),
                "fee": _money(item.quote.fee_minor, currency),
                "due_date": item.verdict.due_date.isoformat(),
                "days": item.quote.days,
            }
            for item in quote.items
        ],
    }


def advance_json(advance: Advance) -> dict[str, Any]:
    currency = advance.currency
    return {
        "ref": advance.ref,
        "status": advance.status,
        "currency": currency,
        "face": _money(advance.face_minor, currency),
        "advance": _money(advance.advance_minor, currency),
        "fee": _money(advance.fee_minor, currency),
        "net": _money(advance.advance_minor - advance.fee_minor, currency),
        "reserve": _money(advance.reserve_minor, currency),
        "late_fee": _money(advance.late_fee_minor, currency),
        "due_date": advance.due_date.isoformat(),
        "days": advance.days,
        "apr": str(advance.apr),
        "requested_at": advance.requested_at.isoformat(),
        "disbursed_at": advance.disbursed_at.isoformat() if advance.disbursed_at else None,
        "decision_note": advance.decision_note,
        "receivables": [
            {
                "ref": a.invoice_ref,
                "face": _money(a.face_minor, currency),
                "advance": _money(a.advance_minor, currency),
                "status": a.status,
            }
            for a in advance.assignments.order_by("id")
        ],
    }


class AdvanceQuoteApi(_MerchantApi):
    @extend_schema(**schema.QUOTE_POST)
    def post(self, request: Request) -> HttpResponse:
        merchant, scope = calling_merchant(request), api_principal(request).scope
        return idempotent(request, scope, lambda: self._quote(request, merchant))

    def _quote(self, request: Request, merchant: Merchant) -> HttpResponse:
        refs = _refs(request.data, merchant)
        try:
            quote = advance_quote(merchant=merchant, refs=refs, today=timezone.now().date())
        except AdvanceRefused as exc:
            raise _refused(exc, refs) from None
        return json_response(_quote_json(quote))


class AdvanceCreateApi(_MerchantApi):
    @extend_schema(**schema.ADVANCE_POST)
    def post(self, request: Request) -> HttpResponse:
        merchant, scope = calling_merchant(request), api_principal(request).scope
        key = request.headers.get("Idempotency-Key", "")
        return idempotent(request, scope, lambda: self._request(request, merchant, key))

    def _request(self, request: Request, merchant: Merchant, key: str) -> HttpResponse:
        refs = _refs(request.data, merchant)
        try:
            advance = advance_request_service(
                merchant=merchant, refs=refs, request_key=key, now=timezone.now()
            )
        except AdvanceRefused as exc:
            raise _refused(exc, refs) from None
        except RequestKeyReused as exc:
            raise ApiProblem(422, exc.code, exc.message) from None
        return json_response(advance_json(advance), status=201)


class AdvanceDetailApi(_MerchantApi):
    @extend_schema(**schema.ADVANCE_GET)
    def get(self, request: Request, ref: str) -> HttpResponse:
        advance = selectors.advance_of(calling_merchant(request), ref)
        if advance is None:
            raise ApiProblem(404, "advance_not_found", "No such advance.")
        return json_response(advance_json(advance))


def _verdict_json(verdict: Verdict, assignment: str | None) -> dict[str, Any]:
    return {
        "ref": verdict.ref,
        "order_ref": verdict.order_ref,
        "currency": verdict.currency,
        "face": _money(verdict.face_minor, verdict.currency),
        "issue_date": verdict.issue_date.isoformat(),
        "due_date": verdict.due_date.isoformat(),
        "debtor": verdict.debtor_name,
        "eligible": verdict.eligible,
        "reasons": [{"code": r.code.value, "message": r.message} for r in verdict.reasons],
        "assignment": assignment,
    }


class ReceivableListApi(_SignedApi):
    """A merchant key sees its receivables with verdicts; a marketplace key sees what to pay."""

    permission_classes = [IsAnyApiKey]

    @extend_schema(**schema.RECEIVABLES_GET)
    def get(self, request: Request) -> HttpResponse:
        principal = api_principal(request)
        limit = int_query_param(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
        after = request.query_params.get("after", "")
        if principal.merchant is not None:
            return self._merchant_view(principal.merchant, after, limit, timezone.now().date())
        assert principal.marketplace is not None
        rows = selectors.assigned_receivables_for(principal.marketplace, after=after, limit=limit)
        return json_response(
            {"receivables": rows, "next_after": rows[-1]["cursor"] if len(rows) == limit else None}
        )

    def _merchant_view(
        self, merchant: Merchant, after: str, limit: int, today: date
    ) -> HttpResponse:
        refs = selectors.invoice_refs_page(merchant, after=after, limit=limit)
        judged = sorted(verdicts(merchant, today, refs), key=lambda v: v.ref)
        statuses = selectors.live_assignment_statuses(merchant, refs)
        return json_response(
            {
                "receivables": [_verdict_json(v, statuses.get(v.ref)) for v in judged],
                "next_after": refs[-1] if len(refs) == limit else None,
            }
        )
