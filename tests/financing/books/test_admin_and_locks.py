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
from financing.books.models import Account, JournalEntry
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
def test_accounts_are_locked_in_id_order_before_anything_is_written(books: Books, now) -> None:
    legs = [Leg(books.receivable, 10), Leg(books.income, 5), Leg(books.cash, -15)]
    with CaptureQueriesContext(connection) as queries:
        journal_post(key=new_key(), memo="m", legs=legs, now=now)
    (statement,) = [q["sql"] for q in queries.captured_queries if "books_" in q["sql"]]
    assert statement.lstrip().startswith(f"WITH locked AS ({ACCOUNTS_FOR_UPDATE.split('%s')[0]}")
    assert "ORDER BY id FOR UPDATE" in statement.split("INSERT")[0]
    ids = sorted([books.cash.pk, books.receivable.pk, books.income.pk])
    assert "'{" + ",".join(map(str, ids)) + "}'" in statement.split("ORDER BY")[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # another connection must see the accounts
def test_the_locks_are_held_until_the_callers_transaction_ends(books: Books, now) -> None:
    legs = [Leg(books.receivable, 10), Leg(books.cash, -10)]
    other = connections.create_connection("default")
    try:
        with transaction.atomic():
            journal_post(key=new_key(), memo="m", legs=legs, now=now)
            assert _locked_elsewhere(other, books.cash)
            assert _locked_elsewhere(other, books.receivable)
            assert not _locked_elsewhere(other, books.income)
        assert not _locked_elsewhere(other, books.cash)
    finally:
        other.close()


def _locked_elsewhere(other: BaseDatabaseWrapper, account: Account) -> bool:
    with other.cursor() as cursor:
        try:
            cursor.execute(
                "SELECT 1 FROM books_account WHERE id = %s FOR UPDATE NOWAIT", [account.pk]
            )
        except OperationalError:
            return True
    return False
