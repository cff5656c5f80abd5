"""Accounts the journal tests post between: the bank's cash and a merchant's receivable."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count

import pytest
from django.core.management import call_command

from financing.books.models import Account
from financing.books.selectors import account_balances
from financing.books.services import Leg, account_open
from merchants.models import Merchant

_keys = count(1)


def new_key(prefix: str = "je") -> str:
    """A journal key never used before in this test run."""
    return f"{prefix}-{next(_keys)}"


def transfer(debit: Account, credit: Account, amount_minor: int) -> list[Leg]:
    """The two legs moving ``amount_minor`` from ``credit`` to ``debit``."""
    return [Leg(debit, amount_minor), Leg(credit, -amount_minor)]


def verify_books(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run ``manage.py verify_books``; return its exit status and what it printed."""
    try:
        call_command("verify_books")
    except SystemExit as exit_:
        return int(exit_.code or 0), capsys.readouterr().err
    return 0, capsys.readouterr().out


@dataclass(frozen=True)
class Books:
    cash: Account
    receivable: Account
    income: Account
    cash_usd: Account
    payable_usd: Account


@pytest.fixture
def books(merchant: Merchant) -> Books:
    public_id = merchant.public_id
    return Books(
        cash=account_open(code="cash:EUR", name="Cash at bank", kind="asset", currency="EUR"),
        receivable=account_open(
            code=f"advances_receivable:{public_id}:EUR",
            name="Advances receivable",
            kind="asset",
            currency="EUR",
            merchant_id=merchant.pk,
        ),
        income=account_open(
            code="fee_income:EUR", name="Discount fee income", kind="income", currency="EUR"
        ),
        cash_usd=account_open(code="cash:USD", name="Cash at bank", kind="asset", currency="USD"),
        payable_usd=account_open(
            code=f"payable:{public_id}:USD",
            name="Payable to merchant",
            kind="liability",
            currency="USD",
            merchant_id=merchant.pk,
        ),
    )


def balances(*accounts: Account) -> list[int]:
    """The stored balances of ``accounts`` (the bank's: with their merchants' shards), afresh."""
    stored = account_balances(account_ids=[a.pk for a in accounts])
    return [stored[a.pk] for a in accounts]
