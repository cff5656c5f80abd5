"""The database itself refuses, at commit, an entry that bypasses the service and does not balance.

The constraint trigger is deferred, so these tests commit for real (``transaction=True``): in a
test wrapped in a transaction that is rolled back, a deferred check would never run.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from django.db import IntegrityError, connection, transaction

from financing.books.exceptions import JournalUnbalanced
from financing.books.models import Account, JournalEntry, Posting
from financing.books.services import Leg, journal_post
from tests.financing.books.conftest import Books, balances, new_key, transfer

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

FINGERPRINT = "0" * 64


def _raw_entry(
    key: str, now: datetime, *legs: tuple[Account, int], currency: str | None = None
) -> None:
    """Insert an entry and its postings the way a careless script would: no service, no checks
    but the merchant's, which another trigger holds (test_merchant_of_entries.py)."""
    merchant_id = next((a.merchant_id for a, _ in legs if a.merchant_id is not None), None)
    with connection.cursor() as cursor:
        cursor.execute(
            'INSERT INTO books_journalentry ("key", merchant_id, memo, posted_at, fingerprint)'
            " VALUES (%s, %s, 'raw', %s, %s) RETURNING id",
            [key, merchant_id, now, FINGERPRINT],
        )
        (entry_id,) = cursor.fetchone()
        for account, amount in legs:
            cursor.execute(
                "INSERT INTO books_posting"
                " (entry_id, merchant_id, account_id, amount_minor, currency)"
                " VALUES (%s, %s, %s, %s, %s)",
                [entry_id, merchant_id, account.pk, amount, currency or account.currency],
            )


def _nothing_committed() -> None:
    assert JournalEntry.objects.count() == Posting.objects.count() == 0


def test_unbalanced_entry_is_refused_at_commit(books: Books, now) -> None:
    def unbalanced() -> None:
        with transaction.atomic():
            _raw_entry("raw-1", now, (books.cash, 100), (books.receivable, -99))
            # Inside the transaction the entry is still there: the check waits for the commit.
            assert JournalEntry.objects.filter(key="raw-1").exists()

    refusal = "journal entry 'raw-1' does not balance in EUR: its postings sum to 1"
    with pytest.raises(IntegrityError, match=refusal):
        unbalanced()
    _nothing_committed()


def test_with_the_trigger_off_the_same_entry_commits(books: Books, now) -> None:
    """The negative control: it is the constraint trigger that refuses, nothing else."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE books_posting DISABLE TRIGGER books_posting_entry_balanced")
    try:
        with transaction.atomic():
            _raw_entry("raw-1", now, (books.cash, 100), (books.receivable, -99))
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE books_posting ENABLE TRIGGER books_posting_entry_balanced")
    assert Posting.objects.filter(entry__key="raw-1").count() == 2


def test_balance_is_per_currency(books: Books, now) -> None:
    with pytest.raises(IntegrityError, match="does not balance in EUR"), transaction.atomic():
        _raw_entry("raw-fx", now, (books.cash, 100), (books.cash_usd, -100))
    _nothing_committed()


def test_entry_with_one_posting_is_refused(books: Books, now) -> None:
    with (
        pytest.raises(IntegrityError, match="has 1 posting\\(s\\); at least 2"),
        transaction.atomic(),
    ):
        _raw_entry("raw-one", now, (books.cash, 100))
    _nothing_committed()


def test_entry_without_postings_is_refused(books: Books, now) -> None:
    with (
        pytest.raises(IntegrityError, match="has 0 posting\\(s\\); at least 2"),
        transaction.atomic(),
    ):
        _raw_entry("raw-none", now)
    _nothing_committed()


def test_posting_added_to_a_committed_entry_is_refused(books: Books, now) -> None:
    legs = transfer(books.cash, books.receivable, 50)
    entry = journal_post(key=new_key(), memo="sound", legs=legs, now=now)
    with (
        pytest.raises(IntegrityError, match="does not balance in EUR: its postings sum to 7"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO books_posting (entry_id, merchant_id, account_id, amount_minor, currency)"
            " VALUES (%s, %s, %s, 7, 'EUR')",
            [entry.pk, entry.merchant_id, books.income.pk],
        )
    assert Posting.objects.count() == 2


def test_balanced_raw_entry_is_accepted(books: Books, now) -> None:
    """The control: the trigger refuses what does not balance, not raw SQL as such."""
    with transaction.atomic():
        _raw_entry("raw-ok", now, (books.cash, 100), (books.receivable, -60), (books.income, -40))
    assert Posting.objects.filter(entry__key="raw-ok").count() == 3


def test_posting_in_another_currency_than_its_account_is_refused(books: Books, now) -> None:
    """The composite foreign key (account_id, currency): refused at once, not at commit."""
    with pytest.raises(IntegrityError, match="posting_currency_of_account"), transaction.atomic():
        _raw_entry("raw-cur", now, (books.cash, 100), (books.cash_usd, -100), currency="USD")
    _nothing_committed()


def test_account_currency_is_fixed_once_posted_to(books: Books, now) -> None:
    journal_post(
        key=new_key(), memo="sound", legs=transfer(books.cash, books.receivable, 50), now=now
    )
    with pytest.raises(IntegrityError, match="posting_currency_of_account"), transaction.atomic():
        Account.objects.filter(pk=books.cash.pk).update(currency="USD")
    assert Account.objects.get(pk=books.cash.pk).currency == "EUR"


def test_a_refusal_in_code_leaves_the_callers_transaction_usable(books: Books, now) -> None:
    with transaction.atomic():
        legs = transfer(books.cash, books.receivable, 10)
        journal_post(key=new_key(), memo="first", legs=legs, now=now)
        unbalanced = [Leg(books.cash, 10), Leg(books.receivable, -9)]
        with pytest.raises(JournalUnbalanced):
            journal_post(key=new_key(), memo="bad", legs=unbalanced, now=now)
        legs = transfer(books.cash, books.receivable, 5)
        journal_post(key=new_key(), memo="second", legs=legs, now=now)
    assert balances(books.cash, books.receivable) == [15, -15]
    assert JournalEntry.objects.count() == 2
