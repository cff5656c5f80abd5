"""Tampering behind the triggers' back is caught: verify_books exits 1 and names what is wrong."""

from __future__ import annotations

import pytest
from django.db import connection

from financing.books.models import Account
from financing.books.services import Leg, journal_post
from tests.financing.books.conftest import Books, transfer, verify_books

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def posted(books: Books, now) -> Books:
    """A few entries between cash, a receivable and fee income, in EUR and USD."""
    for n, amount in enumerate((100_000, 250_000, 75_000)):
        journal_post(
            key=f"disburse-{n}",
            memo="disbursed",
            legs=transfer(books.receivable, books.cash, amount),
            now=now,
        )
    journal_post(
        key="repay-0",
        memo="repaid",
        legs=[Leg(books.cash, 101_500), Leg(books.receivable, -100_000), Leg(books.income, -1_500)],
        now=now,
    )
    journal_post(
        key="usd-0", memo="usd", legs=transfer(books.cash_usd, books.payable_usd, 9_99), now=now
    )
    return books


def _as_superuser(*statements: tuple[str, list[object]], all_triggers: bool = False) -> None:
    """Run ``statements`` with the journal's triggers switched off, as only a superuser can.

    ``all_triggers`` also switches off the foreign keys' system triggers (the composite one
    that ties a posting's currency to its account's).
    """
    which = "ALL" if all_triggers else "USER"
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE wants no pending checks
        for table in ("books_posting", "books_journalentry"):
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {which}")
        for sql, params in statements:
            cursor.execute(sql, params)
        for table in ("books_posting", "books_journalentry"):
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {which}")


def test_intact_books_verify(posted: Books, capsys) -> None:
    code, output = verify_books(capsys)
    assert code == 0
    assert "OK: 5 account(s), 5 journal entries, 11 postings balanced" in output


def test_changed_balance_is_named(posted: Books, capsys) -> None:
    # No trigger to switch off: balances are updated in place, so only verification catches it.
    Account.objects.filter(pk=posted.receivable.pk).update(balance_minor=1)
    code, output = verify_books(capsys)
    assert code == 1
    assert (
        f"account '{posted.receivable.code}': balance differs from the sum of its postings"
        " (expected 3250.00 EUR (325000 minor units), found 0.01 EUR (1 minor units))"
    ) in output


def test_changed_posting_is_named(posted: Books, capsys) -> None:
    _as_superuser(
        (
            "UPDATE books_posting SET amount_minor = 200000"
            " WHERE amount_minor = 250000 AND account_id = %s",
            [posted.receivable.pk],
        )
    )
    code, output = verify_books(capsys)
    assert code == 1
    assert (
        "journal entry 'disburse-1': postings do not balance in EUR"
        " (expected a sum of 0.00 EUR (0 minor units), found -500.00 EUR (-50000 minor units))"
    ) in output


def test_changed_pair_of_postings_still_shows_in_the_balances(posted: Books, capsys) -> None:
    """Both legs forged alike keep the entry balanced; the balances no longer match."""
    _as_superuser(
        ("UPDATE books_posting SET amount_minor = 1 WHERE amount_minor = 75000", []),
        ("UPDATE books_posting SET amount_minor = -1 WHERE amount_minor = -75000", []),
    )
    code, output = verify_books(capsys)
    assert code == 1
    assert f"account '{posted.cash.code}': balance differs" in output


def test_deleted_posting_is_named(posted: Books, capsys) -> None:
    _as_superuser(("DELETE FROM books_posting WHERE amount_minor = -1500", []))
    code, output = verify_books(capsys)
    assert code == 1
    assert "journal entry 'repay-0': postings do not balance in EUR" in output


def test_posting_left_alone_in_its_entry_is_named(posted: Books, capsys) -> None:
    _as_superuser(("DELETE FROM books_posting WHERE amount_minor = -999", []))
    code, output = verify_books(capsys)
    assert code == 1
    assert (
        "journal entry 'usd-0': too few postings (expected at least 2 postings, found 1)" in output
    )


def test_posting_in_a_foreign_currency_is_named(posted: Books, capsys) -> None:
    _as_superuser(
        ("UPDATE books_posting SET currency = 'GBP' WHERE currency = 'USD'", []),
        all_triggers=True,
    )
    code, output = verify_books(capsys)
    assert code == 1
    assert (
        f"journal entry 'usd-0': a posting to account '{posted.cash_usd.code}' is in another"
        " currency than the account (expected USD, found GBP)"
    ) in output
