"""Quotes and requests: an advance priced per receivable, and receivables held for review."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from financing.exceptions import AdvanceRefused
from financing.models import Assignment, Facility
from financing.pricing import apr_equivalent, apr_equivalent_mean
from financing.services.requests import advance_quote, advance_request
from tests.financing.conftest import TODAY, Trade

pytestmark = pytest.mark.django_db


def test_a_quote_prices_each_receivable_to_its_due_date(trade: Trade, facility: Facility) -> None:
    [ref] = trade.fundable(1, amount="10000.00", due_in_days=7)

    quote = advance_quote(merchant=trade.merchant, refs=[ref], today=TODAY)

    assert quote.total("face_minor") == 1_000_000
    assert quote.total("advance_minor") == 800_000  # 80 %
    assert quote.total("fee_minor") == 2_800  # 8,000.00 x 18 % x 7 / 360
    assert quote.total("reserve_minor") == 200_000
    assert quote.days == 7


def test_a_held_receivable_cannot_be_requested_again(
    trade: Trade, facility: Facility, now: datetime
) -> None:
    refs = trade.fundable(1)
    advance_request(merchant=trade.merchant, refs=refs, request_key="a", now=now)

    with pytest.raises(AdvanceRefused) as refused:
        advance_request(merchant=trade.merchant, refs=refs, request_key="b", now=now)

    assert [code for code, _ in refused.value.reasons[refs[0]]] == ["ALREADY_ASSIGNED"]
    assert Assignment.objects.count() == 1


def test_an_advance_over_receivables_due_on_different_days_has_a_decimal_mean_tenor(
    trade: Trade, facility: Facility, now: datetime
) -> None:
    """Issue 8, item 10: the mean tenor of 10 and 11 days is 10.50, not round()'s 10, and the
    APR-equivalent divides by it exactly, rounding once, half up."""
    refs = trade.fundable(1, due_in_days=10) + trade.fundable(1, due_in_days=11)

    advance = advance_request(merchant=trade.merchant, refs=refs, request_key="k", now=now)

    net = advance.advance_minor - advance.fee_minor
    assert advance.mean_days == Decimal("10.50")
    assert advance.days == 11
    assert advance.apr == apr_equivalent_mean(advance.fee_minor, net, [(80_000, 10), (80_000, 11)])
    assert advance.apr != apr_equivalent(advance.fee_minor, net, 10)
