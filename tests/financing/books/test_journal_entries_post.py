"""Posting a batch of journal entries: each entry as journal_post would write it, in one
statement on PostgreSQL for bank-level entries (a bank statement's clearings), one by one for a
merchant's; a repeated key returns its original; any refusal writes nothing."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, transaction

from financing.books.batch_posting import NewJournalEntry, journal_entries_post
from financing.books.exceptions import (
    JournalCurrencyMismatch,
    JournalInvalid,
    JournalKeyReused,
    JournalUnbalanced,
)
from financing.books.models import Account, JournalEntry, Posting
from financing.books.services import Leg, account_open, journal_post
from tests.financing.books.conftest import Books, balances, new_key, transfer

pytestmark = pytest.mark.django_db


@pytest.fixture
def books(books: Books) -> Books:
    """The journal tests' accounts, with the USD leg on the bank's own accounts: every entry
    of ``batch`` is then bank-level, the batch statement's case."""
    income_usd = account_open(
        code="fee_income:USD", name="Discount fee income", kind="income", currency="USD"
    )
    return Books(books.cash, books.receivable, books.income, books.cash_usd, income_usd)


def batch(books: Books, count: int) -> list[NewJournalEntry]:
    """``count`` entries over three accounts and two currencies, of different amounts."""
    return [
        NewJournalEntry(
            key=new_key("batch"),
            memo=f"entry {n}",
            legs=[Leg(books.cash, 100 + n), Leg(books.income, -100 - n)]
            if n
            else transfer(books.cash_usd, books.payable_usd, 700),
        )
        for n in range(count)
    ]


def written() -> list[tuple[str, str, list[tuple[str, int, str]]]]:
    """Every entry as stored (key, memo, postings), and nothing else, for comparing."""
    return [
        (
            e.key,
            e.memo,
            sorted(e.postings.values_list("account__code", "amount_minor", "currency")),
        )
        for e in JournalEntry.objects.order_by("key").prefetch_related("postings")
    ]


@pytest.mark.sqlite_smoke  # the ORM path the embedded SQLite demo takes
def test_a_batch_writes_what_journal_post_writes_one_by_one(books: Books, now) -> None:
    entries = batch(books, 12)

    posted = journal_entries_post(entries=entries, now=now)

    assert [e.key for e in posted] == [e.key for e in entries]
    assert {e.posted_at for e in posted} == {now}
    in_batch = written()
    moved = balances(books.cash, books.income, books.cash_usd, books.payable_usd)
    assert moved == [1_166, -1_166, 700, -700]
    assert in_batch == sorted(
        (
            e.key,
            e.memo,
            sorted((g.account.code, g.amount_minor, g.account.currency) for g in e.legs),
        )
        for e in entries
    )
    # journal_post finds each entry as its own: the same fingerprint, so a repeat, not a clash.
    for entry in entries:
        assert journal_post(key=entry.key, memo="again", legs=entry.legs, now=now).pk == next(
            p.pk for p in posted if p.key == entry.key
        )
    assert written() == in_batch


def test_a_batch_repeated_returns_the_originals_and_moves_nothing(books: Books, now) -> None:
    entries = batch(books, 5)
    first = journal_entries_post(entries=entries[:3], now=now)
    before = balances(books.cash, books.income)

    again = journal_entries_post(entries=entries, now=now)

    assert [e.pk for e in again[:3]] == [e.pk for e in first]
    assert JournalEntry.objects.count() == 5 and Posting.objects.count() == 5 * 2
    after = balances(books.cash, books.income)
    assert [a - b for a, b in zip(after, before, strict=True)] == [207, -207]


@pytest.mark.parametrize(
    "spoil",
    [
        lambda b, es: [*es, NewJournalEntry(es[0].key, "twice", es[1].legs)],
        lambda b, es: [*es, NewJournalEntry(new_key(), "bad", [Leg(b.cash, 1), Leg(b.income, 2)])],
    ],
    ids=["one key twice", "unbalanced"],
)
def test_a_malformed_batch_writes_nothing(books: Books, now, spoil) -> None:
    with pytest.raises((JournalInvalid, JournalUnbalanced)):
        journal_entries_post(entries=spoil(books, batch(books, 3)), now=now)
    assert JournalEntry.objects.count() == Posting.objects.count() == 0


def test_a_foreign_currency_in_a_batch_writes_nothing(books: Books, now) -> None:
    stale = Account.objects.get(pk=books.cash_usd.pk)
    stale.currency = "EUR"
    entries = [*batch(books, 3), NewJournalEntry(new_key(), "fx", transfer(stale, books.cash, 5))]
    with pytest.raises(JournalCurrencyMismatch, match="'cash:USD' is held in USD, not EUR"):
        journal_entries_post(entries=entries, now=now)
    assert JournalEntry.objects.count() == 0
    assert set(Account.objects.values_list("balance_minor", flat=True)) == {0}


def test_a_key_reused_for_other_legs_dooms_the_batch_whole(books: Books, now) -> None:
    [old] = batch(books, 1)
    journal_entries_post(entries=[old], now=now)
    reused = NewJournalEntry(old.key, old.memo, transfer(books.cash_usd, books.payable_usd, 1))

    with pytest.raises(JournalKeyReused), transaction.atomic():
        journal_entries_post(entries=[*batch(books, 3)[1:], reused], now=now)

    assert JournalEntry.objects.count() == 1
    assert balances(books.cash_usd, books.payable_usd) == [700, -700]


def test_a_key_reused_leaves_no_transaction_to_commit_half(books: Books, now) -> None:
    [old] = batch(books, 1)
    journal_entries_post(entries=[old], now=now)
    reused = NewJournalEntry(old.key, old.memo, transfer(books.cash_usd, books.payable_usd, 1))
    with transaction.atomic():
        with pytest.raises(JournalKeyReused):
            journal_entries_post(entries=[*batch(books, 3)[1:], reused], now=now)
        with pytest.raises(DatabaseError):  # the new entries are written: this must roll back
            JournalEntry.objects.count()


def test_a_merchants_entries_go_one_by_one_and_a_refusal_writes_none(books: Books, now) -> None:
    merchants = [
        NewJournalEntry(new_key(), "advance", transfer(books.receivable, books.cash, 50)),
        NewJournalEntry(new_key(), "advance", transfer(books.receivable, books.cash, 60)),
    ]
    posted = journal_entries_post(entries=merchants, now=now)
    assert {e.merchant_id for e in posted} == {books.receivable.merchant_id}
    assert balances(books.receivable, books.cash) == [110, -110]

    clash = NewJournalEntry(merchants[0].key, "other", transfer(books.receivable, books.cash, 1))
    with pytest.raises(JournalKeyReused):
        journal_entries_post(entries=[*batch(books, 2), clash], now=now)
    assert JournalEntry.objects.count() == 2  # the transaction stays usable
