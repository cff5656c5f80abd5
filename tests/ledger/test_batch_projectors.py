"""Batch projectors: a batch of payouts is projected in a few statements, and to exactly what
projecting its entries one by one (as ``rebuild_projections`` does) gives."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from ledger.events import event_parse
from ledger.models import Invoice
from ledger.projections import projectors
from ledger.rebuild import projections_rebuild
from ledger.services import NewEntry, entries_append


def _event(type_: str, ref: str, data: dict[str, Any]) -> Any:
    raw = {"type": type_, "ref": ref, "occurred_at": "2026-10-01T10:00:00Z", "data": data}
    return event_parse(raw)


def _invoice(ref: str) -> Any:
    return _event(
        "invoice.issued",
        ref,
        {
            "currency": "EUR",
            "amount": "100.00",
            "issue_date": "2026-10-01",
            "due_date": "2026-11-30",
            "debtor": {"kind": "marketplace", "name": "Acme"},
        },
    )


def _payout(ref: str, *lines: tuple[str, str], currency: str = "EUR") -> Any:
    total = sum(int(amount.replace(".", "")) for _, amount in lines)
    return _event(
        "payout.settled",
        ref,
        {
            "currency": currency,
            "amount": f"{total // 100}.{total % 100:02d}",
            "settled_on": "2026-10-01",
            "lines": [{"invoice_ref": invoice, "amount": amount} for invoice, amount in lines],
        },
    )


def _paid() -> dict[str, int]:
    return dict(Invoice.objects.order_by("ref").values_list("ref", "paid_minor"))


@pytest.mark.sqlite_smoke
@pytest.mark.django_db
def test_a_payout_pays_only_the_invoices_issued_before_it_even_within_one_batch(
    merchant, marketplace, now
) -> None:
    events = [
        _invoice("INV-A"),
        _payout("PO-1", ("INV-A", "10.00"), ("INV-B", "5.00"), ("INV-NONE", "1.00")),
        _invoice("INV-B"),
        _payout("PO-2", ("INV-A", "2.50"), ("INV-B", "7.00")),
        _payout("PO-3", ("INV-A", "3.00"), currency="USD"),  # not the invoice's currency
    ]
    entries_append(
        source=marketplace.code, entries=[NewEntry(merchant.pk, e) for e in events], now=now
    )

    assert _paid() == {"INV-A": 1250, "INV-B": 700}
    report = projections_rebuild()  # entry by entry, in chain order
    assert report.differences == []
    assert _paid() == {"INV-A": 1250, "INV-B": 700}


@pytest.mark.django_db
def test_the_queries_of_a_batch_of_payouts_do_not_grow_with_its_size(
    merchant, marketplace, now
) -> None:
    invoices = [_invoice(f"INV-{n}") for n in range(60)]
    entries_append(
        source=marketplace.code, entries=[NewEntry(merchant.pk, e) for e in invoices], now=now
    )

    def queries_of(payouts: range) -> int:
        batch = [
            NewEntry(
                merchant.pk, _payout(f"PO-{n}", (f"INV-{n}", "1.00"), (f"INV-{n + 1}", "2.00"))
            )
            for n in payouts
        ]
        with CaptureQueriesContext(connection) as captured:
            entries_append(source=marketplace.code, entries=batch, now=now)
        return len(captured)

    # Ten or more each: below ten entries the write runs on its generic plan, which two
    # statements more set and reset in its round trip (ledger.sql.generic_plans).
    assert queries_of(range(0, 10)) == queries_of(range(10, 55))
    assert Invoice.objects.get(ref="INV-5").paid_minor == 300  # PO-4's second line, PO-5's first


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_one_statement_and_the_orm_fallback_pay_the_same_invoices(
    make_merchant, marketplace, now
) -> None:
    """SQLite takes the ORM route to what PostgreSQL does in one UPDATE; both, on one batch."""
    first, second = make_merchant(), make_merchant()
    for merchant in (first, second):  # the same refs at both: each pays only its own
        entries_append(
            source=marketplace.code,
            entries=[NewEntry(merchant.pk, _invoice(f"INV-{n}")) for n in range(1, 4)],
            now=now,
        )  # issued at seqs 1, 2, 3
    lines = [
        (first.pk, "INV-1", 4, "EUR", 1000),
        (first.pk, "INV-1", 5, "EUR", 250),  # two lines to one invoice add up
        (first.pk, "INV-2", 2, "EUR", 700),  # the payout at seq 2 comes before INV-2: not paid
        (first.pk, "INV-3", 9, "USD", 300),  # another currency: not paid
        (first.pk, "INV-9", 9, "EUR", 100),  # no such invoice
        (second.pk, "INV-2", 4, "EUR", 40),
    ]

    def paid_by(route: Any) -> dict[tuple[int, str], int]:
        with transaction.atomic():
            route(lines)
            paid = {
                (merchant_id, ref): minor
                for merchant_id, ref, minor in Invoice.objects.values_list(
                    "merchant_id", "ref", "paid_minor"
                )
            }
            transaction.set_rollback(True)
        return paid

    expected = {(m.pk, f"INV-{n}"): 0 for m in (first, second) for n in range(1, 4)}
    expected |= {(first.pk, "INV-1"): 1250, (second.pk, "INV-2"): 40}
    assert paid_by(projectors._invoices_paid_sql) == expected
    assert paid_by(projectors._invoices_paid_orm) == expected
