"""``models_read`` loads rows as the ORM does, on PostgreSQL and on SQLite (the demo's database).

The evidence reads of every verdict go through it (financing.eligibility, order_evidence): the
rules compare dates, amounts and flags, so a value of another type (SQLite's text for a date)
would change a verdict without failing it.
"""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import transaction
from django.db.models import Model

from financing.books.models import Account
from financing.locks import advance_decision_lock
from financing.models import Advance, Assignment, Facility, Receivable
from financing.order_evidence import (
    OrderEvidence,
    OrderInvoice,
    invoices_beyond_order,
    orders_evidence_later,
)
from ledger.models import Entry, Invoice, Order, Payout, Shipment
from ledger.sql import models_read
from merchants.models import Merchant
from tests.financing.conftest import Trade

# Dates, datetimes, decimals, booleans, JSON, nullable foreign keys and choices between them.
MODELS: list[type[Model]] = [
    Merchant,
    Entry,
    Order,
    Invoice,
    Shipment,
    Payout,
    Receivable,
    Facility,
    Advance,
    Assignment,
    Account,
]


def _loaded(instance: Model) -> list[tuple[str, type, Any]]:
    """Every concrete field's value as loaded, with its type."""
    values = []
    for field in instance._meta.concrete_fields:
        value = getattr(instance, field.attname)
        values.append((field.attname, type(value), value))
    return values


@pytest.mark.sqlite_smoke
@pytest.mark.django_db
def test_models_read_loads_every_row_as_the_orm_does() -> None:
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_financing_demo", stdout=StringIO())

    for model in MODELS:
        by_orm = sorted(model.objects.all(), key=lambda instance: instance.pk)
        read = sorted(models_read(model, "1 = 1", []), key=lambda instance: instance.pk)

        assert by_orm, f"the demo has no {model.__name__}: nothing compared"
        assert [_loaded(i) for i in read] == [_loaded(i) for i in by_orm], model.__name__
        assert all(not i._state.adding and i._state.db == "default" for i in read)


@pytest.mark.django_db
def test_models_read_keeps_to_its_condition(trade: Trade) -> None:
    trade.order("ORD-1", amount="100.00")
    trade.order("ORD-2", amount="200.00")

    read = models_read(Order, "merchant_id = %s AND ref = %s", [trade.merchant.pk, "ORD-2"])

    assert [(o.ref, o.amount_minor) for o in read] == [("ORD-2", 20000)]


@pytest.mark.sqlite_smoke
@pytest.mark.django_db
def test_a_decision_lock_reads_what_the_orm_reads() -> None:
    """``advance_decision_lock`` joins three models and two (``models_joined_read_later``): each
    instance as the ORM loads it, with the relations a decision follows set on it."""
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_financing_demo", stdout=StringIO())
    advances = Advance.objects.select_related("facility", "merchant").order_by("pk")
    assert any(advance.assignments.exists() for advance in advances), "nothing to compare"

    for by_orm in advances:
        with transaction.atomic():
            locked = advance_decision_lock(by_orm.pk)
        assignments = Assignment.objects.filter(advance=by_orm).select_related("debtor")

        assert _loaded(locked) == _loaded(by_orm)
        assert _loaded(locked.facility) == _loaded(by_orm.facility)
        assert _loaded(locked.merchant) == _loaded(by_orm.merchant)
        assert [(_loaded(a), _loaded(a.debtor)) for a in locked.assignments_by_id()] == [
            (_loaded(a), _loaded(a.debtor)) for a in assignments.order_by("pk")
        ]
        assert all(a.advance is locked for a in locked.assignments_by_id())


@pytest.mark.django_db
def test_a_decision_lock_of_no_advance_says_so() -> None:
    with pytest.raises(Advance.DoesNotExist), transaction.atomic():
        advance_decision_lock(10**9)


@pytest.mark.sqlite_smoke
@pytest.mark.django_db
def test_changes_save_writes_the_changed_fields_as_save_would() -> None:
    """``Advance.changes_save`` (``row_update``): what it writes reads back as set, values of
    every type prepared as the ORM's save prepares them, and the fields left alone are not
    written (a change made behind the instance's back survives)."""
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_financing_demo", stdout=StringIO())
    advance = Advance.objects.exclude(approved_by=None).select_related("approved_by").first()
    assert advance is not None, "the demo has no approved advance"
    other = Advance.objects.exclude(pk=advance.pk).first()
    assert other is not None
    Advance.objects.filter(pk=advance.pk).update(merchant_note="changed behind its back")

    advance.status = Advance.Status.REPAID
    advance.repaid_at = advance.disbursed_at or advance.requested_at
    advance.due_date = advance.due_date.replace(day=1)
    advance.apr += 1
    advance.decision_note = "rewritten"
    advance.authorized_by = User.objects.create_user("checker")  # a relation, as an object
    advance.risk_factors.append({"code": "TEST"})  # a JSON list changed in place
    with transaction.atomic():
        advance.changes_save()

    # Values, not types: the instance holds the status as set, an enum member, the row a str.
    stored = {name: value for name, _, value in _loaded(Advance.objects.get(pk=advance.pk))}
    written = {name: value for name, _, value in _loaded(advance)}
    assert stored.pop("merchant_note") == "changed behind its back"
    written.pop("merchant_note")
    assert stored == written
    assert stored["risk_factors"][-1] == {"code": "TEST"}
    assert _loaded(Advance.objects.get(pk=other.pk)) == _loaded(other)  # one row only


@pytest.mark.sqlite_smoke
@pytest.mark.django_db
def test_the_orders_evidence_reads_what_the_orm_reads() -> None:
    """``orders_evidence_later`` reads shipments and invoices in one statement (a kind per row, the
    other kind's columns empty): each order's shipments by state and its invoices in the order
    they joined it, as the ORM would read them."""
    call_command("seed_demo", stdout=StringIO())
    shipment = Shipment.objects.select_related("merchant").first()
    assert shipment is not None, "the demo has no shipment"
    merchant = shipment.merchant
    order = Order.objects.get(merchant=merchant, ref=shipment.order_ref)
    # One more invoice on the order, joined after the others and larger than the order: it
    # comes last, and does not fit.
    invoice = Invoice.objects.filter(merchant=merchant, order_ref=order.ref).first()
    assert invoice is not None, "the demo's shipped order has no invoice"
    linked = max(i.order_linked_seq or 0 for i in Invoice.objects.filter(merchant=merchant))
    late = Invoice.objects.get(pk=invoice.pk)
    late.pk, late.ref, late.order_linked_seq = None, f"{invoice.ref}-LATE", linked + 1
    late.amount_minor, late.credited_minor = order.amount_minor + 1, 0
    late.entry = Entry.objects.filter(chain_id=merchant.pk).last()
    late.save()
    refs = [*Order.objects.filter(merchant=merchant).values_list("ref", flat=True), "ORD-NONE"]

    evidence = orders_evidence_later(merchant=merchant, order_refs=refs)()

    for ref in refs:
        shipments = Shipment.objects.filter(merchant=merchant, order_ref=ref).order_by("ref")
        by_state: dict[str, list[str]] = {"delivered": [], "in_transit": [], "returned": []}
        for shipment in shipments:
            state = (
                "returned"
                if shipment.returned_at
                else "delivered"
                if shipment.delivered_at
                else "in_transit"
            )
            by_state[state].append(shipment.ref)
        on_order = Invoice.objects.filter(merchant=merchant, order_ref=ref)
        invoices = [
            OrderInvoice(i.ref, i.currency, i.amount_minor - i.credited_minor)
            for i in on_order.order_by("order_linked_seq", "ref")
        ]
        found = Order.objects.filter(merchant=merchant, ref=ref).first()
        excess = (
            invoices_beyond_order(
                order_minor=found.amount_minor, currency=found.currency, invoices=invoices
            )
            if found is not None
            else {}
        )
        assert evidence[ref] == OrderEvidence(
            order=found,
            delivered=tuple(by_state["delivered"]),
            in_transit=tuple(by_state["in_transit"]),
            returned=tuple(by_state["returned"]),
            excess=excess,
        ), ref
    assert evidence[order.ref].shipped
    assert late.ref in evidence[order.ref].excess
