"""Entries and postings are append-only in the database: UPDATE, DELETE, TRUNCATE refused."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from financing.books.models import JournalEntry, Posting
from financing.books.services import journal_post
from tests.financing.books.conftest import Books, new_key, transfer

STATEMENTS = {
    "update posting": "UPDATE books_posting SET amount_minor = amount_minor * 2",
    "delete posting": "DELETE FROM books_posting",
    "delete one posting": "DELETE FROM books_posting WHERE amount_minor = 100",
    "update entry": "UPDATE books_journalentry SET memo = 'forged'",
    "delete entry": "DELETE FROM books_journalentry",
}


@pytest.fixture
def posted(books: Books, now) -> None:
    for amount in (100, 200, 300):
        journal_post(
            key=new_key(),
            memo="posted",
            legs=transfer(books.receivable, books.cash, amount),
            now=now,
        )


def _refused(sql: str) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)


def _untouched() -> None:
    assert JournalEntry.objects.count() == 3
    assert sorted(Posting.objects.values_list("amount_minor", flat=True)) == [
        -300,
        -200,
        -100,
        100,
        200,
        300,
    ]
    assert set(JournalEntry.objects.values_list("memo", flat=True)) == {"posted"}


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("sql", STATEMENTS.values(), ids=STATEMENTS.keys())
def test_postgres_refuses_rewriting_the_journal(posted: None, sql: str) -> None:
    _refused(sql)
    _untouched()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # TRUNCATE refuses to run beside pending FK checks
@pytest.mark.parametrize("table", ["books_posting", "books_journalentry"])
def test_postgres_refuses_truncate(posted: None, table: str) -> None:
    _refused(f"TRUNCATE {table} CASCADE")
    _untouched()


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgres_orm_update_and_delete_are_refused_too(posted: None) -> None:
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Posting.objects.filter(amount_minor=100).update(amount_minor=1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Posting.objects.filter(amount_minor=100).delete()
    _untouched()


@pytest.mark.sqlite_smoke
@pytest.mark.django_db
@pytest.mark.parametrize("sql", STATEMENTS.values(), ids=STATEMENTS.keys())
def test_sqlite_refuses_rewriting_the_journal(posted: None, sql: str) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite triggers are proven in the SQLite smoke run (make test-sqlite)")
    # SQLite has no TRUNCATE; an unqualified DELETE is its truncate, and the trigger disables
    # that fast path, so "delete" above covers it.
    _refused(sql)
    _untouched()
