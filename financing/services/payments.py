"""Payments out: written in the transaction that moves the money in the books, once per cause.

A disbursement pays the net advance (``disburse:<advance ref>``); a settlement that releases
money to the merchant pays what leaves disbursement clearing in its journal entry
(``release:<journal key>``). The payment carries the merchant's active bank account when it has
one; batching (``financing.services.payment_files``) sends only payments with an account.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection, transaction

from financing.exceptions import WrongState
from financing.models import Payment
from financing.reconciliation.payments import end_to_end_id_for
from ledger.sql import models_read
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
    with transaction.atomic(savepoint=False):
        # Plain SQL: a disbursement writes one payment, and its reads through the ORM cost
        # twice what running them does. source_key is unique: one row or none.
        found = models_read(Payment, "source_key = %s", [source_key])
        if found:
            existing = found[0]
            same = (existing.merchant_id, existing.kind, existing.currency, existing.amount_minor)
            if same != (merchant.pk, kind, currency, amount_minor):
                raise WrongState(f"{source_key} caused a different payment before.")
            return existing
        return Payment.objects.create(
            merchant=merchant,
            kind=kind,
            currency=currency,
            amount_minor=amount_minor,
            end_to_end_id=end_to_end_id_for(source_key),
            source_key=source_key,
            bank_account_id=_active_bank_account_id(merchant),
            created_at=now,
        )


def _active_bank_account_id(merchant: Merchant) -> int | None:
    """The merchant's active bank account (one at most: a unique partial index), if any."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM merchants_bankaccount WHERE merchant_id = %s AND status = %s",
            [merchant.pk, BankAccount.Status.ACTIVE.value],
        )
        row = cursor.fetchone()
    return None if row is None else int(row[0])
