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

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from django.db import connection

from financing.debtor_exposure import debtor_cap
from financing.evidence import Evidence, evidence_load
from financing.models import Advance, Receivable
from financing.order_evidence import OrderEvidence
from financing.pricing import advance_amount
from ledger.models import Invoice, Order
from ledger.money import Money
from ledger.sql import models_read, models_read_later, placeholders
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
    if refs is None:
        invoices = _invoices_read("merchant_id = %s", [merchant.pk])
    else:
        invoices = invoices_of_refs_later(merchant, refs)()
    return verdicts_of(merchant, today, invoices, holder=holder)


def invoices_of_refs_later(merchant: Merchant, refs: Sequence[str]) -> Callable[[], list[Invoice]]:
    """The merchant's invoices of ``refs``, as ``verdicts`` reads them, read now and loaded
    when called: inside ``ledger.sql.one_round_trip``, with the statements sent with it (a
    decision reads them with its locks, ``financing.services.decisions``)."""
    if not refs:
        return list
    wanted = f"merchant_id = %s AND ref IN ({placeholders(len(refs))}) ORDER BY due_date, ref"
    return models_read_later(Invoice, wanted, [merchant.pk, *refs])


def open_verdicts(merchant: Merchant, today: date) -> list[Verdict]:
    """Verdicts for the merchant's receivables that may be fundable today: unpaid, uncredited
    and due after today.

    Every other receivable fails a rule on its invoice's own columns (PAID, CREDITED, PAST_DUE
    or TOO_CLOSE_TO_DUE, whose minimum is a day), so whether it is eligible needs no evidence,
    and a merchant's history of paid invoices costs nothing here. A verdict does not depend on
    which other invoices are judged with it (the evidence of their orders, holders and debtors
    is read whole), so these are the verdicts ``verdicts`` gives the same invoices.
    """
    return verdicts_of(merchant, today, open_invoices(merchant, today))


def open_invoices(merchant: Merchant, today: date) -> list[Invoice]:
    """The merchant's invoices unpaid, uncredited and due after ``today``, by due date: found
    by the (merchant, due date) index, not among every invoice the merchant ever issued."""
    return _invoices_read(
        "merchant_id = %s AND paid_minor = 0 AND credited_minor = 0 AND due_date > %s",
        [merchant.pk, connection.ops.adapt_datefield_value(today)],
    )


def _invoices_read(where: str, params: list[Any]) -> list[Invoice]:
    """Invoices matching ``where``, by due date then ref. Plain SQL: every quote, decision and
    portal page judges invoices, and the ORM's query cost twice what running it does."""
    return models_read(Invoice, f"{where} ORDER BY due_date, ref", params)


def verdicts_of(
    merchant: Merchant, today: date, invoices: list[Invoice], *, holder: Advance | None = None
) -> list[Verdict]:
    """``verdicts`` of the merchant's ``invoices``, read by the caller."""
    evidence = evidence_load(merchant, today, invoices, holder)
    # An invoice without its receivable row is mid-rebuild (rebuild_projections replaces both
    # in one transaction, so only a reader inside it could see that); it is not judged.
    return [
        _judge(evidence, invoice)
        for invoice in evidence.invoices.values()
        if invoice.ref in evidence.receivables
    ]


def business_debtor_key(tax_id: str, name: str, country: str) -> str:
    """The key of a business buyer: its tax id, or else its folded name and its country.

    Never the name alone: "ACME GmbH" and "Acme G.m.b.H." are one buyer, and an Acme in
    France is not the Acme in Germany.
    """
    normalised = tax_id_normalise(tax_id)
    if normalised:
        return f"business:{normalised}"
    return f"business-name:{country.strip().upper()}:{party_name_normalise(name)}"


def _judge(evidence: Evidence, invoice: Invoice) -> Verdict:
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


def _three_flows(evidence: Evidence, invoice: Invoice) -> Iterable[Reason]:
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


def _terms(evidence: Evidence, invoice: Invoice) -> Iterable[Reason]:
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


def _holders(evidence: Evidence, invoice: Invoice, receivable: Receivable) -> Iterable[Reason]:
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


def _duplicate(evidence: Evidence, invoice: Invoice) -> Reason | None:
    """The one place an invoice is judged a duplicate of an earlier arrival."""
    first = evidence.earlier_twins.get(invoice.ref)
    if first is None or invoice.ref in evidence.cleared:
        return None
    return Reason(
        Code.DUPLICATE_INVOICE,
        f"This supplier's invoice number reached Chainfin before, as '{first.ref}' from "
        f"{first.source}: an officer must look at it.",
    )
