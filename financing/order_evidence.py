"""What the evidence says about each order a merchant's invoices bill: its shipments, and which
of its invoices fit within it.

Both are facts about the order, not about one invoice, so they are read for every invoice of
the order whichever invoices are being judged: a re-check of one advance's invoices sees the
order's other invoices too, and two invoices of one order can never both fit beyond it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

from ledger.models import Order
from ledger.sql import Rows, models_read_later, placeholders, rows_later
from merchants.models import Merchant


@dataclass(frozen=True)
class OrderEvidence:
    """One order and its shipments by state (shipment refs, sorted), and its excess invoices."""

    order: Order | None
    delivered: tuple[str, ...] = ()
    in_transit: tuple[str, ...] = ()
    returned: tuple[str, ...] = ()
    # Invoice ref -> the room the order had left when that invoice joined it.
    excess: dict[str, int] = field(default_factory=dict)

    @property
    def shipped(self) -> bool:
        return bool(self.delivered or self.in_transit or self.returned)


@dataclass(frozen=True)
class OrderInvoice:
    """An invoice as its order counts it: what is still owed on it, in its currency."""

    ref: str
    currency: str
    net_minor: int  # amount less credit notes


def invoices_beyond_order(
    *, order_minor: int, currency: str, invoices: Iterable[OrderInvoice]
) -> dict[str, int]:
    """Return the invoices that do not fit within the order, each with the room it found.

    ``invoices`` come in the order they joined the order. First fit: each invoice that fits in
    what the invoices kept before it left is kept, so the earliest that fit keep their chance
    and a later invoice never displaces one kept before it. Invoices in another currency are
    not counted here (their own rule refuses them); fully credited ones take no room.
    """
    room = order_minor
    excess: dict[str, int] = {}
    for invoice in invoices:
        if invoice.currency != currency or invoice.net_minor <= 0:
            continue
        if invoice.net_minor <= room:
            room -= invoice.net_minor
        else:
            excess[invoice.ref] = room
    return excess


def orders_evidence_later(
    *, merchant: Merchant, order_refs: Collection[str]
) -> Callable[[], dict[str, OrderEvidence]]:
    """Read the evidence of the merchant's orders ``order_refs``, loaded when called (so that
    the reads can share a round trip, ``ledger.sql.one_round_trip``): one entry per ref asked
    for. An order not in the ledger comes back with ``order=None`` (and its shipments, if any).
    """
    refs = list(order_refs)
    if not refs:
        return dict
    orders_read = models_read_later(
        Order, f"merchant_id = %s AND ref IN ({placeholders(len(refs))})", [merchant.pk, *refs]
    )
    on_orders_read = _on_orders_later(merchant, refs)

    def load() -> dict[str, OrderEvidence]:
        orders = {o.ref: o for o in orders_read()}
        states: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        on_order: dict[str, list[OrderInvoice]] = defaultdict(list)
        for (
            kind,
            order_ref,
            ref,
            delivered,
            returned,
            currency,
            amount,
            credited,
            _,
        ) in on_orders_read():
            if kind == "shipment":
                # Returned once is returned: goods that came back are not the goods billed.
                state = "returned" if returned else "delivered" if delivered else "in_transit"
                states[order_ref][state].append(ref)
            else:
                on_order[order_ref].append(OrderInvoice(ref, currency, amount - credited))
        return {ref: _evidence(orders.get(ref), states[ref], on_order[ref]) for ref in refs}

    return load


def _evidence(
    order: Order | None, by_state: dict[str, list[str]], invoices: list[OrderInvoice]
) -> OrderEvidence:
    excess = (
        invoices_beyond_order(
            order_minor=order.amount_minor, currency=order.currency, invoices=invoices
        )
        if order is not None
        else {}
    )
    return OrderEvidence(
        order=order,
        delivered=tuple(by_state["delivered"]),
        in_transit=tuple(by_state["in_transit"]),
        returned=tuple(by_state["returned"]),
        excess=excess,
    )


def _on_orders_later(merchant: Merchant, refs: list[str]) -> Callable[[], Rows]:
    """The orders' shipments (by ref) and invoices (in the order they joined it), in one plain
    statement: this runs on every verdict, and building the ORM's two queries cost twice what
    running them does. Each row: its kind, then the columns of both kinds, the other's empty,
    then the invoice's order_linked_seq (for the ORDER BY)."""
    listed = placeholders(len(refs))
    return rows_later(
        "SELECT 'shipment', order_ref, ref, delivered_at IS NOT NULL,"  # noqa: S608
        " returned_at IS NOT NULL, NULL, NULL, NULL, NULL FROM ledger_shipment"
        f" WHERE merchant_id = %s AND order_ref IN ({listed}) UNION ALL SELECT 'invoice',"
        " order_ref, ref, NULL, NULL, currency, amount_minor, credited_minor,"
        " order_linked_seq FROM ledger_invoice"
        f" WHERE merchant_id = %s AND order_ref IN ({listed})"
        " ORDER BY 1, 9, 3",  # kind, the invoices' order_linked_seq, ref
        [merchant.pk, *refs] * 2,  # (placeholders only)
    )
