"""The admin only looks; journal_post takes its locks in one order before it writes."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.db import OperationalError, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from financing.books.admin import PostingInline
from financing.books.locks import ACCOUNTS_FOR_UPDATE
from financing.books.models import Account, AccountShard, JournalEntry
from financing.books.services import Leg, journal_post
from tests.financing.books.conftest import Books, new_key

pytestmark = pytest.mark.django_db


def test_admin_is_read_only(books: Books, now) -> None:
    request = RequestFactory().get("/")
    entry = journal_post(
        key=new_key(), memo="m", legs=[Leg(books.cash, 5), Leg(books.receivable, -5)], now=now
    )
    for model, obj in ((Account, books.cash), (JournalEntry, entry)):
        model_admin = admin.site._registry[model]
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request, obj)
        assert not model_admin.has_delete_permission(request, obj)
    inline = PostingInline(JournalEntry, admin.site)
    assert not inline.has_add_permission(request, entry)
    assert not inline.has_delete_permission(request, entry)


def test_admin_shows_balances_as_money(books: Books, now) -> None:
    journal_post(
        key=new_key(),
        memo="m",
        legs=[Leg(books.cash, 123_456), Leg(books.receivable, -123_456)],
        now=now,
    )
    account_admin = admin.site._registry[Account]
    assert account_admin.balance(Account.objects.get(pk=books.cash.pk)) == "1,234.56 EUR"
    assert account_admin.balance(Account.objects.get(pk=books.receivable.pk)) == "-1,234.56 EUR"


@pytest.mark.postgres
def test_a_bank_level_entry_locks_its_accounts_in_id_order_before_anything_is_written(
    books: Books, now
) -> None:
    legs = [Leg(books.income, 10), Leg(books.cash, -10)]  # the bank's accounts, no merchant
    with CaptureQueriesContext(connection) as queries:
        journal_post(key=new_key(), memo="m", legs=legs, now=now)
    (statement,) = [q["sql"] for q in queries.captured_queries if "books_" in q["sql"]]
    assert statement.lstrip().startswith(f"WITH locked AS ({ACCOUNTS_FOR_UPDATE.split('%s')[0]}")
    assert "ORDER BY id FOR UPDATE" in statement.split("INSERT")[0]
    ids = sorted([books.cash.pk, books.income.pk])
    assert "'{" + ",".join(map(str, ids)) + "}'" in statement.split("ORDER BY")[0]


@pytest.mark.postgres
def test_a_merchants_entry_locks_its_own_accounts_then_its_shards_of_the_banks(
    books: Books, now
) -> None:
    legs = [Leg(books.receivable, 10), Leg(books.income, 5), Leg(books.cash, -15)]
    with CaptureQueriesContext(connection) as queries:
        journal_post(key=new_key(), memo="m", legs=legs, now=now)
    (statement,) = [q["sql"] for q in queries.captured_queries if "books_" in q["sql"]]
    locking = statement.split("ORDER BY")[0]
    assert "'{" + str(books.receivable.pk) + "}'" in locking  # the merchant's account alone
    upsert = statement.split("INSERT INTO books_accountshard")[1]
    bank = sorted([books.cash.pk, books.income.pk])
    assert "'{" + ",".join(map(str, bank)) + "}'" in upsert
    assert "ORDER BY delta.account_id" in upsert  # so the shards lock in account id order


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # another connection must see the accounts
def test_the_locks_are_held_until_the_callers_transaction_ends(books: Books, now) -> None:
    legs = [Leg(books.receivable, 10), Leg(books.cash, -10)]
    journal_post(key=new_key(), memo="m", legs=legs, now=now)  # the merchant's shard of cash
    shard = AccountShard.objects.get(account=books.cash)
    other = connections.create_connection("default")
    try:
        with transaction.atomic():
            journal_post(key=new_key(), memo="m", legs=legs, now=now)
            assert _locked_elsewhere(other, "books_account", books.receivable.pk)
            assert _locked_elsewhere(other, "books_accountshard", shard.pk)
            # The bank's own row stays free: another merchant's posting never waits on it.
            assert not _locked_elsewhere(other, "books_account", books.cash.pk)
            assert not _locked_elsewhere(other, "books_account", books.income.pk)
        assert not _locked_elsewhere(other, "books_accountshard", shard.pk)
    finally:
        other.close()


def _locked_elsewhere(other: BaseDatabaseWrapper, table: str, pk: int) -> bool:
    """Whether another transaction could not move the row's balance now: the lock an UPDATE of
    a balance takes, FOR NO KEY UPDATE. Not FOR UPDATE: that one also waits on the key-share
    lock each posting's foreign key takes on its account, which blocks no balance."""
    with other.cursor() as cursor:
        try:
            cursor.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR NO KEY UPDATE NOWAIT", [pk])
        except OperationalError:
            return True
    return False
