"""Posting through the service: balanced entries move balances; anything else writes nothing."""

from __future__ import annotations

import pytest

from financing.books.exceptions import (
    AccountCodeClash,
    AccountInvalid,
    JournalCurrencyMismatch,
    JournalInvalid,
    JournalLegsTooFew,
    JournalLegZero,
    JournalUnbalanced,
)
from financing.books.models import Account, JournalEntry, Posting
from financing.books.services import Leg, account_open, journal_post
from tests.financing.books.conftest import Books, balances, new_key, transfer

pytestmark = pytest.mark.django_db


@pytest.mark.sqlite_smoke  # the ORM path the embedded SQLite demo takes
def test_balanced_entry_is_written_and_moves_balances(books: Books, now) -> None:
    key = new_key()
    entry = journal_post(
        key=key,
        memo="advance disbursed",
        legs=transfer(books.receivable, books.cash, 100_000),
        now=now,
    )

    stored = JournalEntry.objects.get()
    assert (stored.pk, stored.key, stored.memo, stored.posted_at) == (
        entry.pk,
        key,
        "advance disbursed",
        now,
    )
    assert stored.fingerprint == entry.fingerprint
    assert sorted(stored.postings.values_list("account__code", "amount_minor", "currency")) == [
        (books.receivable.code, 100_000, "EUR"),
        ("cash:EUR", -100_000, "EUR"),
    ]
    assert balances(books.receivable, books.cash) == [100_000, -100_000]


def test_balances_accumulate_over_entries(books: Books, now) -> None:
    journal_post(
        key=new_key(),
        memo="disbursed",
        legs=transfer(books.receivable, books.cash, 100_000),
        now=now,
    )
    journal_post(
        key=new_key(),
        memo="repaid with fee",
        legs=[Leg(books.cash, 101_500), Leg(books.receivable, -100_000), Leg(books.income, -1_500)],
        now=now,
    )
    assert balances(books.cash, books.receivable, books.income) == [1_500, 0, -1_500]


def test_one_account_twice_in_an_entry_moves_by_the_net(books: Books, now) -> None:
    journal_post(
        key=new_key(),
        memo="split",
        legs=[Leg(books.cash, 700), Leg(books.cash, 300), Leg(books.receivable, -1_000)],
        now=now,
    )
    assert balances(books.cash, books.receivable) == [1_000, -1_000]
    assert Posting.objects.count() == 3


def test_an_entry_may_span_currencies_when_each_balances(books: Books, now) -> None:
    legs = transfer(books.cash, books.receivable, 500) + transfer(
        books.cash_usd, books.payable_usd, 700
    )
    journal_post(key=new_key(), memo="two currencies", legs=legs, now=now)
    assert balances(books.cash, books.receivable, books.cash_usd, books.payable_usd) == [
        500,
        -500,
        700,
        -700,
    ]


@pytest.mark.parametrize(
    ("legs", "error", "message"),
    [
        (
            lambda b: [Leg(b.cash, 100), Leg(b.receivable, -99)],
            JournalUnbalanced,
            "EUR: they sum to 1",
        ),
        (
            lambda b: [Leg(b.cash, 100), Leg(b.cash_usd, -100)],
            JournalUnbalanced,
            "EUR: they sum to 100",
        ),
        (lambda b: [Leg(b.cash, 100)], JournalLegsTooFew, "at least 2 legs, not 1"),
        (lambda b: [], JournalLegsTooFew, "not 0"),
        (lambda b: [Leg(b.cash, 0), Leg(b.receivable, 0)], JournalLegZero, "moves nothing"),
        (
            lambda b: [Leg(b.cash, 1.5), Leg(b.receivable, -1.5)],
            JournalInvalid,
            "integer minor units",
        ),
        (
            lambda b: [Leg(b.cash, True), Leg(b.receivable, -1)],
            JournalInvalid,
            "integer minor units",
        ),
        (lambda b: [Leg(b.cash, 10**15), Leg(b.receivable, -(10**15))], JournalInvalid, "beyond"),
    ],
    ids=[
        "unbalanced",
        "across currencies",
        "one leg",
        "no legs",
        "zero",
        "float",
        "bool",
        "absurd",
    ],
)
def test_refused_legs_write_nothing(books: Books, now, legs, error, message) -> None:
    with pytest.raises(error, match=message):
        journal_post(key=new_key(), memo="bad", legs=legs(books), now=now)
    assert JournalEntry.objects.count() == Posting.objects.count() == 0
    assert set(Account.objects.values_list("balance_minor", flat=True)) == {0}


@pytest.mark.sqlite_smoke  # the ORM path the embedded SQLite demo takes
def test_a_currency_the_account_does_not_hold_is_refused(books: Books, now) -> None:
    """The caller's idea of the account (here a stale copy) is checked against the database."""
    stale_cash = Account.objects.get(pk=books.cash_usd.pk)
    stale_cash.currency = "EUR"  # as if it were the EUR cash account
    with pytest.raises(JournalCurrencyMismatch, match="'cash:USD' is held in USD, not EUR"):
        journal_post(
            key=new_key(),
            memo="fx by accident",
            legs=transfer(stale_cash, books.receivable, 100),
            now=now,
        )
    assert JournalEntry.objects.count() == 0
    assert balances(books.cash_usd, books.receivable) == [0, 0]


def test_unopened_account_is_refused(books: Books, now) -> None:
    ghost = Account(code="ghost:EUR", name="Never opened", kind="asset", currency="EUR")
    with pytest.raises(JournalInvalid, match="not open"):
        journal_post(key=new_key(), memo="ghost", legs=transfer(ghost, books.cash, 100), now=now)


@pytest.mark.parametrize(("key", "memo"), [("", "memo"), ("k" * 256, "memo"), ("key", "m" * 501)])
def test_malformed_key_or_memo_is_refused(books: Books, now, key: str, memo: str) -> None:
    with pytest.raises(JournalInvalid):
        journal_post(key=key, memo=memo, legs=transfer(books.cash, books.receivable, 1), now=now)
    assert JournalEntry.objects.count() == 0


def test_account_open_is_idempotent(books: Books) -> None:
    again = account_open(
        code="cash:EUR", name="Other name, same account", kind="asset", currency="EUR"
    )
    assert again.pk == books.cash.pk
    assert Account.objects.filter(code="cash:EUR").count() == 1
    assert Account.objects.get(pk=again.pk).name == "Cash at bank"


@pytest.mark.parametrize(
    "change",
    [{"kind": "liability"}, {"currency": "USD"}, {"merchant_id": None}],
    ids=["kind", "currency", "merchant"],
)
def test_account_open_refuses_a_clash(books: Books, change) -> None:
    asked = {
        "code": books.receivable.code,
        "name": "Advances receivable",
        "kind": "asset",
        "currency": "EUR",
        "merchant_id": books.receivable.merchant_id,
    }
    with pytest.raises(AccountCodeClash, match="exists as asset in EUR of merchant"):
        account_open(**(asked | change))


@pytest.mark.parametrize(
    "asked",
    [
        {"kind": "revenue", "currency": "EUR", "code": "x:EUR"},
        {"kind": "asset", "currency": "EURO", "code": "x:EUR"},
        {"kind": "asset", "currency": "XXX", "code": "x:XXX"},
        {"kind": "asset", "currency": "EUR", "code": "has space"},
        {"kind": "asset", "currency": "EUR", "code": ""},
    ],
)
def test_account_open_refuses_invalid_accounts(db, asked) -> None:
    with pytest.raises(AccountInvalid):
        account_open(name="x", **asked)
    assert Account.objects.count() == 0
