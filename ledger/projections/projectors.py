"""Projectors for the trade evidence: orders, invoices, shipments and payouts.

They refuse events that contradict the chain (a second order under one ref, a credit note for
an unknown invoice); the refusal rolls back the whole append, so nothing is half-written.
A second order, invoice, shipment or payout under one ref is refused by the tables' unique
constraints (see the registry).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from django.db import connection
from django.db.models import F, Q

from ledger.exceptions import EventConflict
from ledger.models import Entry, Invoice, Order, Payout, Shipment
from ledger.money import parse_minor_units
from ledger.projections.registry import (
    Pairs,
    batch_projector,
    projection_model,
    projector,
    row_projector,
)
from ledger.unsaved import unsaved

for _model in (Order, Invoice, Shipment, Payout):
    projection_model(_model)


def _common(entry: Entry) -> dict[str, Any]:
    return {"merchant_id": entry.chain_id, "ref": entry.external_ref, "source": entry.source}


@row_projector("order.placed")
def order_placed(*, entry: Entry, data: dict[str, Any]) -> Order:
    buyer = data.get("buyer", {})
    return unsaved(
        Order,
        **_common(entry),
        entry=entry,
        currency=data["currency"],
        amount_minor=parse_minor_units(data["amount"], data["currency"]),
        placed_at=entry.occurred_at,
        buyer_id=buyer.get("id", ""),
        buyer_name=buyer.get("name", ""),
    )


@projector("order.cancelled")
def order_cancelled(*, entry: Entry, data: dict[str, Any]) -> None:
    cancelled = Order.objects.filter(
        merchant_id=entry.chain_id, ref=entry.external_ref, status=Order.Status.PLACED
    ).update(status=Order.Status.CANCELLED, cancelled_at=entry.occurred_at)
    if cancelled != 1:
        raise EventConflict("/ref", f"No open order '{entry.external_ref}' to cancel.")


@row_projector("invoice.issued")
def invoice_issued(*, entry: Entry, data: dict[str, Any]) -> Invoice:
    debtor = data["debtor"]
    payee = data.get("payee")
    return unsaved(
        Invoice,
        **_common(entry),
        entry=entry,
        order_ref=data.get("order_ref", ""),
        order_linked_seq=entry.seq if "order_ref" in data else None,
        currency=data["currency"],
        amount_minor=parse_minor_units(data["amount"], data["currency"]),
        issue_date=date.fromisoformat(data["issue_date"]),
        due_date=date.fromisoformat(data["due_date"]),
        debtor_kind=debtor["kind"],
        debtor_name=debtor["name"],
        debtor_tax_id=debtor.get("tax_id", ""),
        debtor_country=debtor.get("country", ""),
        supplier_tax_id=data.get("supplier_tax_id", ""),
        payee_third_party=payee is not None,
        payee_name=(payee or {}).get("name", ""),
        payee_id=(payee or {}).get("id", ""),
    )


@projector("invoice.linked")
def invoice_linked(*, entry: Entry, data: dict[str, Any]) -> None:
    """Name the order an invoice bills; the link's seq is the invoice's place in that order."""
    invoice = (
        Invoice.objects.select_for_update()
        .filter(merchant_id=entry.chain_id, ref=data["invoice_ref"])
        .first()
    )
    if invoice is None:
        raise EventConflict("/data/invoice_ref", f"No invoice '{data['invoice_ref']}' to link.")
    if invoice.order_ref == data["order_ref"]:
        return  # the same link stated again changes nothing, not even the invoice's place
    if invoice.order_ref:
        raise EventConflict(
            "/data/order_ref",
            f"Invoice '{invoice.ref}' is linked to order '{invoice.order_ref}' already.",
        )
    invoice.order_ref = data["order_ref"]
    invoice.order_linked_seq = entry.seq
    invoice.save(update_fields=["order_ref", "order_linked_seq"])


@projector("invoice.credited")
def invoice_credited(*, entry: Entry, data: dict[str, Any]) -> None:
    invoice = (
        Invoice.objects.select_for_update()
        .filter(merchant_id=entry.chain_id, ref=data["invoice_ref"])
        .first()
    )
    if invoice is None:
        raise EventConflict("/data/invoice_ref", f"No invoice '{data['invoice_ref']}' to credit.")
    if data["currency"] != invoice.currency:
        raise EventConflict("/data/currency", f"The invoice is in {invoice.currency}.")
    credited = invoice.credited_minor + parse_minor_units(data["amount"], data["currency"])
    if credited > invoice.amount_minor:
        raise EventConflict("/data/amount", "Credit notes would exceed the invoice amount.")
    invoice.credited_minor = credited
    invoice.status = (
        Invoice.Status.CREDITED
        if credited == invoice.amount_minor
        else Invoice.Status.PARTIALLY_CREDITED
    )
    invoice.save(update_fields=["credited_minor", "status"])


@row_projector("shipment.dispatched")
def shipment_dispatched(*, entry: Entry, data: dict[str, Any]) -> Shipment:
    return unsaved(
        Shipment,
        **_common(entry),
        entry=entry,
        order_ref=data["order_ref"],
        status=Shipment.Status.DISPATCHED,
        carrier=data.get("carrier", ""),
        tracking_number=data.get("tracking_number", ""),
        dispatched_at=entry.occurred_at,
    )


def _shipment_advance(entry: Entry, data: dict[str, Any], status: str, field: str) -> None:
    """Move a shipment forward; carriers may report delivery without a dispatch scan."""
    shipment = (
        Shipment.objects.select_for_update()
        .filter(merchant_id=entry.chain_id, ref=entry.external_ref)
        .first()
    )
    if shipment is None:
        Shipment.objects.create(
            **_common(entry),
            entry=entry,
            order_ref=data["order_ref"],
            status=status,
            **{field: entry.occurred_at},
        )
        return
    if shipment.order_ref != data["order_ref"]:
        raise EventConflict(
            "/data/order_ref", f"Shipment '{shipment.ref}' belongs to order '{shipment.order_ref}'."
        )
    if shipment.status == status:
        raise EventConflict("/ref", f"Shipment '{shipment.ref}' is already {status}.")
    shipment.status = status
    setattr(shipment, field, entry.occurred_at)
    shipment.save(update_fields=["status", field])


@projector("shipment.delivered")
def shipment_delivered(*, entry: Entry, data: dict[str, Any]) -> None:
    _shipment_advance(entry, data, Shipment.Status.DELIVERED, "delivered_at")


@projector("shipment.returned")
def shipment_returned(*, entry: Entry, data: dict[str, Any]) -> None:
    _shipment_advance(entry, data, Shipment.Status.RETURNED, "returned_at")


@batch_projector("payout.settled")
def invoices_paid(pairs: Pairs) -> None:
    """Count each line against the invoice it names: a paid invoice is no longer a receivable.

    A line naming no invoice of this merchant, or in another currency, or one issued after the
    payout (later in the same batch), pays nothing here; settlement holds its money in
    suspense for officers. One statement for all the payouts of a batch.
    """
    lines = [
        (
            entry.chain_id,
            line["invoice_ref"],
            entry.seq,
            data["currency"],
            parse_minor_units(line["amount"], data["currency"]),
        )
        for entry, data in pairs
        for line in data.get("lines", [])
    ]
    if not lines:
        return
    if connection.vendor == "postgresql":
        _invoices_paid_sql(lines)
    else:
        _invoices_paid_orm(lines)


# (merchant id, invoice ref, the payout's seq, the payout's currency, minor units) per line.
PaidLine = tuple[int, str, int, str, int]

# Every writer of an invoice is an append holding its merchant's chain lock, so no two
# transactions update one invoice at once and the rows need no locking order of their own.
_INVOICES_PAID = """
WITH line (merchant_id, ref, payout_seq, currency, minor) AS (
    SELECT * FROM unnest(%s::bigint[], %s::varchar[], %s::bigint[], %s::varchar[], %s::bigint[])
), due AS (
    SELECT invoice.id, sum(line.minor) AS minor
    FROM line
    -- One index probe per line: as a plain join, a planner with stale statistics hashed the
    -- lines and read every invoice of the table instead.
    CROSS JOIN LATERAL (
        SELECT id, entry_id FROM ledger_invoice
        WHERE merchant_id = line.merchant_id AND ref = line.ref AND currency = line.currency
        LIMIT 1
    ) invoice
    JOIN ledger_entry issued ON issued.id = invoice.entry_id AND issued.seq < line.payout_seq
    GROUP BY invoice.id
)
UPDATE ledger_invoice invoice SET paid_minor = invoice.paid_minor + due.minor
FROM due WHERE invoice.id = due.id
"""


def _invoices_paid_sql(lines: list[PaidLine]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_INVOICES_PAID, [list(column) for column in zip(*lines, strict=True)])


def _invoices_paid_orm(lines: list[PaidLine]) -> None:
    """What ``_INVOICES_PAID`` does, for SQLite (the demo's embedded database)."""
    by_invoice: dict[tuple[int, str], list[tuple[int, str, int]]] = defaultdict(list)
    for merchant_id, ref, payout_seq, currency, minor in lines:
        by_invoice[merchant_id, ref].append((payout_seq, currency, minor))
    refs_of: dict[int, set[str]] = defaultdict(set)
    for merchant_id, ref in by_invoice:
        refs_of[merchant_id].add(ref)
    named = Q()
    for merchant_id, refs in refs_of.items():
        named |= Q(merchant_id=merchant_id, ref__in=refs)
    invoices = Invoice.objects.filter(named).annotate(issued_seq=F("entry__seq")).order_by("pk")
    paid = []
    for invoice in invoices:
        amounts = [
            minor
            for payout_seq, currency, minor in by_invoice[invoice.merchant_id, invoice.ref]
            if currency == invoice.currency and invoice.issued_seq < payout_seq
        ]
        if amounts:
            invoice.paid_minor += sum(amounts)
            paid.append(invoice)
    Invoice.objects.bulk_update(paid, ["paid_minor"])


@projector("suspense.allocated")
def invoice_paid_from_suspense(*, entry: Entry, data: dict[str, Any]) -> None:
    """Money officers allocated from suspense to an invoice pays it as a payout line would:
    the invoice stops being a receivable."""
    if data.get("invoice_ref") is None:
        return  # passed to the merchant: no invoice is paid
    Invoice.objects.filter(
        merchant_id=entry.chain_id, ref=data["invoice_ref"], currency=data["currency"]
    ).update(paid_minor=F("paid_minor") + parse_minor_units(data["amount"], data["currency"]))


@row_projector("payout.settled")
def payout_settled(*, entry: Entry, data: dict[str, Any]) -> Payout:
    return unsaved(
        Payout,
        **_common(entry),
        entry=entry,
        currency=data["currency"],
        amount_minor=parse_minor_units(data["amount"], data["currency"]),
        settled_on=date.fromisoformat(data["settled_on"]),
        lines=data.get("lines", []),
    )
