"""Exposure for the bank's officers: what each merchant and each debtor owes on advances, and
the totals per currency. Reads across merchants (the officers' tenant is the bank); nothing
here writes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum

from financing.models import Advance, Assignment, Facility
from merchants.models import Merchant


def _percent(part: int, whole: int) -> Decimal | None:
    return (Decimal(part) * 100 / whole).quantize(Decimal("0.1")) if whole else None


@dataclass(frozen=True)
class MerchantExposure:
    merchant_id: int
    merchant_name: str
    public_id: str
    currency: str
    outstanding_minor: int
    outstanding_count: int
    late_fees_minor: int
    committed_minor: int
    limit_minor: int

    @property
    def utilisation(self) -> Decimal | None:
        """Committed (requested, approved and outstanding) as a share of the active limit."""
        return _percent(self.committed_minor, self.limit_minor)


@dataclass(frozen=True)
class DebtorExposure:
    debtor_id: int
    name: str
    kind: str
    currency: str
    advance_minor: int
    face_minor: int
    receivables: int
    merchants: int


@dataclass(frozen=True)
class CurrencyTotal:
    currency: str
    outstanding_minor: int = 0
    committed_minor: int = 0
    limit_minor: int = 0
    debtor_advance_minor: int = 0

    @property
    def utilisation(self) -> Decimal | None:
        return _percent(self.committed_minor, self.limit_minor)


@dataclass(frozen=True)
class Exposure:
    merchants: tuple[MerchantExposure, ...]
    debtors: tuple[DebtorExposure, ...]
    totals: tuple[CurrencyTotal, ...] = field(default=())


def exposure_by_merchant(*, merchant_id: int | None = None) -> list[MerchantExposure]:
    """Per merchant and currency: outstanding advances, commitments, limit and utilisation.

    Outstanding means disbursed or overdue; committed is the facilities' running commitment
    (requested, approved and outstanding); the limit is the active facility's. With
    ``merchant_id``, that merchant's rows only.
    """
    scope = Q() if merchant_id is None else Q(merchant_id=merchant_id)
    rows: dict[tuple[int, str], dict[str, Any]] = defaultdict(
        lambda: {"outstanding": 0, "count": 0, "late": 0, "committed": 0, "limit": 0}
    )
    for row in (
        Advance.objects.filter(scope, status__in=Advance.OUTSTANDING)
        .values("merchant_id", "currency")
        .annotate(total=Sum("advance_minor"), count=Count("id"), late=Sum("late_fee_minor"))
    ):
        key = (row["merchant_id"], row["currency"])
        rows[key].update(outstanding=row["total"], count=row["count"], late=row["late"])
    for row in (
        Facility.objects.filter(scope)
        .values("merchant_id", "currency")
        .annotate(committed=Sum("committed_minor"), limit=Sum("limit_minor", filter=Q(active=True)))
    ):
        if not row["committed"] and row["limit"] is None:
            continue  # a closed, empty line: nothing to show
        key = (row["merchant_id"], row["currency"])
        rows[key].update(committed=row["committed"] or 0, limit=row["limit"] or 0)
    names = _merchant_names(merchant_id for merchant_id, _ in rows)
    exposures = [
        MerchantExposure(
            merchant_id=merchant_id,
            merchant_name=names[merchant_id][0],
            public_id=names[merchant_id][1],
            currency=currency,
            outstanding_minor=row["outstanding"],
            outstanding_count=row["count"],
            late_fees_minor=row["late"],
            committed_minor=row["committed"],
            limit_minor=row["limit"],
        )
        for (merchant_id, currency), row in rows.items()
    ]
    return sorted(exposures, key=lambda e: (e.currency, -e.outstanding_minor, e.merchant_name))


def _merchant_names(ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    return {
        pk: (name, public_id)
        for pk, name, public_id in Merchant.objects.filter(pk__in=set(ids)).values_list(
            "pk", "legal_name", "public_id"
        )
    }


def exposure_by_debtor() -> list[DebtorExposure]:
    """Per debtor and currency: advance amounts of live assignments (held or assigned)."""
    rows = (
        Assignment.objects.filter(status__in=Assignment.LIVE)
        .values("debtor_id", "debtor__name", "debtor__kind", "advance__currency")
        .annotate(
            advance=Sum("advance_minor"),
            face=Sum("face_minor"),
            receivables=Count("id"),
            merchants=Count("merchant_id", distinct=True),
        )
    )
    exposures = [
        DebtorExposure(
            debtor_id=row["debtor_id"],
            name=row["debtor__name"],
            kind=row["debtor__kind"],
            currency=row["advance__currency"],
            advance_minor=row["advance"],
            face_minor=row["face"],
            receivables=row["receivables"],
            merchants=row["merchants"],
        )
        for row in rows
    ]
    return sorted(exposures, key=lambda e: (e.currency, -e.advance_minor, e.name))


def exposure_read() -> Exposure:
    """Exposure by merchant and by debtor, with totals per currency."""
    merchants = exposure_by_merchant()
    debtors = exposure_by_debtor()
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for m in merchants:
        totals[m.currency]["outstanding_minor"] += m.outstanding_minor
        totals[m.currency]["committed_minor"] += m.committed_minor
        totals[m.currency]["limit_minor"] += m.limit_minor
    for d in debtors:
        totals[d.currency]["debtor_advance_minor"] += d.advance_minor
    return Exposure(
        merchants=tuple(merchants),
        debtors=tuple(debtors),
        totals=tuple(
            CurrencyTotal(currency=currency, **sums) for currency, sums in sorted(totals.items())
        ),
    )
