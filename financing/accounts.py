"""The chart of accounts financing posts to, per currency and, where it is theirs, per merchant.

Opening is idempotent, so the first posting in a new currency or for a new merchant opens what
it needs; every later one finds it.
"""

from __future__ import annotations

from django.conf import settings

from financing.books.models import Account
from financing.books.services import account_open
from ledger.sql import models_read
from merchants.models import Merchant

ASSIGNEE_NAME = settings.CHAINFIN_BANK_NAME
RECOURSE_RECEIVABLE = "recourse_receivable"


def recourse_owed(merchant: Merchant) -> dict[str, int]:
    """What ``merchant`` owes the bank as recourse, per currency: its recourse accounts' balances.

    Reads the books, opens nothing: a merchant that never owed recourse has no account, and owes
    nothing.
    """
    accounts = Account.objects.filter(
        merchant_id=merchant.pk, code__startswith=f"{RECOURSE_RECEIVABLE}:"
    )
    return {a.currency: a.balance_minor for a in accounts.order_by("currency") if a.balance_minor}


class Chart:
    """The accounts one merchant's advances in one currency move money between."""

    def __init__(self, merchant: Merchant, currency: str) -> None:
        self.merchant = merchant
        self.currency = currency
        self._read: dict[str, Account] = {}

    def prefetch(self) -> None:
        """Read, in one query, every account of this chart already open, so that asking for one
        costs no query (a settlement asks for up to ten, and settles payouts by the thousand).

        The balances read are those of now: call it where the caller wants them read.
        """
        mine = models_read(
            Account,
            "(merchant_id IS NULL OR merchant_id = %s) AND currency = %s",
            [self.merchant.pk, self.currency],
        )
        self._read = {account.code: account for account in mine}

    def _bank(self, code: str, name: str, kind: str) -> Account:
        return self._open(f"{code}:{self.currency}", f"{name} {self.currency}", kind, None)

    def _merchants(self, code: str, name: str, kind: str) -> Account:
        return self._open(
            f"{code}:{self.merchant.public_id}:{self.currency}",
            f"{name}: {self.merchant.legal_name} {self.currency}",
            kind,
            self.merchant.pk,
        )

    def _open(self, code: str, name: str, kind: str, merchant_id: int | None) -> Account:
        read = self._read.get(code)
        if read is not None and (read.kind, read.merchant_id) == (kind, merchant_id):
            return read
        # Not open yet, or open as something else: account_open opens it or says what clashes.
        return account_open(
            code=code, name=name, kind=kind, currency=self.currency, merchant_id=merchant_id
        )

    # The bank's own accounts. Money leaves through disbursement clearing and arrives through
    # collections clearing; bank statements (reconciliation) clear both against bank cash.
    def disbursement_clearing(self) -> Account:
        """Payments to merchants ordered and not yet seen on the bank statement."""
        return self._bank("disbursement_clearing", "Disbursement clearing", Account.Kind.ASSET)

    def bank_cash(self) -> Account:
        """The bank's own account at its bank, as its statements show it."""
        return self._bank("bank_cash", "Bank cash", Account.Kind.ASSET)

    def collections_clearing(self) -> Account:
        """Payouts marketplaces reported paying to the bank, not yet seen on the statement."""
        return self._bank("collections_clearing", "Collections clearing", Account.Kind.ASSET)

    def reconciliation_differences(self) -> Account:
        """What matching wrote off or found: bank charges deducted in transit, rounding."""
        return self._bank(
            "reconciliation_differences", "Reconciliation differences", Account.Kind.EXPENSE
        )

    def unearned_discount(self) -> Account:
        """Discount fees withheld at disbursement, earned day by day over each advance's life."""
        return self._bank("unearned_discount", "Unearned discount", Account.Kind.LIABILITY)

    def fee_income(self) -> Account:
        return self._bank("fee_income", "Discount fee income", Account.Kind.INCOME)

    def late_fee_income(self) -> Account:
        return self._bank("late_fee_income", "Late fee income", Account.Kind.INCOME)

    # The merchant's sub-ledger.
    def advances_receivable(self) -> Account:
        """What debtors owe on the merchant's assigned receivables, plus its unpaid late fees."""
        return self._merchants("advances_receivable", "Advances receivable", Account.Kind.ASSET)

    def reserve_payable(self) -> Account:
        """Face value held back from the advance, owed to the merchant once the debtor pays."""
        return self._merchants(
            "merchant_reserve_payable", "Merchant reserve payable", Account.Kind.LIABILITY
        )

    def recourse_receivable(self) -> Account:
        """What the merchant owes the bank: dilution after funding, late fees beyond its reserve."""
        return self._merchants(RECOURSE_RECEIVABLE, "Recourse receivable", Account.Kind.ASSET)

    def suspense(self) -> Account:
        """Money received for the merchant that nobody has allocated yet."""
        return self._merchants("suspense", "Suspense", Account.Kind.LIABILITY)
