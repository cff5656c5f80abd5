"""The hand-written PostgreSQL writes and their ORM fallbacks (SQLite, the demo) agree.

``ledger.writer.entries_write`` and ``financing.books.services.journal_post`` each have one
statement for PostgreSQL beside an ORM route for other databases. Here both run on PostgreSQL
on the same input, one after the other, each rolled back after its rows are read: the rows
must be the same, byte for byte, ids aside.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import DEFAULT_DB_ALIAS, DataError, connection, connections, models, transaction
from django.test.utils import CaptureQueriesContext

from financing.books.models import Account, AccountShard, JournalEntry, Posting
from financing.books.services import Leg, account_open, journal_post
from ledger.models import Chain, Entry, IdempotentRequest, Invoice, Order, Payout, Shipment
from ledger.services import NewEntry, entries_append, entry_append
from ledger.writer import rows_insert, rows_insert_returning
from tests.bench.ledger_bench import EventMaker

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


class _RolledBack(Exception):
    pass


def _rows(model: type[models.Model], *order: str) -> list[tuple[Any, ...]]:
    """Every row of ``model`` without its id; foreign keys to entries as (chain, seq)."""
    rows = []
    for row in model.objects.order_by(*order):
        values = []
        for field in model._meta.concrete_fields:
            if field.primary_key:
                continue
            value = getattr(row, field.attname)
            if field.related_model is Entry:
                entry = Entry.objects.get(pk=value)
                value = (entry.chain_id, entry.seq)
            elif field.related_model is JournalEntry:
                value = JournalEntry.objects.get(pk=value).key
            values.append(bytes(value) if isinstance(value, memoryview) else value)
        rows.append(tuple(values))
    return rows


def _written_by(write: Callable[[], None], *, orm: bool, monkeypatch, read) -> Any:
    """What ``write`` leaves in the tables, taking the ORM route if ``orm``; then undone.

    Asserts which route was taken: only the PostgreSQL statements pass arrays to ``unnest``.
    """
    seen: list[Any] = []
    with monkeypatch.context() as patch:
        if orm:
            # Both modules branch on the vendor's name: any other name takes the ORM route.
            patch.setattr(connections[DEFAULT_DB_ALIAS], "vendor", "orm-fallback")
        try:
            with transaction.atomic():
                with CaptureQueriesContext(connection) as queries:
                    write()
                statements = any("unnest(" in query["sql"] for query in queries.captured_queries)
                assert statements is not orm
                seen.append(read())
                raise _RolledBack
        except _RolledBack:
            pass
    return seen[0]


def test_entries_write_and_its_orm_fallback_write_the_same_rows(
    make_merchant, marketplace, now, monkeypatch
) -> None:
    first, second = make_merchant(), make_merchant()
    entry_append(  # a chain head to continue from, common to both runs
        source=marketplace.code,
        merchant_id=first.pk,
        event=EventMaker.build_serials(range(1000, 1001))[0],
        now=now,
    )
    events = EventMaker.build_serials(range(1, 21))
    single = EventMaker.build_serials(range(100, 101))[0]

    def write() -> None:
        batch = [
            NewEntry(merchant_id=(first, second)[n % 2].pk, event=event)
            for n, event in enumerate(events)
        ]
        entries_append(source=marketplace.code, entries=batch, now=now)
        entry_append(source=marketplace.code, merchant_id=second.pk, event=single, now=now)

    def read() -> dict[str, Any]:
        return {
            "entries": _rows(Entry, "chain_id", "seq"),
            "heads": list(Chain.objects.order_by("pk").values_list("pk", "head_seq", "head_hash")),
            **{m.__name__: _rows(m, "merchant_id", "ref") for m in (Order, Invoice, Shipment)},
            "Payout": _rows(Payout, "merchant_id", "ref"),
        }

    statement = _written_by(write, orm=False, monkeypatch=monkeypatch, read=read)
    fallback = _written_by(write, orm=True, monkeypatch=monkeypatch, read=read)
    assert len(statement["entries"]) == 22
    assert statement["Order"] and statement["Invoice"] and statement["Shipment"]
    assert fallback == statement


def test_a_batch_writes_by_one_statement_text_whatever_order_its_events_come_in(
    make_merchant, marketplace, now
) -> None:
    merchant = make_merchant()
    # Both batches on a head this process wrote, so both take the same route (ledger/writer.py).
    entries_append(
        source=marketplace.code,
        entries=[NewEntry(merchant_id=merchant.pk, event=EventMaker.build_serials(range(0, 1))[0])],
        now=now,
    )
    in_order = EventMaker.build_serials(range(1, 11))  # one of each kind the maker makes
    reversed_ = EventMaker.build_serials(range(11, 21))[::-1]
    assert [e.type for e in in_order] != [e.type for e in reversed_]
    sent: list[str] = []  # statement texts as sent, parameters apart

    def record(execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        sent.append(sql)
        return execute(sql, *args)

    with connection.execute_wrapper(record):
        for events in (in_order, reversed_):
            entries_append(
                source=marketplace.code,
                entries=[NewEntry(merchant_id=merchant.pk, event=event) for event in events],
                now=now,
            )
    texts = [sql for sql in sent if 'INTO "ledger_entry"' in sql]
    assert len(texts) == 2
    assert 'INTO "ledger_order"' in texts[0] and 'INTO "ledger_payout"' in texts[0]
    assert texts[0] == texts[1]


def test_journal_post_and_its_orm_fallback_write_the_same_rows(
    db, now, merchant, monkeypatch
) -> None:
    cash = account_open(code="cash:EUR", name="Cash", kind="asset", currency="EUR")
    fees = account_open(code="fees:EUR", name="Fees", kind="income", currency="EUR")
    loans = account_open(code="loans:EUR", name="Loans", kind="asset", currency="EUR")
    owed = account_open(
        code="owed:EUR", name="Owed", kind="asset", currency="EUR", merchant_id=merchant.pk
    )

    def write() -> None:
        legs = [Leg(cash, -1500), Leg(loans, 1200), Leg(fees, 300)]
        journal_post(key="k-1", memo="three legs", legs=legs, now=now)
        journal_post(key="k-1", memo="three legs", legs=legs[::-1], now=now)  # a repeat
        journal_post(key="k-2", memo="two legs", legs=[Leg(cash, 99), Leg(fees, -99)], now=now)
        # A merchant's: its own account's balance, and its shards of the bank's (new, then moved).
        journal_post(key="k-3", memo="merchant's", legs=[Leg(owed, 70), Leg(cash, -70)], now=now)
        legs = [Leg(cash, 20), Leg(fees, -20)]
        journal_post(key="k-4", memo="for it", legs=legs, now=now, merchant_id=merchant.pk)

    def read() -> dict[str, Any]:
        return {
            "entries": _rows(JournalEntry, "key"),
            "postings": sorted(_rows(Posting)),
            "balances": list(Account.objects.order_by("code").values_list("code", "balance_minor")),
            "shards": sorted(
                AccountShard.objects.values_list("account__code", "merchant_id", "balance_minor")
            ),
        }

    statement = _written_by(write, orm=False, monkeypatch=monkeypatch, read=read)
    fallback = _written_by(write, orm=True, monkeypatch=monkeypatch, read=read)
    assert len(statement["entries"]) == 4 and len(statement["postings"]) == 9
    assert statement["shards"] == [
        ("cash:EUR", merchant.pk, -50),
        ("fees:EUR", merchant.pk, -20),
    ]
    assert fallback == statement


def test_rows_insert_returning_and_its_orm_fallback_write_the_same_rows(
    db, now, monkeypatch
) -> None:
    def write() -> None:
        rows = [
            IdempotentRequest(
                scope=f"scope-{n}",
                key=f"key-{n}",
                fingerprint="f" * 64,
                claimed_at=now,
                response_body=b"{}" if n % 2 else None,
            )
            for n in range(3)
        ]
        rows_insert_returning(rows)
        stored = IdempotentRequest.objects.in_bulk([row.pk for row in rows])
        assert [stored[row.pk].key for row in rows] == ["key-0", "key-1", "key-2"]

    def read() -> list[tuple[Any, ...]]:
        return _rows(IdempotentRequest, "key")

    statement = _written_by(write, orm=False, monkeypatch=monkeypatch, read=read)
    fallback = _written_by(write, orm=True, monkeypatch=monkeypatch, read=read)
    assert len(statement) == 3
    assert fallback == statement


@pytest.mark.parametrize("rows", [1, 3], ids=["one row's values", "arrays of rows"])
def test_a_value_too_long_for_its_column_is_refused_not_cut_short(db, now, rows) -> None:
    # The statement's casts carry no length (an explicit cast to varchar(255) would cut the
    # value to fit in silence): the column's own length refuses it, and nothing is written.
    # rows_insert sends one row as plain values (ARRAY[%b::varchar]), more as arrays.
    too_long = "k" * (IdempotentRequest._meta.get_field("key").max_length + 1)
    batch = [
        IdempotentRequest(scope="s", key=key, fingerprint="f" * 64, claimed_at=now)
        for key in [f"fits-{n}" for n in range(rows - 1)] + [too_long]
    ]
    with pytest.raises(DataError, match="too long"), transaction.atomic():
        rows_insert(batch)
    assert not IdempotentRequest.objects.exists()
