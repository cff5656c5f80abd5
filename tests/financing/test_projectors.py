"""The receivable projector when appending: a supplier's identity costs no query per invoice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from financing.models import Receivable
from ledger.events import event_parse, format_timestamp
from ledger.rebuild import projections_rebuild
from ledger.services import NewEntry, entries_append
from tests.financing.conftest import Trade

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _invoices(trade: Trade, first: int, count: int) -> list[NewEntry]:
    def raw(n: int) -> dict[str, Any]:
        return {
            "type": "invoice.issued",
            "ref": f"INV-P-{n}",
            "occurred_at": format_timestamp(trade.now - timedelta(days=5)),
            "data": {
                "currency": "EUR",
                "amount": "100.00",
                "order_ref": f"ORD-P-{n}",
                "issue_date": (trade.today - timedelta(days=5)).isoformat(),
                "due_date": (trade.today + timedelta(days=45)).isoformat(),
                "debtor": {"kind": "marketplace", "name": "Acme Marketplace"},
            },
        }

    return [NewEntry(trade.merchant.pk, event_parse(raw(n))) for n in range(first, first + count)]


def _queries_to_append(trade: Trade, entries: list[NewEntry]) -> int:
    with CaptureQueriesContext(connection) as queries:
        entries_append(source=trade.source, entries=entries, now=trade.now)
    return len(queries)


def test_a_batch_of_invoices_costs_the_queries_of_one(trade: Trade) -> None:
    entries_append(source=trade.source, entries=_invoices(trade, 0, 1), now=trade.now)  # chain
    one = _queries_to_append(trade, _invoices(trade, 1, 1))
    twenty = _queries_to_append(trade, _invoices(trade, 2, 20))
    forty = _queries_to_append(trade, _invoices(trade, 22, 40))

    assert twenty == forty == one
    assert Receivable.objects.filter(merchant=trade.merchant).count() == 62


def test_a_rebuild_gives_the_fingerprints_the_append_gave(trade: Trade) -> None:
    entries_append(source=trade.source, entries=_invoices(trade, 0, 3), now=trade.now)
    appended = dict(Receivable.objects.values_list("ref", "fingerprint"))

    projections_rebuild()

    assert dict(Receivable.objects.values_list("ref", "fingerprint")) == appended
