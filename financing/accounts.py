"""The chart of accounts financing posts to, per currency and, where it is theirs, per merchant.

Opening is idempotent, so the first posting in a new currency or for a new merchant opens what
it needs; every later one finds it.
"""

from __future__ import annotations

from django.conf import settings

from financing.books.models import Account
from financing.books.services import account_open
from merchants.models import Merchant

ASSIGNEE_NAME = settings.CHAINFIN_BANK_NAME


class Chart:
    """The accounts one merchant's advances in one currency move money between."""

    def __init__(self, merchant: Merchant, currency: str) -> None:
        self.merchant = merchant
        self.currency = currency

    def _bank(self, code: str, name: str, kind: str) -> Account:
        return account_open(
            code=f"{code}:{self.currency}",
            name=f"{name} {self.currency}",
            kind=kind,
            currency=self.currency,
        )

    def _merchants(self, code: str, name: str, kind: str) -> Account:
        return account_open(
            code=f"{code}:{self.merchant.public_id}:{self.currency}",
            name=f"{name}: {self.merchant.legal_name} {self.currency}",
            kind=kind,
            currency=self.currency,
            merchant_id=self.merchant.pk,
        )

    def bank_funding(self) -> Account:
        """The bank's money: credited when an advance is paid out, debited when it comes back."""
        return self._bank("bank_funding", "Bank funding", Account.Kind.ASSET)

    def fee_income(self) -> Account:
        return self._bank("fee_income", "Discount fee income", Account.Kind.INCOME)

    def late_fee_income(self) -> Account:
        return self._bank("late_fee_income", "Late fee income", Account.Kind.INCOME)

    def advances_receivable(self) -> Account:
        """What the merchant's assigned receivables (and any late fees) owe the bank."""
        return self._merchants("advances_receivable", "Advances receivable", Account.Kind.ASSET)

    def reserve_payable(self) -> Account:
        """Face value held back from the advance, owed to the merchant once the debtor pays."""
        return self._merchants(
            "merchant_reserve_payable", "Merchant reserve payable", Account.Kind.LIABILITY
        )
