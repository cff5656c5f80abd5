"""rebuild_projections replays the chains into the read models and reports any drift."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from ledger.events import event_parse
from ledger.models import Invoice, Order, Shipment
from ledger.services import NewEntry, entries_append


def _event(type_: str, ref: str, data: dict) -> NewEntry:
    raw = {"type": type_, "ref": ref, "occurred_at": "2026-10-01T10:00:00Z", "data": data}
    return event_parse(raw)


@pytest.fixture
def history(merchant, marketplace, now) -> None:
    invoice = {
        "currency": "EUR",
        "amount": "80.00",
        "order_ref": "O-1",
        "issue_date": "2026-10-01",
        "due_date": "2026-11-30",
        "debtor": {"kind": "marketplace", "name": "Acme"},
    }
    events = [
        _event("order.placed", "O-1", {"currency": "EUR", "amount": "100.00"}),
        _event("order.placed", "O-2", {"currency": "EUR", "amount": "20.00"}),
        _event("order.cancelled", "O-2", {}),
        _event("invoice.issued", "I-1", invoice),
        _event(
            "invoice.credited",
            "CN-1",
            {
                "currency": "EUR",
                "amount": "30.00",
                "invoice_ref": "I-1",
                "issue_date": "2026-10-02",
            },
        ),
        _event("shipment.dispatched", "S-1", {"order_ref": "O-1", "carrier": "DHL"}),
        _event("shipment.delivered", "S-1", {"order_ref": "O-1"}),
    ]
    entries_append(
        source=marketplace.code, entries=[NewEntry(merchant.pk, e) for e in events], now=now
    )


def _rebuild(capsys, *args: str) -> tuple[int, str]:
    try:
        call_command("rebuild_projections", *args)
    except SystemExit as exit_:
        return int(exit_.code or 0), capsys.readouterr().out
    return 0, capsys.readouterr().out


@pytest.mark.sqlite_smoke
@pytest.mark.django_db
def test_rebuild_of_a_faithful_projection_changes_nothing(history, capsys) -> None:
    code, output = _rebuild(capsys)
    assert code == 0
    # 2 orders, 1 invoice, 1 shipment, and financing's receivable for the invoice
    assert "Replayed 7 entries into 5 projection rows; 0 row(s) changed." in output
    assert Order.objects.get(ref="O-2").status == "cancelled"
    invoice = Invoice.objects.get(ref="I-1")
    assert (invoice.credited_minor, invoice.status) == (3000, "partially_credited")
    assert Shipment.objects.get(ref="S-1").status == "delivered"


@pytest.mark.django_db
def test_drift_is_reported_and_repaired(history, capsys) -> None:
    Order.objects.filter(ref="O-1").update(amount_minor=999)  # drift, as a bug might cause
    Shipment.objects.filter(ref="S-1").delete()

    code, output = _rebuild(capsys)

    assert code == 1
    assert "ledger.Order (" in output and "amount_minor 999 -> 10000" in output
    assert "ledger.Shipment" in output and "missing before the rebuild, now present" in output
    assert "2 row(s) changed" in output
    assert Order.objects.get(ref="O-1").amount_minor == 10000
    assert Shipment.objects.filter(ref="S-1").exists()


@pytest.mark.django_db
def test_dry_run_reports_without_repairing(history, capsys) -> None:
    Order.objects.filter(ref="O-1").update(amount_minor=999)
    code, output = _rebuild(capsys, "--dry-run")
    assert code == 1 and "1 row(s) would change" in output
    assert Order.objects.get(ref="O-1").amount_minor == 999
