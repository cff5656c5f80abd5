"""Property: whatever the history of orders, invoices, credit notes, links and shipments, the
fundable face of an order never exceeds its amount, each invoice counted net of its credits.

Histories are written through the ledger (the projectors) and judged by the eligibility
service; then one advance is requested for every eligible invoice at once, and what it holds
must respect the same bound. Each example runs in a savepoint that is rolled back.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from financing import order_evidence
from financing.eligibility import verdicts
from financing.models import Assignment
from financing.services.requests import advance_request
from ledger.events import event_parse, format_timestamp
from ledger.models import Invoice, Order
from ledger.services import NewEntry, entries_append
from tests.financing.conftest import TODAY, Trade

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

ORDERS = 3
SHIPMENT_FATES = st.sampled_from(["in_transit", "delivered", "returned"])
CENTS = st.integers(min_value=1, max_value=200_000)


@st.composite
def histories(draw: Any) -> dict[str, Any]:
    orders = draw(st.lists(CENTS, min_size=1, max_size=ORDERS))
    invoices = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    # None: the invoice names no order; it may be linked later.
                    "order": st.none() | st.integers(0, len(orders) - 1),
                    "cents": CENTS,
                    "credit_share": st.sampled_from([0, 0, 0, 25, 100]),
                    "link": st.none() | st.integers(0, len(orders) - 1),
                }
            ),
            min_size=1,
            max_size=7,
        )
    )
    shipments = draw(
        st.lists(st.lists(SHIPMENT_FATES, max_size=3), min_size=len(orders), max_size=len(orders))
    )
    return {"orders": orders, "invoices": invoices, "shipments": shipments}


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _events(history: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """The history as (type, ref, data), in an order the ledger accepts."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    for n, cents in enumerate(history["orders"]):
        out.append(("order.placed", f"ORD-{n}", {"currency": "EUR", "amount": _money(cents)}))
    for n, invoice in enumerate(history["invoices"]):
        data: dict[str, Any] = {
            "currency": "EUR",
            "amount": _money(invoice["cents"]),
            "issue_date": (TODAY - timedelta(days=15)).isoformat(),
            "due_date": (TODAY + timedelta(days=45)).isoformat(),
            "debtor": {"kind": "marketplace", "name": "Acme Marketplace"},
        }
        if invoice["order"] is not None:
            data["order_ref"] = f"ORD-{invoice['order']}"
        out.append(("invoice.issued", f"INV-{n}", data))
        credit = invoice["cents"] * invoice["credit_share"] // 100
        if credit:
            out.append(
                (
                    "invoice.credited",
                    f"CN-{n}",
                    {
                        "currency": "EUR",
                        "amount": _money(credit),
                        "invoice_ref": f"INV-{n}",
                        "issue_date": (TODAY - timedelta(days=5)).isoformat(),
                    },
                )
            )
    for n, invoice in enumerate(history["invoices"]):
        if invoice["order"] is None and invoice["link"] is not None:
            link = {"invoice_ref": f"INV-{n}", "order_ref": f"ORD-{invoice['link']}"}
            out.append(("invoice.linked", f"LINK-{n}", link))
    for n, fates in enumerate(history["shipments"]):
        for k, fate in enumerate(fates):
            shipment = {"order_ref": f"ORD-{n}"}
            out.append(("shipment.dispatched", f"SHP-{n}-{k}", shipment))
            if fate != "in_transit":
                out.append((f"shipment.{fate}", f"SHP-{n}-{k}", shipment))
    return out


def _write(trade: Trade, history: dict[str, Any]) -> None:
    """Append the whole history in one batch, as a marketplace may."""
    occurred_at = format_timestamp(trade.now - timedelta(days=1))
    entries = [
        NewEntry(
            trade.merchant.pk,
            event_parse({"type": t, "ref": ref, "occurred_at": occurred_at, "data": data}),
        )
        for t, ref, data in _events(history)
    ]
    entries_append(source=trade.source, entries=entries, now=trade.now)


def _bounded(face_by_invoice: dict[str, int]) -> None:
    """Sum the faces per order and hold each sum to its order's amount."""
    per_order: dict[str, int] = defaultdict(int)
    linked = dict(
        Invoice.objects.filter(ref__in=list(face_by_invoice)).values_list("ref", "order_ref")
    )
    for ref, face in face_by_invoice.items():
        assert linked[ref], f"{ref} names no order yet was fundable"
        per_order[linked[ref]] += face
    amounts = dict(Order.objects.values_list("ref", "amount_minor"))
    for order_ref, total in per_order.items():
        assert total <= amounts[order_ref], f"{order_ref}: {total} > {amounts[order_ref]}"


def _check(trade: Trade, open_facility: Any, now: datetime, history: dict[str, Any]) -> None:
    with transaction.atomic():
        open_facility(trade.merchant, limit_minor=10**12, debtor_cap_bp=10_000)
        _write(trade, history)

        judged = verdicts(trade.merchant, TODAY)
        eligible = {v.ref: v.face_minor for v in judged if v.eligible}
        try:
            _bounded(eligible)
            if eligible:
                advance = advance_request(
                    merchant=trade.merchant, refs=sorted(eligible), request_key="all", now=now
                )
                held = Assignment.objects.filter(advance=advance).values_list(
                    "invoice_ref", flat=True
                )
                _bounded({ref: eligible[ref] for ref in held})
        finally:
            transaction.set_rollback(True)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories())
def test_fundable_face_of_an_order_never_exceeds_it(
    trade: Trade, open_facility: Any, now: datetime, history: dict[str, Any]
) -> None:
    _check(trade, open_facility, now, history)


TWO_FULL_INVOICES = {
    "orders": [100_000],
    "invoices": [
        {"order": 0, "cents": 100_000, "credit_share": 0, "link": None},
        {"order": 0, "cents": 100_000, "credit_share": 0, "link": None},
    ],
    "shipments": [["delivered"]],
}


def test_negative_control_without_the_order_bound_the_property_fails(
    trade: Trade, open_facility: Any, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    _check(trade, open_facility, now, TWO_FULL_INVOICES)  # holds with the rule
    monkeypatch.setattr(order_evidence, "invoices_beyond_order", lambda **kwargs: {})

    with pytest.raises(AssertionError, match="ORD-0: 200000 > 100000"):
        _check(trade, open_facility, now, TWO_FULL_INVOICES)
