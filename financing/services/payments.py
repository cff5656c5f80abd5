"""Payments out: written in the transaction that moves the money in the books, once per cause.

A disbursement pays the net advance (``disburse:<advance ref>``); a settlement that releases
money to the merchant pays what leaves disbursement clearing in its journal entry
(``release:<journal key>``). The payment carries the merchant's active bank account when it has
one; batching (``financing.services.payment_files``) sends only payments with an account.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache
from operator import attrgetter
from typing import Any

from django.db import connection, models

from financing.exceptions import WrongState
from financing.models import Payment
from financing.reconciliation.payments import end_to_end_id_for
from ledger.sql import models_read, placeholders, rows_later
from ledger.unsaved import unsaved
from merchants.models import BankAccount, Merchant


def payment_record_later(
    *,
    merchant: Merchant,
    kind: str,
    currency: str,
    amount_minor: int,
    source_key: str,
    now: datetime,
) -> Callable[[], Payment]:
    """Write the payment ``source_key`` causes, in the caller's transaction, and return what
    gives it: the INSERT is sent now (inside ``ledger.sql.one_round_trip``, with the statements
    sent with it) and answered when that is called. Repeating the same cause gives the payment
    written the first time, as ``journal_post`` does.

    :raises WrongState: (when called) ``source_key`` caused a payment of another merchant, kind
        or amount.
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
    inserted = _inserted_later(payment)

    def load() -> Payment:
        if inserted():
            return payment
        # Caused before (source_key is unique: one row), or by a concurrent transaction
        # that committed first: the insert waited for it, then wrote nothing.
        (existing,) = models_read(Payment, "source_key = %s", [source_key])
        return _same_cause(existing, payment)

    return load


def _same_cause(recorded: Payment, wanted: Payment) -> Payment:
    """``recorded``, if it is the payment ``wanted`` describes (the same cause twice)."""
    fields = attrgetter("merchant_id", "kind", "currency", "amount_minor")
    if fields(recorded) != fields(wanted):
        raise WrongState(f"{wanted.source_key} caused a different payment before.")
    return recorded


def _inserted_later(payment: Payment) -> Callable[[], bool]:
    """Insert ``payment`` with the merchant's active bank account (one at most: a unique
    partial index), unless its cause has a payment already; return what says whether it did,
    and then has set its id and account.

    One statement, on PostgreSQL and SQLite alike: a disbursement writes one payment, and the
    ORM's read of the cause, read of the account and insert cost three round trips.
    """
    sql, fields = _insert_sql()
    values = [
        field.get_db_prep_save(getattr(payment, field.attname), connection) for field in fields
    ]
    read = rows_later(sql, [*values, payment.merchant_id, BankAccount.Status.ACTIVE.value])

    def load() -> bool:
        rows = read()
        if not rows:
            return False
        ((payment.pk, payment.bank_account_id),) = rows
        payment._state.adding, payment._state.db = False, connection.alias
        return True

    return load


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
