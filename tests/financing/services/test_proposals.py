"""Four-eyes over everything that moves risk (issue 8 item 7): one officer proposes, a different
senior officer confirms, and only then does anything change."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from financing.exceptions import MakerCheckerViolation, NotPermitted, WrongState
from financing.models import Advance, Facility, FacilityChange, RiskChange
from financing.services.decisions import advance_approve, advance_authorize
from financing.services.facilities import facility_change_propose
from financing.services.proposals import change_confirm, change_reject
from financing.services.quotes import advance_accept
from financing.services.requests import advance_request
from tests.financing.conftest import Trade, constraint_of

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _raise_threshold(facility: Facility, officer: User, now: datetime) -> RiskChange:
    return facility_change_propose(
        facility=facility,
        officer=officer,
        reason="Busy season",
        now=now,
        changes={"checker_threshold_minor": 10_000_000},
    )


def test_a_proposed_threshold_raise_changes_nothing_until_a_senior_confirms(
    trade: Trade, facility: Facility, officer: User, senior: User, now: datetime
) -> None:
    """The issue's case: a plain officer raises the threshold, then approves 40,000.00 alone."""
    proposal = _raise_threshold(facility, officer, now)
    refs = trade.fundable(1, amount="50000.00")
    advance = advance_request(merchant=trade.merchant, refs=refs, request_key="big", now=now)

    decided = advance_approve(advance=advance, officer=officer, now=now)

    assert advance.advance_minor == 4_000_000
    assert decided.status == Advance.Status.APPROVED  # still needs the checker
    assert Facility.objects.get(pk=facility.pk).checker_threshold_minor == 500_000
    with pytest.raises(NotPermitted):  # a plain officer cannot confirm anyone's change
        change_confirm(change=proposal, officer=User.objects.get(pk=officer.pk), now=now)
    assert RiskChange.objects.get(pk=proposal.pk).status == RiskChange.Status.PROPOSED


def test_the_proposer_cannot_confirm_even_as_a_senior(
    facility: Facility, senior: User, senior_two: User, now: datetime
) -> None:
    proposal = _raise_threshold(facility, senior, now)

    with pytest.raises(MakerCheckerViolation):
        change_confirm(change=proposal, officer=senior, now=now)
    with pytest.raises(MakerCheckerViolation):
        change_reject(change=proposal, officer=senior, now=now, note="Withdrawn")
    assert Facility.objects.get(pk=facility.pk).version == 1

    confirmed = change_confirm(change=proposal, officer=senior_two, now=now)

    assert (confirmed.status, confirmed.decided_by) == (RiskChange.Status.CONFIRMED, senior_two)
    assert Facility.objects.get(pk=facility.pk).checker_threshold_minor == 10_000_000
    audit = FacilityChange.objects.filter(facility=facility).first()
    assert audit is not None and (audit.officer, audit.proposal) == (senior, confirmed)
    with pytest.raises(WrongState, match="confirmed already"):
        change_confirm(change=proposal, officer=senior_two, now=now)


def test_the_database_refuses_a_decider_who_is_the_proposer(
    facility: Facility, officer: User, now: datetime
) -> None:
    proposal = _raise_threshold(facility, officer, now)

    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        RiskChange.objects.filter(pk=proposal.pk).update(
            status="confirmed", decided_by=officer, decided_at=now
        )

    assert constraint_of(refused.value) == "riskchange_decider_not_proposer"


def test_one_open_proposal_per_target(
    facility: Facility, officer: User, senior: User, now: datetime
) -> None:
    first = _raise_threshold(facility, officer, now)
    with pytest.raises(WrongState, match="already proposed"):
        _raise_threshold(facility, officer, now)
    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        RiskChange.objects.create(
            kind="facility_change",
            target=first.target,
            reason="Rival draft",
            proposed_by=senior,
            proposed_at=now,
        )
    assert constraint_of(refused.value) == "riskchange_one_open_per_target"

    change_reject(change=first, officer=senior, now=now, note="Not this season")

    assert Facility.objects.get(pk=facility.pk).checker_threshold_minor == 500_000
    assert _raise_threshold(facility, officer, now).status == RiskChange.Status.PROPOSED


def test_a_rejection_needs_a_note(
    facility: Facility, officer: User, senior: User, now: datetime
) -> None:
    proposal = _raise_threshold(facility, officer, now)

    with pytest.raises(WrongState, match="Say why"):
        change_reject(change=proposal, officer=senior, now=now, note="  ")

    assert RiskChange.objects.get(pk=proposal.pk).status == RiskChange.Status.PROPOSED


def test_a_confirmed_change_voids_open_advances_for_requoting(
    trade: Trade,
    open_facility: Callable[..., Facility],
    officer: User,
    senior: User,
    senior_two: User,
    now: datetime,
) -> None:
    facility = open_facility(trade.merchant, checker_threshold_minor=100_000)
    big = advance_request(
        merchant=trade.merchant, refs=trade.fundable(1, "5000.00"), request_key="a", now=now
    )
    approved = advance_approve(advance=big, officer=officer, now=now)
    waiting = advance_request(
        merchant=trade.merchant, refs=trade.fundable(1, "2000.00"), request_key="b", now=now
    )
    assert approved.status == Advance.Status.APPROVED

    change_confirm(
        change=facility_change_propose(
            facility=facility,
            officer=officer,
            reason="Rate review",
            now=now,
            changes={"annual_rate_bp": 2400},
        ),
        officer=senior,
        now=now,
    )

    # A new rate is a new price: both go to their merchant to accept it (advance_requote_send),
    # and the approval under the old terms is gone.
    voided = Advance.objects.get(pk=approved.pk)
    assert (voided.status, voided.approval_hash) == (Advance.Status.REQUOTE, "")
    assert "Facility terms changed (Rate review)" in voided.decision_note
    assert Advance.objects.get(pk=waiting.pk).status == Advance.Status.REQUOTE
    with pytest.raises(WrongState):  # nothing approved is left to authorize at the old price
        advance_authorize(advance=voided, officer=senior_two, now=now)
    advance_accept(advance=voided, terms_hash=voided.price_hash, now=now)
    repriced = advance_approve(advance=voided, officer=officer, now=now)
    assert repriced.fee_minor > approved.fee_minor  # priced at the new rate
