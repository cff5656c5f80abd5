"""Is a receivable fundable? A live verdict from the evidence, with a code per failing rule.

A receivable is eligible only when the three flows agree (an order, an invoice within it and,
with the order's other invoices, within its amount; every shipment of the order delivered,
nothing returned, cancelled or credited since), the facility's terms allow it, the merchant may
borrow and nobody holds it already (nor was it assigned to a third party, nor to the bank
according to the merchant's chain, whatever the assignment rows say). Every rule that
fails adds its own reason, so a merchant sees everything that stands in the way at once, and an
officer sees why.

The checks read committed state; ``services`` re-runs them under the facility's lock before
anything is held, and the database's constraints decide races.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from django.db import connection
from django.db.models import QuerySet

from financing.assigned_on_chain import assignment_refs
from financing.debtor_exposure import bank_debtor_room, debtor_cap, debtor_exposure
from financing.models import (
    Advance,
    Assignment,
    DuplicateClearance,
    Facility,
    Receivable,
    assignment_entry_ref,
)
from financing.order_evidence import OrderEvidence, orders_evidence
from financing.pricing import advance_amount
from ledger.models import Invoice, Order
from ledger.money import Money
from ledger.sql import models_read, placeholders
from merchants.identifiers import party_name_normalise, tax_id_normalise
from merchants.models import Merchant


class Code(StrEnum):
    NO_ORDER_LINK = "NO_ORDER_LINK"
    NO_ORDER = "NO_ORDER"
    ORDER_CANCELLED = "ORDER_CANCELLED"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    AMOUNT_EXCEEDS_ORDER = "AMOUNT_EXCEEDS_ORDER"
    ORDER_OVER_INVOICED = "ORDER_OVER_INVOICED"
    NO_DELIVERY = "NO_DELIVERY"
    NOT_ALL_DELIVERED = "NOT_ALL_DELIVERED"
    RETURNED = "RETURNED"
    CREDITED = "CREDITED"
    PAID = "PAID"
    NO_FACILITY = "NO_FACILITY"
    PAST_DUE = "PAST_DUE"
    TOO_CLOSE_TO_DUE = "TOO_CLOSE_TO_DUE"
    TENOR_TOO_LONG = "TENOR_TOO_LONG"
    MERCHANT_INACTIVE = "MERCHANT_INACTIVE"
    KYC_NOT_VERIFIED = "KYC_NOT_VERIFIED"
    BLACKLISTED = "BLACKLISTED"
    FACILITY_LIMIT = "FACILITY_LIMIT"
    DEBTOR_LIMIT = "DEBTOR_LIMIT"
    BANK_DEBTOR_LIMIT = "BANK_DEBTOR_LIMIT"
    ALREADY_ASSIGNED = "ALREADY_ASSIGNED"
    DUPLICATE_INVOICE = "DUPLICATE_INVOICE"
    ASSIGNED_ELSEWHERE = "ASSIGNED_ELSEWHERE"
    ASSIGNED_ON_CHAIN = "ASSIGNED_ON_CHAIN"


@dataclass(frozen=True)
class Reason:
    code: Code
    message: str


@dataclass(frozen=True)
class Verdict:
    """A receivable as the merchant and the officer see it, with why it is or is not fundable."""

    ref: str
    order_ref: str
    currency: str
    face_minor: int
    issue_date: date
    due_date: date
    debtor_name: str
    debtor_key: str
    fingerprint: str
    reasons: tuple[Reason, ...] = field(default=())

    @property
    def eligible(self) -> bool:
        return not self.reasons

    @property
    def codes(self) -> list[str]:
        return [reason.code.value for reason in self.reasons]


@dataclass
class _Evidence:
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


def verdicts(
    merchant: Merchant,
    today: date,
    refs: Sequence[str] | None = None,
    *,
    holder: Advance | None = None,
) -> list[Verdict]:
    """Verdicts for the merchant's receivables (all of them, or those invoice ``refs``).

    With ``holder``, the verdicts are re-checked for that advance: its own holds, commitment and
    debtor exposure do not count against it. Refs the merchant has no invoice for are left out;
    the caller reports them.
    """
    invoices = _invoices_of(merchant)
    if refs is not None:
        invoices = invoices.filter(ref__in=list(refs))
    return _verdicts(merchant, today, invoices, holder)


def open_verdicts(merchant: Merchant, today: date) -> list[Verdict]:
    """Verdicts for the merchant's receivables that may be fundable today: unpaid, uncredited
    and due after today.

    Every other receivable fails a rule on its invoice's own columns (PAID, CREDITED, PAST_DUE
    or TOO_CLOSE_TO_DUE, whose minimum is a day), so whether it is eligible needs no evidence,
    and a merchant's history of paid invoices costs nothing here. A verdict does not depend on
    which other invoices are judged with it (the evidence of their orders, holders and debtors
    is read whole), so these are the verdicts ``verdicts`` gives the same invoices.
    """
    return _verdicts(merchant, today, open_invoices(merchant, today), None)


def open_invoices(merchant: Merchant, today: date) -> QuerySet[Invoice]:
    """The merchant's invoices unpaid, uncredited and due after ``today``, by due date: found
    by the (merchant, due date) index, not among every invoice the merchant ever issued."""
    return _invoices_of(merchant).filter(paid_minor=0, credited_minor=0, due_date__gt=today)


def _invoices_of(merchant: Merchant) -> QuerySet[Invoice]:
    return Invoice.objects.filter(merchant=merchant).order_by("due_date", "ref")


def _verdicts(
    merchant: Merchant, today: date, invoices: QuerySet[Invoice], holder: Advance | None
) -> list[Verdict]:
    evidence = _evidence_load(merchant, today, invoices, holder)
    # An invoice without its receivable row is mid-rebuild (rebuild_projections replaces both
    # in one transaction, so only a reader inside it could see that); it is not judged.
    return [
        _judge(evidence, invoice)
        for invoice in evidence.invoices.values()
        if invoice.ref in evidence.receivables
    ]


def _evidence_load(
    merchant: Merchant, today: date, invoice_qs: QuerySet[Invoice], holder: Advance | None
) -> _Evidence:
    invoices = {invoice.ref: invoice for invoice in invoice_qs}
    order_refs = {invoice.order_ref for invoice in invoices.values() if invoice.order_ref}
    receivables, twins = _receivables_with_twins(merchant, invoices)
    fingerprints = {r.fingerprint for r in receivables.values()}
    held, fingerprints_held = _held(merchant, invoices, fingerprints, holder)
    earlier_twins = _refs_with_earlier_twin(receivables.values(), twins)
    return _Evidence(
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


def business_debtor_key(tax_id: str, name: str, country: str) -> str:
    """The key of a business buyer: its tax id, or else its folded name and its country.

    Never the name alone: "ACME GmbH" and "Acme G.m.b.H." are one buyer, and an Acme in
    France is not the Acme in Germany.
    """
    normalised = tax_id_normalise(tax_id)
    if normalised:
        return f"business:{normalised}"
    return f"business-name:{country.strip().upper()}:{party_name_normalise(name)}"


def _judge(evidence: _Evidence, invoice: Invoice) -> Verdict:
    receivable = evidence.receivables[invoice.ref]
    reasons = [
        *_three_flows(evidence, invoice),
        *_terms(evidence, invoice),
        *_merchant_standing(evidence.merchant, evidence.blacklisted),
        *_holders(evidence, invoice, receivable),
    ]
    return Verdict(
        ref=invoice.ref,
        order_ref=invoice.order_ref,
        currency=invoice.currency,
        face_minor=invoice.amount_minor - invoice.credited_minor,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        debtor_name=invoice.debtor_name,
        debtor_key=receivable.debtor_key,
        fingerprint=receivable.fingerprint,
        reasons=tuple(reasons),
    )


def _three_flows(evidence: _Evidence, invoice: Invoice) -> Iterable[Reason]:
    if not invoice.order_ref:
        yield Reason(
            Code.NO_ORDER_LINK,
            "The invoice names no order; it is fundable once the marketplace links it to one.",
        )
    else:
        yield from _order_flows(evidence.orders[invoice.order_ref], invoice)
    if invoice.credited_minor:
        yield Reason(
            Code.CREDITED,
            f"Credit notes of {Money(invoice.credited_minor, invoice.currency)} were issued.",
        )
    if invoice.paid_minor:
        # A paid invoice is no longer a receivable: there is nothing left to advance against.
        yield Reason(
            Code.PAID,
            f"The marketplace already paid {Money(invoice.paid_minor, invoice.currency)} of it.",
        )


def _order_flows(found: OrderEvidence, invoice: Invoice) -> Iterable[Reason]:
    order = found.order
    if order is None:
        yield Reason(Code.NO_ORDER, f"No order '{invoice.order_ref}' in the ledger.")
    elif order.status == Order.Status.CANCELLED:
        yield Reason(Code.ORDER_CANCELLED, f"Order '{order.ref}' was cancelled.")
    if order is not None and order.currency != invoice.currency:
        yield Reason(
            Code.CURRENCY_MISMATCH,
            f"The invoice is in {invoice.currency}, its order in {order.currency}.",
        )
    elif order is not None and invoice.amount_minor > order.amount_minor:
        yield Reason(
            Code.AMOUNT_EXCEEDS_ORDER,
            f"Invoiced {Money(invoice.amount_minor, invoice.currency)} exceeds the order's "
            f"{Money(order.amount_minor, order.currency)}.",
        )
    elif order is not None and invoice.ref in found.excess:
        yield Reason(
            Code.ORDER_OVER_INVOICED,
            f"Order '{order.ref}' of {Money(order.amount_minor, order.currency)} is invoiced"
            f" beyond its amount: invoices before this one leave "
            f"{Money(found.excess[invoice.ref], order.currency)} of it.",
        )
    if not found.shipped:
        yield Reason(
            Code.NO_DELIVERY, f"No shipment of order '{invoice.order_ref}' is in the ledger."
        )
    elif not found.delivered and found.in_transit:
        yield Reason(
            Code.NO_DELIVERY,
            f"No shipment of order '{invoice.order_ref}' is delivered yet; in transit: "
            f"{_listed(found.in_transit)}.",
        )
    elif found.in_transit:
        yield Reason(
            Code.NOT_ALL_DELIVERED,
            f"Not every shipment of order '{invoice.order_ref}' is delivered; in transit: "
            f"{_listed(found.in_transit)}.",
        )
    if found.returned:
        yield Reason(
            Code.RETURNED,
            f"Goods of order '{invoice.order_ref}' were returned: {_listed(found.returned)}.",
        )


def _listed(refs: Sequence[str], shown: int = 5) -> str:
    more = f" and {len(refs) - shown} more" if len(refs) > shown else ""
    return ", ".join(f"'{ref}'" for ref in refs[:shown]) + more


def _terms(evidence: _Evidence, invoice: Invoice) -> Iterable[Reason]:
    facility = evidence.facilities.get(invoice.currency)
    if facility is None:
        yield Reason(Code.NO_FACILITY, f"No active {invoice.currency} facility.")
        return
    days = (invoice.due_date - evidence.today).days
    if days < 0:
        yield Reason(Code.PAST_DUE, f"Was due on {invoice.due_date:%Y-%m-%d}.")
    elif days < max(facility.min_days_to_due, 1):
        yield Reason(
            Code.TOO_CLOSE_TO_DUE,
            f"Due in {days} days; the facility finances {facility.min_days_to_due} days or more.",
        )
    if days > facility.max_tenor_days:
        yield Reason(
            Code.TENOR_TOO_LONG,
            f"Due in {days} days; the facility's tenor is {facility.max_tenor_days} days.",
        )
    face = invoice.amount_minor - invoice.credited_minor
    advance = advance_amount(face, facility.advance_rate_bp) if face > 0 else 0
    room = facility.limit_minor - facility.committed_minor + evidence.own_commitment
    if advance > room:
        yield Reason(
            Code.FACILITY_LIMIT,
            f"Would advance {Money(advance, invoice.currency)}; the facility has "
            f"{Money(room, invoice.currency)} left.",
        )
    debtor_key = evidence.receivables[invoice.ref].debtor_key
    exposure = evidence.debtor_exposure.get((invoice.currency, debtor_key), 0)
    debtor_room = debtor_cap(facility) - exposure
    if advance > debtor_room:
        yield Reason(
            Code.DEBTOR_LIMIT,
            f"{invoice.debtor_name} already accounts for as much as one debtor may "
            f"({Money(max(debtor_room, 0), invoice.currency)} left).",
        )
    bank_room = evidence.bank_room.get((invoice.currency, debtor_key))
    if bank_room is not None and advance > bank_room:
        yield Reason(
            Code.BANK_DEBTOR_LIMIT,
            f"The bank's limit on {invoice.debtor_name} leaves "
            f"{Money(max(bank_room, 0), invoice.currency)}; this would advance "
            f"{Money(advance, invoice.currency)}.",
        )


def _merchant_standing(merchant: Merchant, blacklisted: bool) -> Iterable[Reason]:
    if merchant.status != Merchant.Status.ACTIVE:
        yield Reason(Code.MERCHANT_INACTIVE, f"The merchant is {merchant.status}.")
    if merchant.kyc_status != Merchant.KycStatus.VERIFIED:
        yield Reason(Code.KYC_NOT_VERIFIED, f"KYC is {merchant.kyc_status}, not verified.")
    if blacklisted:
        yield Reason(Code.BLACKLISTED, "No new advances until an officer lifts the blacklisting.")


def _holders(evidence: _Evidence, invoice: Invoice, receivable: Receivable) -> Iterable[Reason]:
    if invoice.payee_third_party:
        to = f" ({invoice.payee_name})" if invoice.payee_name else ""
        yield Reason(
            Code.ASSIGNED_ELSEWHERE,
            f"The invoice is payable to a third party{to}: the receivable was assigned before.",
        )
    if invoice.ref in evidence.held or receivable.fingerprint in evidence.fingerprints_held:
        yield Reason(Code.ALREADY_ASSIGNED, "Another advance holds this invoice.")
    elif invoice.ref in evidence.on_chain:
        yield Reason(
            Code.ASSIGNED_ON_CHAIN,
            f"The chain records this invoice assigned to the bank by advance "
            f"{evidence.on_chain[invoice.ref]}: a receivable is financed once.",
        )
    duplicate = _duplicate(evidence, invoice)
    if duplicate is not None:
        yield duplicate


def _duplicate(evidence: _Evidence, invoice: Invoice) -> Reason | None:
    """The one place an invoice is judged a duplicate of an earlier arrival."""
    first = evidence.earlier_twins.get(invoice.ref)
    if first is None or invoice.ref in evidence.cleared:
        return None
    return Reason(
        Code.DUPLICATE_INVOICE,
        f"This supplier's invoice number reached Chainfin before, as '{first.ref}' from "
        f"{first.source}: an officer must look at it.",
    )
