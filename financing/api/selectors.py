"""Reads behind the financing API, each scoped to the party that asks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db.models import Exists, OuterRef

from financing.models import Advance, Assignment, Receivable
from ledger.models import Invoice
from ledger.money import format_minor_units
from merchants.models import Marketplace, Merchant


def invoice_refs_of(merchant: Merchant, refs: Sequence[str]) -> set[str]:
    return set(
        Invoice.objects.filter(merchant=merchant, ref__in=list(refs)).values_list("ref", flat=True)
    )


def invoice_refs_page(merchant: Merchant, *, after: str, limit: int) -> list[str]:
    return list(
        Invoice.objects.filter(merchant=merchant, ref__gt=after)
        .order_by("ref")
        .values_list("ref", flat=True)[:limit]
    )


def live_assignment_statuses(merchant: Merchant, refs: Sequence[str]) -> dict[str, str]:
    return dict(
        Assignment.objects.filter(
            merchant=merchant, invoice_ref__in=list(refs), status__in=Assignment.LIVE
        ).values_list("invoice_ref", "status")
    )


def advance_of(merchant: Merchant, ref: str) -> Advance | None:
    return Advance.objects.filter(merchant=merchant, ref=ref).first()


def assigned_receivables_for(
    marketplace: Marketplace, *, after: int, limit: int
) -> list[dict[str, Any]]:
    """Receivables this marketplace sent that the bank now owns: whom to pay, how much, where.

    Only merchants linked to the marketplace, only invoices it sent itself; ``after`` is the
    ``cursor`` of the last row of the previous page.
    """
    seller_ids = dict(marketplace.links.values_list("merchant_id", "seller_id"))
    sent_by_it = Receivable.objects.filter(
        source=marketplace.code, merchant_id=OuterRef("merchant_id"), ref=OuterRef("invoice_ref")
    )
    assignments = (
        Assignment.objects.filter(status=Assignment.Status.ASSIGNED, merchant_id__in=seller_ids)
        .filter(Exists(sent_by_it))
        .select_related("advance")
        .order_by("id")
    )
    if after:
        assignments = assignments.filter(id__gt=after)
    return [_assigned_json(a, seller_ids[a.merchant_id]) for a in assignments[:limit]]


def _assigned_json(assignment: Assignment, seller_id: str) -> dict[str, Any]:
    currency = assignment.advance.currency
    return {
        "cursor": str(assignment.pk),
        "merchant": seller_id,
        "ref": assignment.invoice_ref,
        "currency": currency,
        "face": format_minor_units(assignment.face_minor, currency),
        "due_date": assignment.due_date.isoformat(),
        "advance": assignment.advance.ref,
        "assignee": settings.CHAINFIN_BANK_NAME,
        "pay_to": {
            "iban": settings.CHAINFIN_COLLECTION_IBAN,
            "bic": settings.CHAINFIN_COLLECTION_BIC,
            "reference": assignment.advance.ref,
        },
    }
