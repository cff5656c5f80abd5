"""The evidence of an order as a whole: its invoices together within its amount (over-invoicing),
every one of its shipments delivered, and invoices that name their order only later (linking)
or are payable to someone else."""

from __future__ import annotations

from datetime import datetime

import pytest

from financing.eligibility import Verdict, verdicts
from financing.exceptions import AdvanceRefused
from financing.models import Assignment, Facility
from financing.order_evidence import OrderInvoice, invoices_beyond_order
from financing.selectors import evidence_trails
from financing.services.requests import advance_request
from ledger.exceptions import EventConflict
from ledger.models import Invoice
from ledger.rebuild import projections_rebuild
from tests.financing.conftest import TODAY, Trade, db_counts

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def judged(trade: Trade, *refs: str) -> dict[str, Verdict]:
    return {v.ref: v for v in verdicts(trade.merchant, TODAY, list(refs) or None)}


def codes(trade: Trade, ref: str) -> list[str]:
    return judged(trade, ref)[ref].codes


# Item 1: over-invoicing ------------------------------------------------------------------------


def test_two_invoices_of_one_order_are_not_both_fundable(
    trade: Trade, facility: Facility, now: datetime
) -> None:
    """A delivered 1,000.00 order, two 1,000.00 invoices: 1,000.00 fundable, not 2,000.00."""
    trade.order("ORD-1", "1000.00")
    trade.invoice("INV-A", "ORD-1", "1000.00")
    trade.invoice("INV-B", "ORD-1", "1000.00")
    trade.delivered("ORD-1")

    found = judged(trade)
    assert found["INV-A"].eligible
    assert found["INV-B"].codes == ["ORDER_OVER_INVOICED"]
    assert found["INV-B"].reasons[0].message.startswith("Order 'ORD-1' of 1000.00 EUR")

    before = db_counts()
    with pytest.raises(AdvanceRefused) as refused:
        advance_request(
            merchant=trade.merchant, refs=["INV-A", "INV-B"], request_key="both", now=now
        )
    assert [code for code, _ in refused.value.reasons["INV-B"]] == ["ORDER_OVER_INVOICED"]
    assert "INV-A" not in refused.value.reasons
    assert db_counts() == before

    advance_request(merchant=trade.merchant, refs=["INV-A"], request_key="a", now=now)
    with pytest.raises(AdvanceRefused):
        advance_request(merchant=trade.merchant, refs=["INV-B"], request_key="b", now=now)
    assert list(Assignment.objects.values_list("invoice_ref", flat=True)) == ["INV-A"]


def test_a_recheck_of_one_invoice_sees_the_orders_other_invoices(
    trade: Trade, facility: Facility
) -> None:
    # Approval re-checks only the advance's own refs; the order's other invoices still count.
    trade.order("ORD-1", "1000.00")
    trade.invoice("INV-A", "ORD-1", "600.00")
    trade.invoice("INV-B", "ORD-1", "600.00")
    trade.delivered("ORD-1")

    [verdict] = verdicts(trade.merchant, TODAY, ["INV-B"])

    assert verdict.codes == ["ORDER_OVER_INVOICED"]
    assert "leave 400.00 EUR" in verdict.reasons[0].message


def test_the_earliest_invoices_that_fit_keep_their_chance(trade: Trade, facility: Facility) -> None:
    trade.order("ORD-1", "1000.00")
    trade.invoice("INV-A", "ORD-1", "700.00")
    trade.invoice("INV-B", "ORD-1", "400.00")  # 300.00 left: does not fit
    trade.invoice("INV-C", "ORD-1", "300.00")  # fits in what INV-B could not use
    trade.delivered("ORD-1")

    found = judged(trade)

    assert {ref: v.codes for ref, v in found.items()} == {
        "INV-A": [],
        "INV-B": ["ORDER_OVER_INVOICED"],
        "INV-C": [],
    }


def test_a_credit_note_makes_room_for_a_corrected_invoice(trade: Trade, facility: Facility) -> None:
    trade.order("ORD-1", "1000.00")
    trade.invoice("INV-A", "ORD-1", "1000.00")
    trade.invoice("INV-B", "ORD-1", "1000.00")
    trade.delivered("ORD-1")
    assert codes(trade, "INV-B") == ["ORDER_OVER_INVOICED"]

    trade.credited("INV-A", "1000.00")  # the first invoice cancelled in full

    assert codes(trade, "INV-A") == ["CREDITED"]
    assert codes(trade, "INV-B") == []


def test_a_late_link_takes_its_place_after_the_orders_invoices(
    trade: Trade, facility: Facility
) -> None:
    trade.order("ORD-1", "1000.00")
    trade.invoice("INV-X", None, "1000.00")  # arrived first, naming no order
    trade.invoice("INV-A", "ORD-1", "1000.00")
    trade.delivered("ORD-1")
    assert codes(trade, "INV-X") == ["NO_ORDER_LINK"]

    trade.linked("INV-X", "ORD-1")

    assert codes(trade, "INV-A") == []  # linking later never displaces an invoice of the order
    assert codes(trade, "INV-X") == ["ORDER_OVER_INVOICED"]


def test_one_invoice_above_its_order_keeps_its_own_code(trade: Trade, facility: Facility) -> None:
    trade.order("ORD-1", "1000.00")
    trade.invoice("INV-A", "ORD-1", "1000.01")
    trade.invoice("INV-B", "ORD-1", "1000.00")
    trade.delivered("ORD-1")

    assert codes(trade, "INV-A") == ["AMOUNT_EXCEEDS_ORDER"]
    assert codes(trade, "INV-B") == []  # the oversized invoice takes no room


def test_first_fit_skips_other_currencies_and_fully_credited_invoices() -> None:
    invoices = [
        OrderInvoice("A", "USD", 900),
        OrderInvoice("B", "EUR", 0),
        OrderInvoice("C", "EUR", 600),
        OrderInvoice("D", "EUR", 500),
        OrderInvoice("E", "EUR", 400),
    ]

    assert invoices_beyond_order(order_minor=1000, currency="EUR", invoices=invoices) == {"D": 400}


# Item 2: delivery per shipment -----------------------------------------------------------------


def test_one_delivered_shipment_does_not_deliver_the_order(
    trade: Trade, facility: Facility
) -> None:
    trade.order("ORD-1")
    trade.invoice("INV-1", "ORD-1")
    trade.delivered("ORD-1", "SHP-1")
    trade.dispatched("ORD-1", "SHP-2")
    trade.dispatched("ORD-1", "SHP-3")

    [reason] = judged(trade, "INV-1")["INV-1"].reasons

    assert reason.code == "NOT_ALL_DELIVERED"
    assert "'SHP-2', 'SHP-3'" in reason.message and "SHP-1" not in reason.message

    trade.append("shipment.delivered", "SHP-2", {"order_ref": "ORD-1"}, days_ago=3)
    trade.append("shipment.delivered", "SHP-3", {"order_ref": "ORD-1"}, days_ago=3)
    assert codes(trade, "INV-1") == []


def test_a_returned_shipment_is_named(trade: Trade, facility: Facility) -> None:
    trade.order("ORD-1")
    trade.invoice("INV-1", "ORD-1")
    trade.delivered("ORD-1", "SHP-1")
    trade.delivered("ORD-1", "SHP-2")
    trade.returned("ORD-1", "SHP-2")

    [reason] = judged(trade, "INV-1")["INV-1"].reasons

    assert reason.code == "RETURNED"
    assert reason.message.endswith("'SHP-2'.")


@pytest.mark.parametrize("dispatched", [False, True])
def test_an_order_with_no_delivered_shipment_is_not_delivered(
    trade: Trade, facility: Facility, dispatched: bool
) -> None:
    trade.order("ORD-1")
    trade.invoice("INV-1", "ORD-1")
    if dispatched:
        trade.dispatched("ORD-1", "SHP-1")

    [reason] = judged(trade, "INV-1")["INV-1"].reasons

    assert reason.code == "NO_DELIVERY"
    assert ("'SHP-1'" in reason.message) is dispatched


# Item 6: evidence first, eligibility decides --------------------------------------------------


def test_an_order_less_invoice_is_fundable_once_linked(trade: Trade, facility: Facility) -> None:
    trade.order("ORD-1")
    trade.delivered("ORD-1")
    trade.invoice("INV-1", None)
    assert codes(trade, "INV-1") == ["NO_ORDER_LINK"]

    trade.linked("INV-1", "ORD-1")

    assert codes(trade, "INV-1") == []
    trade.linked("INV-1", "ORD-1")  # stating the same link again changes nothing
    with pytest.raises(EventConflict, match="linked to order 'ORD-1' already"):
        trade.linked("INV-1", "ORD-2")
    with pytest.raises(EventConflict, match="No invoice 'INV-9' to link"):
        trade.linked("INV-9", "ORD-1")
    assert Invoice.objects.get(ref="INV-1").order_ref == "ORD-1"


def test_an_invoice_payable_to_a_third_party_is_never_fundable(
    trade: Trade, facility: Facility
) -> None:
    trade.order("ORD-1")
    trade.delivered("ORD-1")
    trade.invoice("INV-1", "ORD-1", payee={"name": "Likviditet o. Finans AB"})

    [reason] = judged(trade, "INV-1")["INV-1"].reasons

    assert reason.code == "ASSIGNED_ELSEWHERE"
    assert "Likviditet o. Finans AB" in reason.message


def test_links_and_payees_rebuild_as_they_were(trade: Trade) -> None:
    trade.order("ORD-1")
    trade.invoice("INV-X", None)
    trade.invoice("INV-A", "ORD-1", payee={"id": "5566778899"})
    trade.linked("INV-X", "ORD-1")
    fields = ("ref", "order_ref", "order_linked_seq", "payee_third_party", "payee_name", "payee_id")
    before = sorted(Invoice.objects.values_list(*fields))

    report = projections_rebuild()

    assert report.differences == []
    assert sorted(Invoice.objects.values_list(*fields)) == before
    seqs = {row[0]: row[2] for row in before}
    assert seqs["INV-X"] > seqs["INV-A"]  # linked after INV-A was issued


def test_the_evidence_trail_of_a_linked_invoice_shows_the_link(
    trade: Trade, facility: Facility, now: datetime
) -> None:
    trade.order("ORD-1")
    trade.delivered("ORD-1")
    trade.invoice("INV-1", None)
    trade.linked("INV-1", "ORD-1")
    advance = advance_request(merchant=trade.merchant, refs=["INV-1"], request_key="k", now=now)

    [trail], _ = evidence_trails(advance=advance)

    assert [e.type for e in trail.entries] == [
        "order.placed",
        "shipment.dispatched",
        "shipment.delivered",
        "invoice.issued",
        "invoice.linked",
    ]
