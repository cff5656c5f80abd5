"""The evidence the eligibility rules read, for one merchant's receivables, in a few reads.

Every verdict runs these (each quote, request, approval, re-check and portal page), so they
go as plain SQL through Django's cursor, on SQLite too: building and compiling the ORM's
query for each cost about twice what running it does. Model rows come through
``ledger.sql.models_read_later``, which converts values as the ORM would. The reads that need
only the invoices go to PostgreSQL together, in one round trip (``ledger.sql.one_round_trip``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date

from financing.assigned_on_chain import assignment_refs_later
from financing.debtor_exposure import bank_debtor_room, debtor_exposure_later
from financing.models import (
    Advance,
    Assignment,
    DuplicateClearance,
    Facility,
    Receivable,
    assignment_entry_ref,
)
from financing.order_evidence import OrderEvidence, orders_evidence_later
from ledger.models import Invoice
from ledger.sql import literals, models_read_later, one_round_trip, placeholders, rows_later
from merchants.models import Merchant


@dataclass
class Evidence:
    """Everything the rules read for one merchant's receivables, loaded in a few queries."""

    merchant: Merchant
    today: date
    invoices: dict[str, Invoice]
    receivables: dict[str, Receivable]
    orders: dict[str, OrderEvidence]
    held: set[str]
    fingerprints_held: set[str]
    earlier_twins: dict[str, Receivable]
    facilities: dict[str, Facility]
    blacklisted: bool
    debtor_exposure: dict[tuple[str, str], int]
    bank_room: dict[tuple[str, str], int]
    cleared: set[str]
    own_commitment: int
    on_chain: dict[str, str]


def evidence_load(
    merchant: Merchant, today: date, judged: list[Invoice], holder: Advance | None
) -> Evidence:
    invoices = {invoice.ref: invoice for invoice in judged}
    order_refs = {invoice.order_ref for invoice in invoices.values() if invoice.order_ref}
    # None of these reads needs another's rows: they go to PostgreSQL in one round trip.
    with one_round_trip():
        twins_read = _receivables_with_twins_later(merchant, invoices)
        held_read = _held_later(merchant, invoices, holder)
        orders_read = orders_evidence_later(merchant=merchant, order_refs=order_refs)
        blacklisted_read = _blacklisted_later(merchant)
        exposure_read = debtor_exposure_later(merchant, excluding=holder)
        on_chain_read = _assigned_on_chain_later(merchant, invoices, holder)
        facilities_read = _active_facilities_later(merchant, holder)
    receivables, twins = twins_read()
    fingerprints = {r.fingerprint for r in receivables.values()}
    held, fingerprints_held = held_read(fingerprints)
    earlier_twins = _refs_with_earlier_twin(receivables.values(), twins)
    return Evidence(
        merchant=merchant,
        today=today,
        invoices=invoices,
        receivables=receivables,
        orders=orders_read(),
        held=held,
        fingerprints_held=fingerprints_held,
        earlier_twins=earlier_twins,
        facilities=facilities_read(),
        blacklisted=blacklisted_read(),
        debtor_exposure=exposure_read(),
        bank_room=bank_debtor_room(
            {
                (i.currency, receivables[i.ref].debtor_key)
                for i in invoices.values()
                if i.ref in receivables
            },
            excluding=holder,
        ),
        cleared=_cleared(merchant, receivables, earlier_twins),
        own_commitment=holder.advance_minor if holder is not None else 0,
        on_chain=on_chain_read(),
    )


def _active_facilities_later(
    merchant: Merchant, holder: Advance | None
) -> Callable[[], dict[str, Facility]]:
    """The merchant's active facilities by currency.

    A holder's own facility, when it is the active one, stands for them: the holder's
    receivables are all in its currency, a merchant has one active facility per currency (a
    unique index), and a decision read it under its lock in this transaction
    (``financing.locks``).
    """
    if holder is not None:
        own = holder.facility
        if own.active and own.merchant_id == merchant.pk:
            return lambda: {own.currency: own}
    read = models_read_later(Facility, "merchant_id = %s AND active", [merchant.pk])
    return lambda: {facility.currency: facility for facility in read()}


def _blacklisted_later(merchant: Merchant) -> Callable[[], bool]:
    read = rows_later(
        "SELECT 1 FROM financing_blacklisting WHERE merchant_id = %s AND lifted_at IS NULL LIMIT 1",
        [merchant.pk],
    )
    return lambda: bool(read())


# The fingerprints of the merchant's receivables of some invoice refs.
_FINGERPRINTS = (
    "SELECT fingerprint FROM financing_receivable WHERE merchant_id = %s AND ref IN ({refs})"
)


def _receivables_with_twins_later(
    merchant: Merchant, invoices: dict[str, Invoice]
) -> Callable[[], tuple[dict[str, Receivable], list[Receivable]]]:
    """The merchant's receivables of ``invoices``, by ref, and every receivable sharing a
    fingerprint with one of them (themselves included), in one query."""
    if not invoices:
        return lambda: ({}, [])
    twins_read = models_read_later(
        Receivable,
        f"fingerprint IN ({_FINGERPRINTS.format(refs=placeholders(len(invoices)))})",
        [merchant.pk, *invoices],
    )

    def load() -> tuple[dict[str, Receivable], list[Receivable]]:
        twins = twins_read()
        mine = {r.ref: r for r in twins if r.merchant_id == merchant.pk and r.ref in invoices}
        return mine, twins

    return load


def _held_later(
    merchant: Merchant, invoices: dict[str, Invoice], holder: Advance | None
) -> Callable[[set[str]], tuple[set[str], set[str]]]:
    """Invoice refs of the merchant, and fingerprints of their receivables, that a live
    assignment other than ``holder``'s holds, in one query; loaded given those fingerprints.

    The fingerprints are found by the query itself, not passed in, so that it need not wait
    for the receivables' read: both go in one round trip.
    """
    if not invoices:
        return lambda fingerprints: (set(), set())
    listed = placeholders(len(invoices))
    live = literals([status.value for status in Assignment.LIVE])  # as the partial indexes say
    others, excluded = ("", []) if holder is None else (" AND advance_id <> %s", [holder.pk])
    held_by = f"FROM financing_assignment WHERE status IN ({live}){others}"
    # Two arms, not one OR: each finds its rows through its own index.
    read = rows_later(
        f"SELECT merchant_id, invoice_ref, fingerprint {held_by}"
        f" AND merchant_id = %s AND invoice_ref IN ({listed})"
        f" UNION ALL SELECT merchant_id, invoice_ref, fingerprint {held_by}"
        f" AND fingerprint IN ({_FINGERPRINTS.format(refs=listed)})",
        [*excluded, merchant.pk, *invoices] * 2,
    )

    def load(fingerprints: set[str]) -> tuple[set[str], set[str]]:
        held: set[str] = set()
        fingerprints_held: set[str] = set()
        for merchant_id, invoice_ref, fingerprint in read():
            if merchant_id == merchant.pk and invoice_ref in invoices:
                held.add(invoice_ref)
            if fingerprint in fingerprints:
                fingerprints_held.add(fingerprint)
        return held, fingerprints_held

    return load


def _cleared(
    merchant: Merchant, receivables: dict[str, Receivable], earlier_twins: dict[str, Receivable]
) -> set[str]:
    """Refs an officer cleared as no duplicate of their earlier twin (only those can be one)."""
    if not earlier_twins:
        return set()
    clearances = DuplicateClearance.objects.filter(
        merchant=merchant, invoice_ref__in=list(earlier_twins)
    ).values_list("invoice_ref", "entry_id")
    return {ref for ref, entry_id in clearances if receivables[ref].entry_id == entry_id}


def _assigned_on_chain_later(
    merchant: Merchant, invoices: dict[str, Invoice], holder: Advance | None
) -> Callable[[], dict[str, str]]:
    """Invoice ref -> the advance the merchant's chain records it assigned to (not ``holder``).

    Defence in depth: the assignment rows are what a database superuser can flip to released;
    the chain is append-only and covered by signed checkpoints others hold. A receivable the
    chain gave to the bank is never fundable again, whatever the rows say (``verify_books``
    names the row that disagrees).
    """
    if not invoices:
        return dict
    # An invoice ref too long for a chain ref stands there as its SHA-256 (assignment_entry_ref).
    hashed = {f"sha256-{hashlib.sha256(r.encode()).hexdigest()}": r for r in invoices}
    refs_read = assignment_refs_later(merchant_id=merchant.pk, invoice_parts=[*invoices, *hashed])

    def load() -> dict[str, str]:
        found: dict[str, str] = {}
        for entry_ref in refs_read():
            head, _, advance_ref = entry_ref.rpartition("@")
            invoice_ref = head if head in invoices else hashed.get(head)
            if invoice_ref is None or (holder is not None and advance_ref == holder.ref):
                continue
            if assignment_entry_ref(invoice_ref=invoice_ref, advance_ref=advance_ref) == entry_ref:
                found.setdefault(invoice_ref, advance_ref)
        return found

    return load


def _refs_with_earlier_twin(
    receivables: Iterable[Receivable], twins: Iterable[Receivable]
) -> dict[str, Receivable]:
    """Refs whose invoice reached Chainfin before, each with that first arrival.

    An invoice is its supplier and its normalised number (financing.fingerprint): the same
    number again, under another spelling, from another marketplace or merchant row, or with
    another amount, date or currency, is the same invoice. The first arrival is the
    receivable; every later one is a duplicate for an officer to look at, never a second
    fundable receivable. Arrival order is the order entries were written. ``twins`` are every
    receivable sharing a fingerprint with one of ``receivables`` (``_receivables_with_twins``).
    """
    first: dict[str, Receivable] = {}
    for twin in twins:
        known = first.get(twin.fingerprint)
        if known is None or twin.entry_id < known.entry_id:
            first[twin.fingerprint] = twin
    return {r.ref: first[r.fingerprint] for r in receivables if first[r.fingerprint] != r}
