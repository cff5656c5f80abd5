"""Payments out: written in the transaction that moves the money in the books, once per cause.

A disbursement pays the net advance (``disburse:<advance ref>``); a settlement that releases
money to the merchant pays what leaves disbursement clearing in its journal entry
(``release:<journal key>``). The payment carries the merchant's active bank account when it has
one; batching (``financing.services.payment_files``) sends only payments with an account.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection, models, transaction

from financing.exceptions import WrongState
from financing.models import Payment
from financing.reconciliation.payments import end_to_end_id_for
from ledger.sql import models_read, placeholders
from ledger.unsaved import unsaved
from merchants.models import BankAccount, Merchant


def payment_record(
    *,
    merchant: Merchant,
    kind: str,
    currency: str,
    amount_minor: int,
    source_key: str,
    now: datetime,
) -> Payment:
    """The payment ``source_key`` causes, written in the caller's transaction; repeating the
    same cause returns the payment written the first time, as ``journal_post`` does.

    :raises WrongState: ``source_key`` caused a payment of another merchant, kind or amount.
    """
    payment = unsaved(
        Payment,
        merchant=merchant,
        kind=kind,
        currency=currency,
        amount_minor=amount_minor,
        end_to_end_id=end_to_end_id_for(source_key),
        source_key=source_key,
        created_at=now,
    )
    with transaction.atomic(savepoint=False):
        if _inserted(payment):
            return payment
        # Caused before (source_key is unique: one row), or by a concurrent transaction
        # that committed first: the insert waited for it, then wrote nothing.
        (existing,) = models_read(Payment, "source_key = %s", [source_key])
    same = (existing.merchant_id, existing.kind, existing.currency, existing.amount_minor)
    if same != (merchant.pk, kind, currency, amount_minor):
        raise WrongState(f"{source_key} caused a different payment before.")
    return existing


def _inserted(payment: Payment) -> bool:
    """Insert ``payment`` with the merchant's active bank account (one at most: a unique
    partial index), unless its cause has a payment already; set its id and account.

    One statement, on PostgreSQL and SQLite alike: a disbursement writes one payment, and the
    ORM's read of the cause, read of the account and insert cost three round trips.
    """
    sql, fields = _insert_sql()
    values = [
        field.get_db_prep_save(getattr(payment, field.attname), connection) for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, payment.merchant_id, BankAccount.Status.ACTIVE.value])
        row = cursor.fetchone()
    if row is None:
        return False
    payment.pk, payment.bank_account_id = row
    payment._state.adding, payment._state.db = False, connection.alias
    return True


@cache
def _insert_sql() -> tuple[str, list[models.Field[Any, Any]]]:
    """The INSERT of every column but the id and the bank account, the account's look-up, and
    the fields whose values go first, in order."""
    meta = Payment._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key and f.name != "bank_account"]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    account = quote(meta.get_field("bank_account").column)
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}, {account})"  # noqa: S608  (model names)
        f" VALUES ({placeholders(len(fields))},"
        " (SELECT id FROM merchants_bankaccount WHERE merchant_id = %s AND status = %s))"
        " ON CONFLICT (source_key) DO NOTHING RETURNING id, bank_account_id"
    )
    return sql, fields
