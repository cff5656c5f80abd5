"""Every journal entry is one merchant's (or the bank's alone), and moves that merchant's shards
of the bank's accounts, never the bank's rows themselves (financing/books/models.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import IntegrityError, connection, transaction

from financing.books.exceptions import JournalInvalid, JournalKeyReused, JournalMerchantsMixed
from financing.books.models import Account, AccountShard, JournalEntry, Posting
from financing.books.services import account_open, journal_post
from merchants.models import Merchant
from tests.financing.books.conftest import Books, balances, new_key, transfer, verify_books

pytestmark = pytest.mark.django_db


def _shards() -> dict[tuple[int, int], int]:
    return {
        (account, merchant): balance
        for account, merchant, balance in AccountShard.objects.values_list(
            "account_id", "merchant_id", "balance_minor"
        )
    }


def _own(account: Account) -> int:
    return Account.objects.get(pk=account.pk).balance_minor


@pytest.mark.sqlite_smoke
def test_an_entry_is_its_merchants_accounts_merchants(books: Books, merchant, now) -> None:
    entry = journal_post(
        key=new_key(), memo="m", legs=transfer(books.receivable, books.cash, 500), now=now
    )

    assert entry.merchant_id == merchant.pk
    assert JournalEntry.objects.get(pk=entry.pk).merchant_id == merchant.pk
    assert set(Posting.objects.values_list("merchant_id", flat=True)) == {merchant.pk}
    assert _own(books.receivable) == 500  # a merchant's account: its own row
    assert _own(books.cash) == 0  # the bank's: untouched, the merchant's shard moved instead
    assert _shards() == {(books.cash.pk, merchant.pk): -500}
    assert balances(books.cash, books.receivable) == [-500, 500]


def test_an_entry_of_the_banks_accounts_alone_is_bank_level(books: Books, now) -> None:
    entry = journal_post(
        key=new_key(), memo="m", legs=transfer(books.cash, books.income, 300), now=now
    )

    assert entry.merchant_id is None
    assert (_own(books.cash), _own(books.income)) == (300, -300)
    assert _shards() == {}


@pytest.mark.sqlite_smoke
def test_merchant_id_makes_an_entry_of_the_banks_accounts_a_merchants(
    books: Books, merchant, now
) -> None:
    legs = transfer(books.cash, books.income, 300)
    journal_post(key="k", memo="m", legs=legs, now=now, merchant_id=merchant.pk)
    journal_post(key="k", memo="m", legs=legs, now=now, merchant_id=merchant.pk)  # a repeat

    assert _shards() == {(books.cash.pk, merchant.pk): 300, (books.income.pk, merchant.pk): -300}
    assert (_own(books.cash), _own(books.income)) == (0, 0)
    with pytest.raises(JournalKeyReused):  # the same legs for the bank, or another merchant
        journal_post(key="k", memo="m", legs=legs, now=now)


@pytest.mark.sqlite_smoke
def test_legs_of_two_merchants_are_refused(
    books: Books, make_merchant: Callable[..., Merchant], now
) -> None:
    other = make_merchant()
    theirs = account_open(
        code=f"advances_receivable:{other.public_id}:EUR",
        name="Advances receivable",
        kind="asset",
        currency="EUR",
        merchant_id=other.pk,
    )

    with pytest.raises(JournalMerchantsMixed, match="one merchant's"):
        journal_post(key=new_key(), memo="m", legs=transfer(books.receivable, theirs, 1), now=now)
    legs = transfer(books.receivable, books.cash, 1)
    with pytest.raises(JournalMerchantsMixed):
        journal_post(key=new_key(), memo="m", legs=legs, now=now, merchant_id=other.pk)
    assert not JournalEntry.objects.exists()


@pytest.mark.sqlite_smoke
def test_an_account_held_as_another_owners_is_refused(books: Books, now) -> None:
    """The database, not the caller's copy, says whose an account is."""
    stale = Account.objects.get(pk=books.receivable.pk)
    stale.merchant_id = None  # as though it were the bank's: its move would go to a shard

    with pytest.raises(JournalInvalid, match=r"is merchant \d+'s, not the bank's"):
        journal_post(key=new_key(), memo="m", legs=transfer(stale, books.cash, 1), now=now)
    assert not JournalEntry.objects.exists()


@pytest.mark.sqlite_smoke
def test_the_database_ties_a_posting_to_its_entrys_merchant(books: Books, merchant, now) -> None:
    """SQLite and PostgreSQL alike: a trigger, not only journal_post."""
    entry = journal_post(
        key=new_key(), memo="m", legs=transfer(books.cash, books.income, 5), now=now
    )
    for forged in (
        Posting(entry=entry, account=books.cash, amount_minor=1, currency="EUR", merchant=merchant),
        Posting(entry=entry, account=books.receivable, amount_minor=1, currency="EUR"),
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            forged.save()


@pytest.mark.postgres
def test_a_wrong_shard_is_named(books: Books, merchant, now, capsys) -> None:
    journal_post(key="k", memo="m", legs=transfer(books.receivable, books.cash, 700), now=now)
    AccountShard.objects.filter(account=books.cash).update(balance_minor=-1)

    code, output = verify_books(capsys)

    assert code == 1
    assert (
        f"account '{books.cash.code}': balance differs from the sum of its postings, in the shard"
        f" of merchant {merchant.pk} (expected -7.00 EUR (-700 minor units), found -0.01 EUR"
    ) in output


@pytest.mark.postgres
def test_a_posting_moved_to_another_merchant_is_named(
    books: Books, merchant, make_merchant: Callable[..., Merchant], now, capsys
) -> None:
    journal_post(key="k", memo="m", legs=transfer(books.receivable, books.cash, 700), now=now)
    other = make_merchant()
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # every trigger off
        cursor.execute(
            "UPDATE books_posting SET merchant_id = %s WHERE account_id = %s",
            [other.pk, books.cash.pk],
        )
        cursor.execute("SET session_replication_role = DEFAULT")

    code, output = verify_books(capsys)

    assert code == 1
    assert (
        f"journal entry 'k': a posting to account '{books.cash.code}' is of another merchant"
        f" than its entry (expected merchant {merchant.pk}, found merchant {other.pk})"
    ) in output
