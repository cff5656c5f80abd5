"""Entries are append-only in the database itself: UPDATE, DELETE and TRUNCATE are refused."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from ledger.models import Entry
from ledger.services import entry_append
from tests.conftest import order_placed

STATEMENTS = {
    "update": "UPDATE ledger_entry SET external_ref = 'forged'",
    "delete": "DELETE FROM ledger_entry",
    "delete one": "DELETE FROM ledger_entry WHERE seq = 1",
}


@pytest.fixture
def entries(merchant, marketplace, now) -> None:
    for n in range(3):
        entry_append(
            source=marketplace.code, merchant_id=merchant.pk, event=order_placed(f"O-{n}"), now=now
        )


def _refused(sql: str) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("sql", STATEMENTS.values())
def test_postgres_refuses_rewriting_entries(entries: None, sql: str) -> None:
    _refused(sql)
    assert list(Entry.objects.order_by("seq").values_list("seq", "external_ref")) == [
        (1, "O-0"),
        (2, "O-1"),
        (3, "O-2"),
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # TRUNCATE refuses to run beside pending FK checks
def test_postgres_refuses_truncate(entries: None) -> None:
    _refused("TRUNCATE ledger_entry CASCADE")
    assert Entry.objects.count() == 3


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgres_orm_update_is_refused_too(entries: None) -> None:
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Entry.objects.filter(seq=2).update(type="order.cancelled")
    assert Entry.objects.filter(type="order.cancelled").count() == 0


@pytest.mark.sqlite_smoke
@pytest.mark.django_db
@pytest.mark.parametrize("sql", STATEMENTS.values())
def test_sqlite_refuses_rewriting_entries(entries: None, sql: str) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite triggers are proven in the SQLite smoke run (make test-sqlite)")
    # SQLite has no TRUNCATE; an unqualified DELETE is its truncate, and the trigger disables
    # that fast path, so "delete" above covers it.
    _refused(sql)
    assert Entry.objects.count() == 3
