"""What an append costs in statements, and what it leaves of a caller's transaction.

An append whose events no projector handles (the capital flow: repayments, disbursements) is a
chain lock and one write inside a caller's transaction, without a savepoint: the write finds an
idempotency key used before and writes nothing, instead of failing and being rolled back to a
savepoint. A refusal then still leaves the caller's transaction usable. Events that projectors
handle keep their savepoint, since a projector may refuse one after its entry is written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from ledger import locks
from ledger.events import event_parse
from ledger.exceptions import EventConflict, IdempotencyKeyReused
from ledger.models import Chain, Entry, Invoice, Order
from ledger.services import NewEntry, Receipt, entries_append, entry_append
from tests.bench._setup import repayment_event
from tests.conftest import order_placed

pytestmark = pytest.mark.django_db


def _repaid(ref: str, now, amount: str = "10.00") -> Any:
    return repayment_event(ref, now, amount)


def _statements(work: Callable[[], object]) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        work()
    return [query["sql"] for query in queries.captured_queries]


@pytest.mark.postgres
@pytest.mark.parametrize("head_known", [True, False])
def test_inside_a_transaction_an_append_without_projectors_is_a_lock_and_one_write(
    head_known, merchant, now, monkeypatch
) -> None:
    """On a head this process wrote, the write takes the lock itself (ledger/writer.py)."""
    entry_append(source="bank", merchant_id=merchant.pk, event=_repaid("R-0", now), now=now)
    if not head_known:
        monkeypatch.setattr(locks, "_known_heads", {})  # as in a process new to the chain
    with transaction.atomic():
        statements = _statements(
            lambda: entry_append(
                source="bank", merchant_id=merchant.pk, event=_repaid("R-1", now), now=now
            )
        )
    if head_known:
        assert len(statements) == 1, statements
        assert "UPDATE ledger_chain" in statements[0] and "FOR UPDATE OF c" in statements[0]
    else:
        assert len(statements) == 2, statements
        assert statements[0].startswith("SELECT c.merchant_id") and "FOR UPDATE" in statements[0]
    assert not any("SAVEPOINT" in sql for sql in statements)


@pytest.mark.postgres
def test_an_append_with_projectors_keeps_its_savepoint(merchant, marketplace, now) -> None:
    with transaction.atomic():
        statements = _statements(
            lambda: entry_append(
                source=marketplace.code, merchant_id=merchant.pk, event=order_placed(), now=now
            )
        )
    assert statements[0].startswith("SAVEPOINT") and statements[-1].startswith("RELEASE")


@pytest.mark.postgres
def test_a_payouts_own_row_goes_in_with_its_entry(merchant, marketplace, now) -> None:
    payout = {
        "type": "payout.settled",
        "ref": "PAY-1",
        "occurred_at": "2026-10-15T10:00:00Z",
        "data": {"currency": "EUR", "amount": "5.00", "settled_on": "2026-10-15", "lines": []},
    }
    statements = _statements(
        lambda: entry_append(
            source=marketplace.code, merchant_id=merchant.pk, event=event_parse(payout), now=now
        )
    )
    assert not any(sql.startswith('INSERT INTO "ledger_payout"') for sql in statements)
    assert any("ledger_payout" in sql and "ledger_entry" in sql for sql in statements)


@pytest.mark.sqlite_smoke
def test_a_replay_inside_a_transaction_gives_the_receipt_and_the_transaction_goes_on(
    merchant, now
) -> None:
    with transaction.atomic():
        first = entry_append(
            source="bank", merchant_id=merchant.pk, event=_repaid("R", now), now=now
        )
        again = entry_append(
            source="bank", merchant_id=merchant.pk, event=_repaid("R", now), now=now
        )
        after = entry_append(
            source="bank", merchant_id=merchant.pk, event=_repaid("R-2", now), now=now
        )
    assert again == first
    assert (first.seq, after.seq) == (1, 2)
    assert Entry.objects.count() == 2


@pytest.mark.sqlite_smoke
def test_a_reused_key_inside_a_transaction_is_refused_and_leaves_it_usable(merchant, now) -> None:
    with transaction.atomic():
        entry_append(source="bank", merchant_id=merchant.pk, event=_repaid("R", now), now=now)
        with pytest.raises(IdempotencyKeyReused):
            entry_append(
                source="bank",
                merchant_id=merchant.pk,
                event=_repaid("R", now, amount="11.00"),
                now=now,
            )
        after = entry_append(
            source="bank", merchant_id=merchant.pk, event=_repaid("R-2", now), now=now
        )
    assert after.seq == 2
    assert Entry.objects.count() == 2
    assert Chain.objects.get(pk=merchant.pk).head_seq == 2


@pytest.mark.sqlite_smoke
def test_a_projector_refusal_inside_a_transaction_rolls_back_to_its_savepoint(
    merchant, marketplace, now
) -> None:
    with transaction.atomic():
        entry_append(
            source=marketplace.code, merchant_id=merchant.pk, event=order_placed("O-1"), now=now
        )
        with pytest.raises(EventConflict):  # a second order under one ref, another key
            entry_append(
                source=marketplace.code,
                merchant_id=merchant.pk,
                event=order_placed("O-1", amount="5.00"),
                idempotency_key="another",
                now=now,
            )
        entry_append(source="bank", merchant_id=merchant.pk, event=_repaid("R", now), now=now)
    assert list(Entry.objects.order_by("seq").values_list("seq", "type")) == [
        (1, "order.placed"),
        (2, "advance.repaid"),
    ]
    assert Order.objects.count() == 1


class _RolledBack(Exception):
    pass


def _replays_written(merchant, marketplace, now, *, orm: bool, monkeypatch) -> Any:
    """Receipts and rows of appends that mix replays, in-batch repeats and new events."""
    seen: list[Any] = []
    with monkeypatch.context() as patch:
        if orm:
            patch.setattr(connections[DEFAULT_DB_ALIAS], "vendor", "orm-fallback")
        try:
            with transaction.atomic():
                receipts: list[Receipt] = []
                for refs in (["A", "B"], ["B", "C", "A", "C", "D"], ["D"]):
                    batch = [NewEntry(merchant.pk, order_placed(ref)) for ref in refs]
                    batch += [NewEntry(merchant.pk, _repaid(f"R-{ref}", now)) for ref in refs]
                    receipts += entries_append(source=marketplace.code, entries=batch, now=now)
                rows = list(
                    Entry.objects.order_by("seq").values_list(
                        "seq",
                        "type",
                        "external_ref",
                        "idempotency_key",
                        "prev_hash",
                        "hash",
                        "body",
                    )
                )
                seen.append((receipts, [(*row[:-1], bytes(row[-1])) for row in rows]))
                raise _RolledBack
        except _RolledBack:
            pass
    return seen[0]


@pytest.mark.postgres
def test_both_write_paths_answer_replays_alike(merchant, marketplace, now, monkeypatch) -> None:
    statement = _replays_written(merchant, marketplace, now, orm=False, monkeypatch=monkeypatch)
    fallback = _replays_written(merchant, marketplace, now, orm=True, monkeypatch=monkeypatch)
    receipts, rows = statement
    assert len(rows) == 8  # A, B, C, D and their repayments, once each
    assert len(receipts) == 2 * (2 + 5 + 1)
    assert fallback == statement


def _invoice(ref: str, amount: str = "100.00", currency: str = "EUR") -> Any:
    data = {
        "currency": currency,
        "amount": amount,
        "issue_date": "2026-10-01",
        "due_date": "2026-11-30",
        "debtor": {"kind": "business", "name": "Buyer GmbH", "tax_id": "DE200000001"},
    }
    raw = {"type": "invoice.issued", "ref": ref, "occurred_at": "2026-10-01T10:00:00Z"}
    return event_parse(raw | {"data": data})


@pytest.mark.sqlite_smoke
def test_a_payout_pays_the_invoices_its_lines_name_in_its_currency(
    merchant, marketplace, now
) -> None:
    invoices = [_invoice("I-1"), _invoice("I-2"), _invoice("I-3", currency="USD")]
    lines = [("I-1", "10.00"), ("I-2", "20.00"), ("I-1", "5.50"), ("I-3", "1.00"), ("I-9", "2")]
    payout = {
        "type": "payout.settled",
        "ref": "PAY-1",
        "occurred_at": "2026-10-15T10:00:00Z",
        "data": {
            "currency": "EUR",
            "amount": "38.50",
            "settled_on": "2026-10-15",
            "lines": [{"invoice_ref": ref, "amount": amount} for ref, amount in lines],
        },
    }
    batch = [NewEntry(merchant.pk, event) for event in [*invoices, event_parse(payout)]]
    entries_append(source=marketplace.code, entries=batch, now=now)

    paid = dict(Invoice.objects.values_list("ref", "paid_minor"))
    assert paid == {"I-1": 1550, "I-2": 2000, "I-3": 0}
