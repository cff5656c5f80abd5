"""Properties over random balanced entries: per-currency totals stay zero, balances follow legs."""

from __future__ import annotations

from collections import Counter
from itertools import count

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from financing.books.models import Account
from financing.books.services import Leg, account_open, journal_post
from financing.books.verification import books_verify
from tests.conftest import NOW

pytestmark = pytest.mark.django_db

CURRENCIES = {"EUR": 4, "USD": 3, "JPY": 2}  # accounts per currency
_keys = count(1)

amounts = st.integers(min_value=-(10**12), max_value=10**12).filter(bool)


@st.composite
def balanced_entry(draw: st.DrawFn) -> list[tuple[str, int, int]]:
    """Legs as (currency, account index, amount): per currency, amounts that sum to zero."""
    legs: list[tuple[str, int, int]] = []
    for currency in draw(
        st.lists(st.sampled_from(sorted(CURRENCIES)), min_size=1, max_size=2, unique=True)
    ):
        accounts = st.integers(min_value=0, max_value=CURRENCIES[currency] - 1)
        drawn = draw(st.lists(st.tuples(accounts, amounts), min_size=1, max_size=4))
        legs += [(currency, index, amount) for index, amount in drawn]
        rest = -sum(amount for _, amount in drawn)
        if rest:
            legs.append((currency, draw(accounts), rest))
    return legs


@pytest.fixture
def accounts(db) -> dict[str, list[Account]]:
    return {
        currency: [
            account_open(
                code=f"p:{currency}:{n}", name=f"{currency} {n}", kind="asset", currency=currency
            )
            for n in range(number)
        ]
        for currency, number in CURRENCIES.items()
    }


def _balances() -> dict[int, int]:
    return dict(Account.objects.values_list("pk", "balance_minor"))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(entries=st.lists(balanced_entry(), min_size=1, max_size=6))
def test_balanced_entries_keep_every_currency_at_zero(accounts, entries) -> None:
    before = _balances()
    expected: Counter[int] = Counter()
    for legs in entries:
        picked = [Leg(accounts[currency][index], amount) for currency, index, amount in legs]
        journal_post(key=f"prop-{next(_keys)}", memo="property", legs=picked, now=NOW)
        for leg in picked:
            expected[leg.account.pk] += leg.amount_minor

    after = _balances()
    assert {pk: after[pk] - before[pk] for pk in after} == {pk: expected[pk] for pk in after}
    totals: Counter[str] = Counter()
    for account in Account.objects.all():
        totals[account.currency] += account.balance_minor
    assert set(totals.values()) == {0}
    assert books_verify().intact
