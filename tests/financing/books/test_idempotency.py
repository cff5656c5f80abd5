"""One entry per key: a repeat returns the original, a key reused with other legs is refused."""

from __future__ import annotations

import pytest
from django.db import transaction

from financing.books.exceptions import JournalKeyReused
from financing.books.models import JournalEntry, Posting
from financing.books.services import Leg, journal_post
from tests.financing.books.conftest import Books, balances, transfer

pytestmark = pytest.mark.django_db


@pytest.mark.sqlite_smoke  # the ORM path the embedded SQLite demo takes
def test_same_key_twenty_times_is_one_entry(books: Books, now) -> None:
    legs = transfer(books.receivable, books.cash, 12_34)
    entries = [
        journal_post(key="repay:adv_1", memo=f"attempt {n}", legs=legs, now=now) for n in range(20)
    ]
    assert {entry.pk for entry in entries} == {entries[0].pk}
    assert {entry.memo for entry in entries} == {"attempt 0"}  # the original comes back
    assert JournalEntry.objects.count() == 1
    assert Posting.objects.count() == 2
    assert balances(books.receivable, books.cash) == [12_34, -12_34]


def test_same_legs_in_another_order_are_the_same_request(books: Books, now) -> None:
    legs = [Leg(books.cash, 300), Leg(books.receivable, -200), Leg(books.income, -100)]
    first = journal_post(key="k", memo="m", legs=legs, now=now)
    again = journal_post(key="k", memo="m", legs=legs[::-1], now=now)
    assert again.pk == first.pk
    assert balances(books.cash, books.receivable, books.income) == [300, -200, -100]


@pytest.mark.parametrize(
    "other",
    [
        lambda b: transfer(b.receivable, b.cash, 12_35),  # another amount
        lambda b: transfer(b.income, b.cash, 12_34),  # another account
        lambda b: transfer(b.cash, b.receivable, 12_34),  # the other direction
        lambda b: [Leg(b.receivable, 12_34), Leg(b.cash, -12_00), Leg(b.income, -34)],
    ],
    ids=["amount", "account", "direction", "split"],
)
def test_same_key_with_other_legs_is_refused_and_writes_nothing(books: Books, now, other) -> None:
    journal_post(
        key="repay:adv_2", memo="m", legs=transfer(books.receivable, books.cash, 12_34), now=now
    )
    with pytest.raises(JournalKeyReused, match="'repay:adv_2' was already used"):
        journal_post(key="repay:adv_2", memo="m", legs=other(books), now=now)
    assert JournalEntry.objects.count() == 1
    assert Posting.objects.count() == 2
    assert balances(books.receivable, books.cash, books.income) == [12_34, -12_34, 0]


@pytest.mark.sqlite_smoke  # the ORM path the embedded SQLite demo takes
def test_key_reused_inside_a_callers_transaction_leaves_it_usable(books: Books, now) -> None:
    """The refusal is found in the database but raised once nothing was written."""
    journal_post(key="k1", memo="m", legs=transfer(books.cash, books.receivable, 1), now=now)
    with transaction.atomic():
        with pytest.raises(JournalKeyReused):
            journal_post(
                key="k1", memo="m", legs=transfer(books.cash, books.receivable, 2), now=now
            )
        journal_post(key="k2", memo="m", legs=transfer(books.cash, books.receivable, 4), now=now)
    assert balances(books.cash, books.receivable) == [5, -5]
