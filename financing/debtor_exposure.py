"""What a merchant's advances owe against each debtor, and the room left under the bank-wide
debtor limits and a facility's debtor cap: the concentration checks of eligibility and of the
officers' decisions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db.models import Sum

from financing.controls import DebtorLimit
from financing.models import Advance, Assignment, Facility
from merchants.models import Merchant


def debtor_exposure(
    merchant: Merchant, *, excluding: Advance | None = None
) -> dict[tuple[str, str], int]:
    """Advance amounts live against each (currency, debtor key) for the merchant."""
    exposure: dict[tuple[str, str], int] = defaultdict(int)
    rows = (
        Assignment.objects.filter(merchant=merchant, status__in=Assignment.LIVE)
        .exclude(advance=excluding)
        .values_list("advance__currency", "debtor_key")
        .annotate(total=Sum("advance_minor"))
    )
    for currency, key, total in rows:
        exposure[(currency, key)] += total
    return exposure


# What counts against a bank-wide debtor limit: advances an officer approved or the bank paid.
# A request alone reserves nothing bank-wide; approvals lock the limit rows and re-check.
BANK_EXPOSED = (Advance.Status.APPROVED, Advance.Status.DISBURSED, Advance.Status.OVERDUE)


def bank_debtor_room(
    debtors: Iterable[tuple[str, str]], *, excluding: Advance | None = None
) -> dict[tuple[str, str], int]:
    """Room left under the bank-wide limit of each (currency, debtor key) that has one.

    Debtors without a limit are left out. Exposure is across all merchants: advances approved
    or outstanding against the debtor, less ``excluding``'s own.
    """
    wanted = set(debtors)
    limits = {
        (limit.currency, limit.debtor_key): limit.limit_minor
        for limit in DebtorLimit.objects.filter(debtor_key__in={k for _, k in wanted})
        if (limit.currency, limit.debtor_key) in wanted
    }
    if not limits:
        return {}
    rows = (
        Assignment.objects.filter(
            debtor_key__in={k for _, k in limits},
            status__in=Assignment.LIVE,
            advance__status__in=BANK_EXPOSED,
        )
        .exclude(advance=excluding)
        .values_list("advance__currency", "debtor_key")
        .annotate(total=Sum("advance_minor"))
    )
    exposure = {(currency, key): total for currency, key, total in rows}
    return {debtor: limit - exposure.get(debtor, 0) for debtor, limit in limits.items()}


def debtor_cap(facility: Facility) -> int:
    return facility.limit_minor * facility.debtor_cap_bp // 10_000
