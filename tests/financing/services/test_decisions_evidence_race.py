"""No check-then-act on evidence: a decision re-checks the evidence under the merchant's chain lock.

Issue 8, item 4. Every piece of evidence reaches a merchant's chain under its chain lock
(ledger.locks), so a decision that holds that lock while it re-checks sees every credit note
committed before it, and none can land between the re-check and the money moving.

The race is staged, not hoped for: a credit note is appended in an open transaction (holding
the chain lock, its projection written but not committed) while the decision runs; it commits
the moment the decision waits for a lock (pg_locks says so). Without the lock before the
re-check, the decision has by then checked the evidence as it was and disburses against a
credited invoice; with it, the decision waits for the chain first, and its re-check sees the
credit note.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth.models import User

from financing import locks
from financing.exceptions import AdvanceRefused, ApprovalVoid
from financing.models import Advance, Facility
from financing.services.decisions import advance_approve, advance_authorize
from financing.services.requests import advance_request
from ledger.models import Invoice
from tests.financing.conftest import NoticeTaskRecorder, Trade, staged_race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def race(trade: Trade, ref: str, decide: Callable[[], Advance]) -> Any:
    """Run ``decide`` while a credit note of ``ref`` holds the chain, and commit the note as soon
    as the decision waits for a lock. Returns the decision's result or exception."""
    _, result = staged_race(lambda: trade.credited(ref, amount="100.00"), decide)
    return result


@pytest.fixture
def no_lock_before_recheck(monkeypatch: pytest.MonkeyPatch) -> None:
    """The negative control: decisions re-check without the chain lock, as before the fix."""
    monkeypatch.setattr(locks, "chains_lock_later", lambda merchant_ids: lambda: None)


@pytest.fixture(params=["locked", "unlocked"])
def lock_mode(request: pytest.FixtureRequest) -> str:
    if request.param == "unlocked":
        request.getfixturevalue("no_lock_before_recheck")
    return str(request.param)


def test_a_credit_note_landing_during_authorization_voids_the_approval(
    trade: Trade,
    open_facility: Callable[..., Facility],
    officer: User,
    senior: User,
    now: datetime,
    notices_enqueued: NoticeTaskRecorder,
    lock_mode: str,
) -> None:
    open_facility(trade.merchant, checker_threshold_minor=100_000)
    [ref] = trade.fundable(1, amount="5000.00")
    advance = advance_request(merchant=trade.merchant, refs=[ref], request_key="k", now=now)
    assert advance_approve(advance=advance, officer=officer, now=now).status == "approved"

    result = race(trade, ref, lambda: advance_authorize(advance=advance, officer=senior, now=now))

    advance.refresh_from_db()
    assert Invoice.objects.get(merchant=trade.merchant, ref=ref).credited_minor == 10_000
    if lock_mode == "unlocked":  # the control: the check ran blind, the money left
        assert advance.status == Advance.Status.DISBURSED, result
        return
    assert isinstance(result, ApprovalVoid), result
    assert "CREDITED" in str(result)
    assert (advance.status, advance.approved_by) == (Advance.Status.REQUESTED, None)
    assert advance.disbursed_at is None


def test_a_credit_note_landing_during_approval_refuses_it(
    trade: Trade,
    facility: Facility,
    officer: User,
    now: datetime,
    notices_enqueued: NoticeTaskRecorder,
    lock_mode: str,
) -> None:
    [ref] = trade.fundable(1, amount="1000.00")  # below the threshold: approval disburses
    advance = advance_request(merchant=trade.merchant, refs=[ref], request_key="k", now=now)

    result = race(trade, ref, lambda: advance_approve(advance=advance, officer=officer, now=now))

    advance.refresh_from_db()
    if lock_mode == "unlocked":
        assert advance.status == Advance.Status.DISBURSED, result
        return
    assert isinstance(result, AdvanceRefused), result
    assert [code for code, _ in result.reasons[ref]] == ["CREDITED"]
    assert advance.status == Advance.Status.REQUESTED
