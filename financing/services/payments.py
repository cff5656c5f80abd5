"""Payments out: written in the transaction that moves the money in the books, once per cause.

A disbursement pays the net advance (``disburse:<advance ref>``); a settlement that releases
money to the merchant pays what leaves disbursement clearing in its journal entry
(``release:<journal key>``). The payment carries the merchant's active bank account when it has
one; batching (``financing.services.payment_files``) sends only payments with an account.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from financing.exceptions import WrongState
from financing.models import Payment
from financing.reconciliation.payments import end_to_end_id_for
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
        existing = Payment.objects.filter(source_key=source_key).first()
        if existing is not None:
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
            bank_account=BankAccount.objects.filter(
                merchant=merchant, status=BankAccount.Status.ACTIVE
            ).first(),
            created_at=now,
        )
