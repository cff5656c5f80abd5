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
from config.api.idempotency import idempotent
from config.api.inputs import (
    MAX_CURSOR,
    body_parse,
    int_query_param,
    page_limit,
    ref_query_param,
    ref_refusal,
)
from config.api.parsers import StrictJSONParser
from config.api.permissions import IsAnyApiKey, IsMerchantKey, api_principal, calling_merchant
from config.api.problems import ApiProblem
from config.api.responses import json_response
from config.api.throttling import CredentialRateThrottle
from financing.api import schema, selectors
from financing.business_day import business_day
from financing.eligibility import Verdict, verdicts
from financing.models import Advance
from financing.services.quotes import advance_accept, advance_withdraw
from financing.services.requests import AdvanceQuote, advance_quote
from financing.services.requests import advance_request as advance_request_service
from ledger.exceptions import FieldError
from ledger.money import format_minor_units
from merchants.models import Merchant


class _SignedApi(APIView):
    authentication_classes = [SignedApiKeyAuthentication]
    throttle_classes = [CredentialRateThrottle]
    parser_classes = [StrictJSONParser]


class _MerchantApi(_SignedApi):
    permission_classes = [IsMerchantKey]


class _ReceivablesBodyApi(_MerchantApi):
    """Takes ``{"receivables": [...]}``; an ``AdvanceRefused`` names invoices by ref, and the
    exception handler points each at its place in that list."""

    reasons_at = "/receivables"
    body: type[schema.ReceivableRefsSerializer] = schema.ReceivableRefsSerializer

    def refs(self, request: Request, merchant: Merchant) -> list[str]:
        """The invoice refs the body names, each checked to be the merchant's own.

        :raises ValidationError: the body is not ``self.body`` (422).
        :raises ApiProblem: 404 invoice_not_found, pointing at each ref that is not theirs.
        """
        refs: list[str] = body_parse(self.body, request.data)["receivables"]
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
        "mean_days": str(quote.mean_days),
        "apr": str(quote.apr),
        "priced_on": quote.priced_on.isoformat(),
        "expires_at": quote.expires_at.isoformat(),
        "terms_hash": quote.terms_hash,
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
        "mean_days": str(advance.mean_days),
        "apr": str(advance.apr),
        "quote": {
            "terms_hash": advance.price_hash,
            "priced_on": advance.priced_on.isoformat(),
            "expires_at": advance.quote_expires_at.isoformat(),
            "accepted": advance.accepted_hash == advance.price_hash,
        },
        "non_accrual_on": advance.non_accrual_on.isoformat() if advance.non_accrual_on else None,
        "requested_at": advance.requested_at.isoformat(),
        "disbursed_at": advance.disbursed_at.isoformat() if advance.disbursed_at else None,
        "merchant_note": advance.merchant_note,
        "receivables": [
            {
                "ref": a.invoice_ref,
                "face": _money(a.face_minor, currency),
                "advance": _money(a.advance_minor, currency),
                "status": a.status,
                "due_date": a.due_date.isoformat(),
                "late_fee": _money(a.late_fee_minor, currency),
            }
            for a in advance.assignments.order_by("id")
        ],
    }


class AdvanceQuoteApi(_ReceivablesBodyApi):
    @extend_schema(**schema.QUOTE_POST)
    def post(self, request: Request) -> HttpResponse:
        merchant, scope = calling_merchant(request), api_principal(request).scope
        return idempotent(request, scope, lambda: self._quote(request, merchant))

    def _quote(self, request: Request, merchant: Merchant) -> HttpResponse:
        refs = self.refs(request, merchant)
        quote = advance_quote(merchant=merchant, refs=refs, today=business_day(timezone.now()))
        return json_response(_quote_json(quote))


class AdvanceCreateApi(_ReceivablesBodyApi):
    @extend_schema(**schema.ADVANCE_POST)
    def post(self, request: Request) -> HttpResponse:
        merchant, scope = calling_merchant(request), api_principal(request).scope
        key = request.headers.get("Idempotency-Key", "")
        return idempotent(request, scope, lambda: self._request(request, merchant, key))

    body = schema.AdvanceRequestSerializer

    def _request(self, request: Request, merchant: Merchant, key: str) -> HttpResponse:
        refs = self.refs(request, merchant)
        advance = advance_request_service(
            merchant=merchant,
            refs=refs,
            request_key=key,
            now=timezone.now(),
            terms_hash=request.data.get("terms_hash", ""),  # validated by self.refs
        )
        return json_response(advance_json(advance), status=201)


def _advance_named(merchant: Merchant, ref: str) -> Advance:
    """The caller's advance ``ref``.

    :raises ApiProblem: 404 advance_not_found, for a ref that is not the merchant's, or could
        not be a ref at all (a path segment that could not be one names nothing).
    """
    advance = selectors.advance_of(merchant, ref) if ref_refusal(ref) is None else None
    if advance is None:
        raise ApiProblem(404, "advance_not_found", "No such advance.")
    return advance


class AdvanceDetailApi(_MerchantApi):
    @extend_schema(**schema.ADVANCE_GET)
    def get(self, request: Request, ref: str) -> HttpResponse:
        return json_response(advance_json(_advance_named(calling_merchant(request), ref)))


class AdvanceAcceptApi(_MerchantApi):
    """The merchant accepts the new price of an advance in ``requote``."""

    @extend_schema(**schema.ADVANCE_ACCEPT_POST)
    def post(self, request: Request, ref: str) -> HttpResponse:
        merchant, scope = calling_merchant(request), api_principal(request).scope
        return idempotent(request, scope, lambda: self._accept(request, merchant, ref))

    def _accept(self, request: Request, merchant: Merchant, ref: str) -> HttpResponse:
        advance = _advance_named(merchant, ref)
        terms = body_parse(schema.AcceptSerializer, request.data)["terms_hash"]
        accepted = advance_accept(advance=advance, terms_hash=terms, now=timezone.now())
        return json_response(advance_json(accepted))


class AdvanceWithdrawApi(_MerchantApi):
    """The merchant withdraws a request no officer approved yet."""

    @extend_schema(**schema.ADVANCE_WITHDRAW_POST)
    def post(self, request: Request, ref: str) -> HttpResponse:
        merchant, scope = calling_merchant(request), api_principal(request).scope
        return idempotent(request, scope, lambda: self._withdraw(request, merchant, ref))

    def _withdraw(self, request: Request, merchant: Merchant, ref: str) -> HttpResponse:
        advance = _advance_named(merchant, ref)
        reason = body_parse(schema.WithdrawSerializer, request.data).get("reason", "")
        withdrawn = advance_withdraw(advance=advance, now=timezone.now(), reason=reason)
        return json_response(advance_json(withdrawn))


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
        limit = page_limit(request)
        if principal.merchant is not None:
            after = ref_query_param(request, "after")  # the last invoice ref of the last page
            return self._merchant_view(principal.merchant, after, limit, timezone.now().date())
        assert principal.marketplace is not None
        after_id = int_query_param(request, "after", 0, 0, MAX_CURSOR)  # the last row's cursor
        rows = selectors.assigned_receivables_for(
            principal.marketplace, after=after_id, limit=limit
        )
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
