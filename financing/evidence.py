"""The evidence the eligibility rules read, for one merchant's receivables, in a few reads.

Every verdict runs these (each quote, request, approval, re-check and portal page), so they
go as plain SQL through Django's cursor, on SQLite too: building and compiling the ORM's
query for each cost about twice what running it does. Model rows come through
``ledger.sql.models_read``, which converts values as the ORM would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from django.db import connection

from financing.assigned_on_chain import assignment_refs
from financing.debtor_exposure import bank_debtor_room, debtor_exposure
from financing.models import (
    Advance,
    Assignment,
    DuplicateClearance,
    Facility,
    Receivable,
    assignment_entry_ref,
)
from financing.order_evidence import OrderEvidence, orders_evidence
from ledger.models import Invoice
from ledger.sql import models_read, placeholders
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
    receivables, twins = _receivables_with_twins(merchant, invoices)
    fingerprints = {r.fingerprint for r in receivables.values()}
    held, fingerprints_held = _held(merchant, invoices, fingerprints, holder)
    earlier_twins = _refs_with_earlier_twin(receivables.values(), twins)
    return Evidence(
        merchant=merchant,
        today=today,
        invoices=invoices,
        receivables=receivables,
        orders=orders_evidence(merchant=merchant, order_refs=order_refs),
        held=held,
        fingerprints_held=fingerprints_held,
        earlier_twins=earlier_twins,
        facilities=_active_facilities(merchant, holder),
        blacklisted=_blacklisted(merchant),
        debtor_exposure=debtor_exposure(merchant, excluding=holder),
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
        on_chain=_assigned_on_chain(merchant, invoices, holder),
    )


def _active_facilities(merchant: Merchant, holder: Advance | None) -> dict[str, Facility]:
    """The merchant's active facilities by currency.

    A holder's own facility, when it is the active one, stands for them: the holder's
    receivables are all in its currency, a merchant has one active facility per currency (a
    unique index), and a decision read it under its lock in this transaction
    (``financing.locks``).
    """
    if holder is not None:
        own = holder.facility
        if own.active and own.merchant_id == merchant.pk:
            return {own.currency: own}
    active = models_read(Facility, "merchant_id = %s AND active", [merchant.pk])
    return {facility.currency: facility for facility in active}


def _blacklisted(merchant: Merchant) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM financing_blacklisting WHERE merchant_id = %s AND lifted_at IS NULL"
            " LIMIT 1",
            [merchant.pk],
        )
        return cursor.fetchone() is not None


def _receivables_with_twins(
    merchant: Merchant, invoices: dict[str, Invoice]
) -> tuple[dict[str, Receivable], list[Receivable]]:
    """The merchant's receivables of ``invoices``, by ref, and every receivable sharing a
    fingerprint with one of them (themselves included), in one query."""
    if not invoices:
        return {}, []
    twins = models_read(
        Receivable,
        "fingerprint IN (SELECT fingerprint FROM financing_receivable"  # noqa: S608
        f" WHERE merchant_id = %s AND ref IN ({placeholders(len(invoices))}))",  # (placeholders)
        [merchant.pk, *invoices],
    )
    receivables = {r.ref: r for r in twins if r.merchant_id == merchant.pk and r.ref in invoices}
    return receivables, twins


def _held(
    merchant: Merchant,
    invoices: dict[str, Invoice],
    fingerprints: set[str],
    holder: Advance | None,
) -> tuple[set[str], set[str]]:
    """Invoice refs of the merchant, and fingerprints, that a live assignment other than
    ``holder``'s holds, in one query."""
    if not invoices and not fingerprints:
        return set(), set()
    # "IN ()" is no SQL: an empty list stands as a NULL, which matches nothing.
    refs: list[str | None] = [*invoices] or [None]
    prints: list[str | None] = [*fingerprints] or [None]
    live = [status.value for status in Assignment.LIVE]
    others, excluded = ("", []) if holder is None else (" AND advance_id <> %s", [holder.pk])
    sql = (
        "SELECT merchant_id, invoice_ref, fingerprint FROM financing_assignment"  # noqa: S608
        f" WHERE status IN ({placeholders(len(live))}){others}"  # (placeholders only)
        f" AND ((merchant_id = %s AND invoice_ref IN ({placeholders(len(refs))}))"
        f" OR fingerprint IN ({placeholders(len(prints))}))"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*live, *excluded, merchant.pk, *refs, *prints])
        rows = cursor.fetchall()
    held: set[str] = set()
    fingerprints_held: set[str] = set()
    for merchant_id, invoice_ref, fingerprint in rows:
        if merchant_id == merchant.pk and invoice_ref in invoices:
            held.add(invoice_ref)
        if fingerprint in fingerprints:
            fingerprints_held.add(fingerprint)
    return held, fingerprints_held


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


def _assigned_on_chain(
    merchant: Merchant, invoices: dict[str, Invoice], holder: Advance | None
) -> dict[str, str]:
    """Invoice ref -> the advance the merchant's chain records it assigned to (not ``holder``).

    Defence in depth: the assignment rows are what a database superuser can flip to released;
    the chain is append-only and covered by signed checkpoints others hold. A receivable the
    chain gave to the bank is never fundable again, whatever the rows say (``verify_books``
    names the row that disagrees).
    """
    if not invoices:
        return {}
    # An invoice ref too long for a chain ref stands there as its SHA-256 (assignment_entry_ref).
    hashed = {f"sha256-{hashlib.sha256(r.encode()).hexdigest()}": r for r in invoices}
    found: dict[str, str] = {}
    for entry_ref in assignment_refs(merchant_id=merchant.pk, invoice_parts=[*invoices, *hashed]):
        head, _, advance_ref = entry_ref.rpartition("@")
        invoice_ref = head if head in invoices else hashed.get(head)
        if invoice_ref is None or (holder is not None and advance_ref == holder.ref):
            continue
        if assignment_entry_ref(invoice_ref=invoice_ref, advance_ref=advance_ref) == entry_ref:
            found.setdefault(invoice_ref, advance_ref)
    return found


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
