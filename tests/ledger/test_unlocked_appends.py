"""Appends on a head this process wrote: the write takes the chain's lock itself.

The entries are built on the remembered head and the write moves the head only if the chain
still ends there and its merchant is as remembered (ledger/writer.py); otherwise it writes
nothing and reads the head as it stands. Outside a transaction that one statement is the whole
append, so these tests commit (``transaction=True``); inside one it spares the lock statement,
while remembered heads are mostly found where they were left. The forked writers of
test_concurrent_appends.py race it.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from ledger.events import ValidEvent, event_parse
from ledger.exceptions import EventInvalid
from ledger.locks import (
    PROBE_EVERY,
    head_known,
    heads_remember,
    remembered_head_found,
    remembered_heads_pay,
)
from ledger.models import Chain, Entry, Invoice, Order
from ledger.projections.registry import rows_only
from ledger.services import Receipt, entry_append
from merchants.models import Merchant
from tests.conftest import order_placed

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _statements(work: Callable[[], object]) -> tuple[Any, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        result = work()
    return result, [query["sql"] for query in queries.captured_queries]


def _order(merchant: Merchant, marketplace: Any, now: Any, ref: str) -> Receipt:
    return entry_append(
        source=marketplace.code, merchant_id=merchant.pk, event=order_placed(ref), now=now
    )


def _counted(
    merchant: Merchant, marketplace: Any, now: Any, ref: str, *, in_transaction: bool = False
) -> tuple[Receipt, list[str]]:
    """Append order ``ref`` (in a transaction of its own, or none) and its statements."""
    if not in_transaction:
        return _statements(lambda: _order(merchant, marketplace, now, ref))
    with transaction.atomic():
        return _statements(lambda: _order(merchant, marketplace, now, ref))


def _kinds(statements: list[str]) -> list[str]:
    """ "compared" (a write on a remembered head, ledger/writer.py), "lock" (chains_lock),
    "write" (an append's write on a locked head), or the statement's first word."""
    return [
        "compared"
        if "fresh AS" in sql
        else "lock"
        if sql.startswith("SELECT c.merchant_id")
        else "write"
        if sql.startswith("WITH earlier")
        else sql.split()[0]
        for sql in statements
    ]


def _committed(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """Read through a connection of its own: what another process sees, committed only."""
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
    ) as other:
        return other.execute(sql, params).fetchall()


def _assert_chain_sound(merchant_id: int, length: int) -> None:
    rows = list(
        Entry.objects.filter(chain=merchant_id)
        .order_by("seq")
        .values_list("seq", "prev_hash", "hash")
    )
    assert [seq for seq, _, _ in rows] == list(range(1, length + 1))
    for (_, _, earlier), (_, prev, _) in pairwise(rows):
        assert prev == earlier
    head = Chain.objects.get(pk=merchant_id)
    assert (head.head_seq, head.head_hash) == (length, rows[-1][2])


def _invoice(ref: str, supplier_tax_id: str) -> ValidEvent:
    return event_parse(
        {
            "type": "invoice.issued",
            "ref": ref,
            "occurred_at": "2026-10-01T10:00:00Z",
            "data": {
                "currency": "EUR",
                "amount": "119.00",
                "issue_date": "2026-10-01",
                "due_date": "2026-10-31",
                "debtor": {
                    "kind": "business",
                    "name": "Buyer GmbH",
                    "tax_id": "DE200000001",
                    "country": "DE",
                },
                "supplier_tax_id": supplier_tax_id,
            },
        }
    )


def _invoice_append(
    merchant: Merchant, marketplace: Any, now: Any, ref: str, supplier_tax_id: str
) -> Receipt:
    return entry_append(
        source=marketplace.code,
        merchant_id=merchant.pk,
        event=_invoice(ref, supplier_tax_id),
        now=now,
    )


def test_an_append_on_a_head_this_process_wrote_is_one_committed_statement(
    merchant, marketplace, now
) -> None:
    first = _order(merchant, marketplace, now, "ORD-1")

    second, statements = _counted(merchant, marketplace, now, "ORD-2")

    assert _kinds(statements) == ["compared"], statements  # no BEGIN, no lock, no COMMIT
    assert not connection.in_atomic_block
    # Committed as it returned: another connection sees the entry, its order row and the head.
    assert _committed(
        "SELECT e.seq, e.prev_hash, e.hash, c.head_seq, c.head_hash FROM ledger_entry e"
        " JOIN ledger_chain c ON c.merchant_id = e.chain_id"
        " JOIN ledger_order o ON o.entry_id = e.id"
        " WHERE e.chain_id = %s AND e.seq = 2",
        [merchant.pk],
    ) == [(2, first.hash, second.hash, 2, second.hash)]
    assert Order.objects.filter(merchant=merchant, ref="ORD-2").exists()
    _assert_chain_sound(merchant.pk, 2)


def test_a_head_moved_elsewhere_writes_nothing_and_the_locked_append_takes_over(
    merchant, marketplace, now
) -> None:
    _order(merchant, marketplace, now, "ORD-1")
    stale = head_known(merchant.pk)
    _order(merchant, marketplace, now, "ORD-2")
    heads_remember([stale])  # as if another process had appended ORD-2 since this one's last

    receipt, statements = _counted(merchant, marketplace, now, "ORD-3")

    # The first wrote nothing and read the head as it stands; the second built on that one.
    assert _kinds(statements) == ["compared", "compared"], statements
    assert receipt.seq == 3
    # One order row, the second statement's: the first's projection insert took no entry.
    orders = Order.objects.filter(merchant=merchant, ref="ORD-3")
    assert list(orders.values_list("entry__seq", flat=True)) == [3]
    _assert_chain_sound(merchant.pk, 3)
    assert head_known(merchant.pk).head_hash == receipt.hash  # remembered again


def test_a_repeated_event_on_a_known_head_returns_its_receipt_and_writes_nothing(
    merchant, marketplace, now
) -> None:
    original = _order(merchant, marketplace, now, "ORD-1")
    _order(merchant, marketplace, now, "ORD-2")

    again, statements = _counted(merchant, marketplace, now, "ORD-1")

    assert again == original
    assert _kinds(statements) == ["compared"], statements
    _assert_chain_sound(merchant.pk, 2)


@pytest.fixture
def merchant_changed(make_merchant, marketplace, now) -> Merchant:
    """A merchant whose tax id changed after this process appended to its chain."""
    merchant = make_merchant(tax_id="DE123456789")
    _order(merchant, marketplace, now, "ORD-1")
    changed = Merchant.objects.get(pk=merchant.pk)
    changed.tax_id = "DE987654321"
    changed.save()
    return merchant


def test_a_merchant_changed_since_its_head_was_remembered_is_read_again(
    merchant_changed, marketplace, now
) -> None:
    """The supplier check runs on the remembered tax id; the write compares it with the row."""
    merchant = merchant_changed
    with pytest.raises(EventInvalid):  # names the old tax id: refused on the row as it is now
        _invoice_append(merchant, marketplace, now, "INV-1", "DE123456789")
    receipt = _invoice_append(merchant, marketplace, now, "INV-2", "DE987654321")

    assert receipt.seq == 2
    assert list(Invoice.objects.filter(merchant=merchant).values_list("ref", flat=True)) == [
        "INV-2"
    ]
    _assert_chain_sound(merchant.pk, 2)


def test_only_events_whose_projectors_only_add_rows_go_without_a_transaction() -> None:
    assert rows_only(["order.placed", "invoice.issued", "shipment.dispatched"])
    assert not rows_only(["payout.settled"])  # pays invoices after its entry is written
    assert not rows_only(["order.placed", "payout.settled"])


def test_inside_a_transaction_the_write_on_a_known_head_takes_the_lock(
    merchant, marketplace, now
) -> None:
    _order(merchant, marketplace, now, "ORD-1")
    receipt, statements = _counted(merchant, marketplace, now, "ORD-2", in_transaction=True)
    assert receipt.seq == 2
    assert _kinds(statements) == ["SAVEPOINT", "compared", "RELEASE"], statements
    _assert_chain_sound(merchant.pk, 2)


def test_inside_a_transaction_a_stale_head_costs_no_statement_more_than_the_lock(
    merchant, marketplace, now
) -> None:
    """The compared write that finds the chain moved on locks it and reads its head, in place
    of chains_lock: then the write, as before."""
    _order(merchant, marketplace, now, "ORD-1")
    stale = head_known(merchant.pk)
    _order(merchant, marketplace, now, "ORD-2")
    heads_remember([stale])
    receipt, statements = _counted(merchant, marketplace, now, "ORD-3", in_transaction=True)
    assert receipt.seq == 3
    assert _kinds(statements) == ["SAVEPOINT", "compared", "write", "RELEASE"], statements
    _assert_chain_sound(merchant.pk, 3)


def test_inside_a_transaction_a_refusal_on_a_remembered_merchant_is_decided_on_the_row(
    merchant_changed, marketplace, now
) -> None:
    merchant = merchant_changed
    with transaction.atomic():
        receipt = _invoice_append(merchant, marketplace, now, "INV-2", "DE987654321")

    assert receipt.seq == 2
    _assert_chain_sound(merchant.pk, 2)


def test_inside_a_transaction_remembered_heads_are_tried_only_while_they_pay() -> None:
    """Mostly stale (other processes write the same chains): the lock first, but a probe every
    PROBE_EVERY appends; mostly found again: tried every time."""
    assert remembered_heads_pay()
    for _ in range(4):
        remembered_head_found(False)
    tries = [remembered_heads_pay() for _ in range(2 * PROBE_EVERY)]
    assert tries.count(True) == 2 and tries[PROBE_EVERY - 1] and tries[-1]
    for _ in range(4):
        remembered_head_found(True)
    assert all(remembered_heads_pay() for _ in range(PROBE_EVERY))


def test_inside_a_transaction_stale_heads_make_appends_take_the_lock_first(
    merchant, marketplace, now
) -> None:
    for _ in range(4):
        remembered_head_found(False)
    _order(merchant, marketplace, now, "ORD-1")
    _, statements = _counted(merchant, marketplace, now, "ORD-2", in_transaction=True)
    assert _kinds(statements) == ["SAVEPOINT", "lock", "write", "RELEASE"], statements
