"""Row locks of financing, taken in one order so use cases never deadlock on each other.

The order: an advance with its facility (one joined ``SELECT … FOR UPDATE``), or a request's
facilities; then the bank-wide limits of the advance's debtors (in id order); then the merchant's
chain (:func:`merchant_chain_lock`); then the books' accounts, through ``journal_post``.
``entries_append`` locks the chain again later, which a transaction that holds it already passes
straight through. Appending evidence takes the chain alone, so it never waits for a decision
while holding something a decision waits for.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Prefetch, QuerySet

from financing.models import Advance, Assignment, DebtorLimit, Facility
from ledger.locks import chains_lock
from ledger.sql import placeholders
from merchants.models import Merchant


def facility_qs_for_update() -> QuerySet[Facility]:
    """Facilities locked FOR UPDATE, in id order, once the caller filters and evaluates them."""
    return Facility.objects.select_for_update().order_by("pk")


def facility_lock(*, merchant: Merchant, currency: str | None) -> None:
    """Lock the merchant's facilities in ``currency``; must run in a transaction.

    Requests against one credit line then see each other's holds and commitments.
    """
    list(facility_qs_for_update().filter(merchant=merchant, currency=currency))


def advance_qs_for_update() -> QuerySet[Advance]:
    """Advances locked FOR UPDATE, in id order, once the caller filters and evaluates them.

    Rows joined with ``select_related`` are locked too: a decision holds the advance and its
    facility at once, so a facility change waits for it (and the other way round).
    """
    return Advance.objects.select_for_update().order_by("pk")


def advance_decision_qs_for_update() -> QuerySet[Advance]:
    """Advances to decide on: each locked with its facility as ``advance_qs_for_update``, its
    merchant read in the same query but not locked (no use case locks merchants), and its
    assignments with their debtors read in one more query, so that a decision asks for them
    once (``Advance.assignments_by_id``).
    """
    return (
        advance_qs_for_update()
        .select_related("facility", "merchant")
        .select_for_update(of=("self", "facility"))
        .prefetch_related(
            Prefetch("assignments", queryset=Assignment.objects.select_related("debtor"))
        )
    )


def debtor_limit_qs_for_update() -> QuerySet[DebtorLimit]:
    """Bank-wide debtor limits locked FOR UPDATE, in id order, once evaluated."""
    return DebtorLimit.objects.select_for_update().order_by("pk")


def debtor_limits_lock(*, advance: Advance) -> None:
    """Lock the bank-wide limits of ``advance``'s debtors; must run in a transaction.

    Approvals of different merchants against one debtor then re-check its room one after the
    other, each seeing what the other approved; id order keeps two of them from deadlocking.
    """
    keys = sorted({assignment.debtor_key for assignment in advance.assignments.all()})
    if not keys:
        return
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:  # plain SQL: building the ORM's query cost twice this
        cursor.execute(
            "SELECT id FROM financing_debtorlimit"  # noqa: S608  (placeholders only)
            f" WHERE currency = %s AND debtor_key IN ({placeholders(len(keys))})"
            f" ORDER BY id{lock}",
            [advance.currency, *keys],
        )
        cursor.fetchall()


def merchant_chain_lock(*, merchant_id: int) -> None:
    """Lock the merchant's chain; must run in a transaction, after the advance's lock.

    Every piece of evidence reaches the chain under this lock, so a decision that re-checks the
    evidence while holding it sees every credit note, return or cancellation committed before,
    and none can land between its check and the money moving.
    """
    chains_lock([merchant_id])
