"""A month of real activity for the statement tests: an advance disbursed in November; in
December a payout repays one invoice, a credit note raises recourse on another, which its
payout then settles, and a payout line names an invoice nobody knows (held in suspense)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from django.contrib.auth.models import User

from financing.books.models import Account
from financing.models import Advance, Facility
from merchants.models import Merchant
from tests.financing.conftest import Trade
from tests.financing.settlement_helpers import disbursed, payout, settle_pending

NOVEMBER = date(2026, 11, 1)
DECEMBER = date(2026, 12, 1)
DECEMBER_NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
SECTION_ACCOUNTS = {
    "advances": "advances_receivable",
    "reserve": "merchant_reserve_payable",
    "recourse": "recourse_receivable",
    "suspense": "suspense",
}


@dataclass
class Activity:
    merchant: Merchant
    advance: Advance
    invoices: list[str]
    before_december: dict[str, int]
    after_december: dict[str, int]


def balances(merchant: Merchant) -> dict[str, int]:
    """The merchant's EUR account balances (debit positive) by statement section."""
    return {
        section: Account.objects.filter(code=f"{prefix}:{merchant.public_id}:EUR")
        .values_list("balance_minor", flat=True)
        .first()
        or 0
        for section, prefix in SECTION_ACCOUNTS.items()
    }


def activity_post(trade: Trade, officer: User, now: datetime) -> Activity:
    """Post the scenario through the services; ``trade`` writes November's evidence."""
    invoices = trade.fundable(3, amount="1000.00", due_in_days=40)
    advance = disbursed(trade, invoices, officer, now)
    before = balances(trade.merchant)
    december = Trade(merchant=trade.merchant, source=trade.source, now=DECEMBER_NOW)
    payout(december, [(invoices[0], "1000.00")])
    settle_pending(DECEMBER_NOW)
    december.credited(invoices[1], amount="100.00")
    settle_pending(DECEMBER_NOW)
    payout(december, [(invoices[1], "900.00"), ("INV-NOBODY-KNOWS", "25.00")])
    settle_pending(DECEMBER_NOW)
    return Activity(
        merchant=trade.merchant,
        advance=Advance.objects.get(pk=advance.pk),
        invoices=invoices,
        before_december=before,
        after_december=balances(trade.merchant),
    )


@pytest.fixture
def activity(
    trade: Trade, open_facility: Callable[..., Facility], officer: User, now: datetime
) -> Activity:
    """The scenario, on a merchant with a credit line (import this fixture to use it)."""
    open_facility(trade.merchant)
    return activity_post(trade, officer, now)
