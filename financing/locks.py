"""Row locks of financing, taken in one order so use cases never deadlock on each other.

The order: an advance with its facility (one joined ``SELECT … FOR UPDATE``), or a request's
facilities; then the bank-wide limits of the advance's debtors (in id order); then the merchant's
chain (:func:`merchant_chain_lock`); then the books' accounts, through ``journal_post``.
``entries_append`` locks the chain again later, which a transaction that holds it already passes
straight through. Appending evidence takes the chain alone, so it never waits for a decision
while holding something a decision waits for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connection
from django.db.models import QuerySet

from financing.models import Advance, Assignment, DebtorLimit, Facility
from ledger.locks import chains_lock, chains_lock_later
from ledger.sql import models_joined_read_later, one_round_trip, placeholders, rows_later
from merchants.models import Debtor, Merchant


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


def advance_decision_lock(advance_id: int) -> Advance:
    """The advance to decide on, locked with its facility as ``advance_qs_for_update`` locks
    them, its merchant read in the same statement but not locked (no use case locks merchants),
    and its assignments with their debtors read in one more and kept on it for the whole
    decision (``Advance.assignments_by_id``).

    Plain SQL: the ORM's joins and prefetch cost three times what the two statements do; and
    the two go in one round trip.

    :raises Advance.DoesNotExist: no such advance.
    """
    quote = connection.ops.quote_name
    advances, facilities, merchants = (
        quote(model._meta.db_table) for model in (Advance, Facility, Merchant)
    )
    lock = (
        f" FOR UPDATE OF {advances}, {facilities}"
        if connection.features.has_select_for_update_of
        else ""  # SQLite: one writer at a time, as the ORM's select_for_update assumes
    )
    assignments, debtors = (quote(model._meta.db_table) for model in (Assignment, Debtor))
    # One round trip: the assignments are read once the lock is taken, as they would be after.
    with one_round_trip():
        found_read = models_joined_read_later(
            (Advance, Facility, Merchant),
            f"FROM {advances} JOIN {facilities} ON {facilities}.id = {advances}.facility_id"
            f" JOIN {merchants} ON {merchants}.id = {advances}.merchant_id"
            f" WHERE {advances}.id = %s{lock}",
            [advance_id],
        )
        assignments_read = models_joined_read_later(
            (Assignment, Debtor),
            f"FROM {assignments} JOIN {debtors} ON {debtors}.id = {assignments}.debtor_id"
            f" WHERE {assignments}.advance_id = %s ORDER BY {assignments}.id",
            [advance_id],
        )
    found = found_read()
    if not found:
        raise Advance.DoesNotExist(f"No advance {advance_id}.")
    advance: Advance
    ((advance, facility, merchant),) = found
    advance.facility, advance.merchant = facility, merchant
    read = assignments_read()
    for assignment, debtor in read:
        assignment.advance, assignment.debtor = advance, debtor
    advance.decision_assignments = [assignment for assignment, _ in read]
    return advance


def debtor_limit_qs_for_update() -> QuerySet[DebtorLimit]:
    """Bank-wide debtor limits locked FOR UPDATE, in id order, once evaluated."""
    return DebtorLimit.objects.select_for_update().order_by("pk")


def debtor_limits_lock(*, advance: Advance) -> None:
    """Lock the bank-wide limits of ``advance``'s debtors; must run in a transaction.

    Approvals of different merchants against one debtor then re-check its room one after the
    other, each seeing what the other approved; id order keeps two of them from deadlocking.
    The limits read with the locks are kept in ``advance.decision_limits``: rows held locked
    cannot change, so the decision's re-check reads them there, not again.
    """
    advance.decision_limits = _limits_locked_later(advance)()


@contextmanager
def debtor_limits_and_chain_locked(*, advance: Advance) -> Iterator[None]:
    """``debtor_limits_lock``, then ``merchant_chain_lock`` of the advance's merchant, in one
    round trip with the statements the block sends through ``ledger.sql``'s deferred reads:
    those run after the locks, under them, as they would one by one."""
    with one_round_trip():
        limits = _limits_locked_later(advance)
        chain_locked = chains_lock_later([advance.merchant_id])
        yield
    advance.decision_limits = limits()
    chain_locked()


def _limits_locked_later(advance: Advance) -> Callable[[], dict[tuple[str, str], int | None]]:
    keys = sorted({assignment.debtor_key for assignment in advance.assignments_by_id()})
    held: dict[tuple[str, str], int | None] = {(advance.currency, key): None for key in keys}
    if not keys:
        return lambda: held
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    read = rows_later(  # plain SQL: the ORM's query cost twice this
        "SELECT currency, debtor_key, limit_minor FROM financing_debtorlimit"  # noqa: S608
        f" WHERE currency = %s AND debtor_key IN ({placeholders(len(keys))})"
        f" ORDER BY id{lock}",  # (placeholders only)
        [advance.currency, *keys],
    )

    def load() -> dict[tuple[str, str], int | None]:
        held.update(((currency, key), limit) for currency, key, limit in read())
        return held

    return load


def merchant_chain_lock(*, merchant_id: int) -> None:
    """Lock the merchant's chain; must run in a transaction, after the advance's lock.

    Every piece of evidence reaches the chain under this lock, so a decision that re-checks the
    evidence while holding it sees every credit note, return or cancellation committed before,
    and none can land between its check and the money moving.
    """
    chains_lock([merchant_id])
