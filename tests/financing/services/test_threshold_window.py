"""The checker threshold counts the merchant's rolling 24 hours, not each advance alone
(issue 8 item 8): splitting a big advance into small ones no longer dodges the checker."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User

from financing.models import Advance, Facility
from financing.services.decisions import advance_approve
from financing.services.requests import advance_request
from tests.financing.conftest import Trade

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def line(trade: Trade, open_facility: Callable[..., Facility]) -> Facility:
    return open_facility(trade.merchant, checker_threshold_minor=500_000)  # 5,000.00


def _requested(trade: Trade, now: datetime, key: str) -> Advance:
    refs = trade.fundable(1, amount="6000.00")  # advances 4,800.00: under 5,000.00 alone
    return advance_request(merchant=trade.merchant, refs=refs, request_key=key, now=now)


def test_two_advances_under_the_threshold_within_24_hours_need_a_checker(
    trade: Trade, line: Facility, officer: User, now: datetime
) -> None:
    first = _requested(trade, now, "a")
    assert advance_approve(advance=first, officer=officer, now=now).status == "disbursed"

    later = now + timedelta(hours=23)
    second = _requested(trade, later, "b")
    decided = advance_approve(advance=second, officer=officer, now=later)

    assert second.advance_minor < line.checker_threshold_minor
    assert decided.status == Advance.Status.APPROVED
    assert "24 hours" in decided.decision_note


def test_an_advance_outside_the_window_does_not_count(
    trade: Trade, line: Facility, officer: User, now: datetime
) -> None:
    first = _requested(trade, now, "a")
    advance_approve(advance=first, officer=officer, now=now)

    later = now + timedelta(hours=25)
    second = _requested(trade, later, "b")

    assert advance_approve(advance=second, officer=officer, now=later).status == "disbursed"


def test_a_rejected_advance_does_not_count(
    trade: Trade, line: Facility, officer: User, now: datetime
) -> None:
    from financing.services.decisions import advance_reject

    first = _requested(trade, now, "a")
    advance_reject(advance=first, officer=officer, now=now, note="Not now")
    second = _requested(trade, now, "b")

    assert advance_approve(advance=second, officer=officer, now=now).status == "disbursed"
