"""Maker-checker: two officers release a large advance, and what they approved must not move.

An advance above the facility's checker threshold is approved by one officer (the maker) and
authorized by another (the checker). The approval binds a hash of the advance, its facility's
terms and its receivables' evidence; any change voids it back to the review queue.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F

from financing.books.models import JournalEntry
from financing.exceptions import (
    AdvanceRefused,
    ApprovalVoid,
    MakerCheckerViolation,
    NotPermitted,
    WrongState,
)
from financing.models import Advance, Assignment, Facility
from financing.services.decisions import advance_approve, advance_authorize, advance_reject
from financing.services.quotes import advance_accept
from financing.services.requests import advance_request
from ledger.models import Entry
from tests.financing.conftest import Trade, constraint_of, db_counts, facility_terms_set

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def facility(trade: Trade, open_facility: Callable[..., Facility]) -> Facility:
    return open_facility(trade.merchant, checker_threshold_minor=100_000)


@pytest.fixture
def advance(trade: Trade, facility: Facility, now: datetime) -> Advance:
    """A requested advance of 4,000.00 against one 5,000.00 invoice: above the threshold."""
    refs = trade.fundable(1, amount="5000.00")
    requested = advance_request(merchant=trade.merchant, refs=refs, request_key="big", now=now)
    assert requested.advance_minor == 400_000 > facility.checker_threshold_minor
    return requested


@pytest.fixture
def approved(advance: Advance, officer: User, now: datetime) -> Advance:
    result = advance_approve(advance=advance, officer=officer, now=now, note="Looks fine")
    assert result.status == Advance.Status.APPROVED
    return result


def state(advance: Advance) -> dict[str, Any]:
    """Everything a refused decision must leave as it was."""
    row = Advance.objects.filter(pk=advance.pk).values().get()
    return {
        "advance": row,
        "assignments": sorted(advance.assignments.values_list("invoice_ref", "status")),
        "committed": Facility.objects.get(pk=advance.facility_id).committed_minor,
        "rows": db_counts(),
    }


def _fresh(advance: Advance) -> Advance:
    return Advance.objects.get(pk=advance.pk)


def assert_approval_cleared(advance: Advance) -> Advance:
    fresh = _fresh(advance)
    assert fresh.status == Advance.Status.REQUESTED
    assert (fresh.approved_by, fresh.approved_at, fresh.approval_hash) == (None, None, "")
    assert fresh.authorized_by is None and fresh.disbursed_at is None
    assert fresh.decision_note.startswith("Approval void: ")
    assert set(fresh.assignments.values_list("status", flat=True)) == {"held"}
    assert not JournalEntry.objects.filter(key=f"disburse:{advance.ref}").exists()
    return fresh


# Who may decide ---------------------------------------------------------------------------------


def test_the_maker_cannot_be_the_checker(
    advance: Advance, senior: User, senior_two: User, now: datetime
) -> None:
    advance_approve(advance=advance, officer=senior, now=now)
    before = state(advance)

    with pytest.raises(MakerCheckerViolation):
        advance_authorize(advance=advance, officer=senior, now=now)

    assert state(advance) == before
    disbursed = advance_authorize(advance=advance, officer=senior_two, now=now)
    assert disbursed.status == Advance.Status.DISBURSED
    assert (disbursed.approved_by, disbursed.authorized_by) == (senior, senior_two)


@pytest.mark.parametrize("action", ["approve", "reject", "authorize"])
def test_an_auditor_decides_nothing(
    advance: Advance, officer: User, auditor: User, now: datetime, action: str
) -> None:
    if action == "authorize":
        advance_approve(advance=advance, officer=officer, now=now)
    decide: dict[str, Callable[[], Advance]] = {
        "approve": lambda: advance_approve(advance=advance, officer=auditor, now=now),
        "reject": lambda: advance_reject(advance=advance, officer=auditor, now=now, note="No"),
        "authorize": lambda: advance_authorize(advance=advance, officer=auditor, now=now),
    }
    before = state(advance)

    with pytest.raises(NotPermitted):
        decide[action]()

    assert state(advance) == before


def test_an_officer_without_the_checker_permission_cannot_authorize(
    advance: Advance, officer: User, senior: User, now: datetime
) -> None:
    advance_approve(advance=advance, officer=senior, now=now)
    before = state(advance)

    with pytest.raises(NotPermitted, match="authorize_advance"):
        advance_authorize(advance=advance, officer=officer, now=now)

    assert state(advance) == before


# A change after approval voids it ---------------------------------------------------------------


def test_a_facility_change_voids_the_approval_until_approved_afresh(
    approved: Advance, facility: Facility, officer: User, senior: User, now: datetime
) -> None:
    fee_before = approved.fee_minor
    facility_terms_set(facility, now, reason="Quarterly rate review", annual_rate_bp=2400)

    # The new rate is a new price: the confirmed change clears the approval and sends the new
    # quote to the merchant at once (issue 8, items 7 and 9), so nothing is left to authorize.
    requote = _fresh(approved)
    assert requote.status == Advance.Status.REQUOTE and requote.fee_minor > fee_before
    assert (requote.approved_by, requote.approved_at, requote.approval_hash) == (None, None, "")
    assert "Facility terms changed (Quarterly rate review)" in requote.decision_note
    with pytest.raises((ApprovalVoid, WrongState)):
        advance_authorize(advance=approved, officer=senior, now=now)
    assert not JournalEntry.objects.filter(key=f"disburse:{approved.ref}").exists()

    advance_accept(advance=requote, terms_hash=requote.price_hash, now=now)
    advance_approve(advance=approved, officer=officer, now=now)
    disbursed = advance_authorize(advance=approved, officer=senior, now=now)
    assert disbursed.status == Advance.Status.DISBURSED
    assert disbursed.fee_minor == requote.fee_minor
    assert JournalEntry.objects.filter(key=f"disburse:{approved.ref}").exists()


def test_a_facility_change_that_keeps_the_price_still_voids_the_approval(
    approved: Advance, facility: Facility, senior: User, now: datetime
) -> None:
    facility_terms_set(facility, now, reason="Tenor review", max_tenor_days=200)

    voided = assert_approval_cleared(approved)
    assert "Facility terms changed (Tenor review)" in voided.decision_note
    with pytest.raises((ApprovalVoid, WrongState)):
        advance_authorize(advance=approved, officer=senior, now=now)


def test_facility_terms_changed_behind_the_service_still_void_at_authorization(
    approved: Advance, facility: Facility, senior: User, now: datetime
) -> None:
    """The approval hash binds the facility's version: a change the service did not see (no
    voiding ran) is caught when the checker acts."""
    Facility.objects.filter(pk=facility.pk).update(annual_rate_bp=2400, version=F("version") + 1)

    with pytest.raises(ApprovalVoid, match="changed after approval"):
        advance_authorize(advance=approved, officer=senior, now=now)

    assert_approval_cleared(approved)


def test_a_credit_note_after_approval_voids_it(
    approved: Advance, trade: Trade, officer: User, senior: User, now: datetime
) -> None:
    [ref] = approved.assignments.values_list("invoice_ref", flat=True)
    trade.credited(ref, "10.00")

    with pytest.raises(ApprovalVoid, match="fresh approval"):
        advance_authorize(advance=approved, officer=senior, now=now)

    assert_approval_cleared(approved)
    assert not Entry.objects.filter(type="advance.disbursed").exists()
    # The evidence is still bad, so a fresh approval is refused with the reason.
    with pytest.raises(AdvanceRefused) as refused:
        advance_approve(advance=approved, officer=officer, now=now)
    assert [code for code, _ in refused.value.reasons[ref]] == ["CREDITED"]


def test_a_voided_approval_says_which_invoice_changed_and_how(
    approved: Advance, trade: Trade, senior: User, now: datetime
) -> None:
    [ref] = approved.assignments.values_list("invoice_ref", flat=True)
    trade.credited(ref, "10.00")

    with pytest.raises(ApprovalVoid) as voided:
        advance_authorize(advance=approved, officer=senior, now=now)

    assert "CREDITED" in voided.value.message and ref in voided.value.message
    assert "CREDITED" in _fresh(approved).decision_note


def test_a_raw_update_of_the_fee_after_approval_voids_it(
    approved: Advance, senior: User, now: datetime
) -> None:
    Advance.objects.filter(pk=approved.pk).update(fee_minor=F("fee_minor") - 1)

    with pytest.raises(ApprovalVoid, match="changed after approval"):
        advance_authorize(advance=approved, officer=senior, now=now)

    voided = assert_approval_cleared(approved)
    assert "changed after approval" in voided.decision_note


# Rejection --------------------------------------------------------------------------------------


@pytest.mark.parametrize("note", ["", "   "])
def test_a_rejection_needs_a_note(
    advance: Advance, officer: User, now: datetime, note: str
) -> None:
    before = state(advance)

    with pytest.raises(WrongState, match="Say why"):
        advance_reject(advance=advance, officer=officer, now=now, note=note)

    assert state(advance) == before


@pytest.mark.parametrize("stage", ["requested", "approved"])
def test_a_rejection_releases_the_holds(
    advance: Advance,
    facility: Facility,
    trade: Trade,
    officer: User,
    now: datetime,
    stage: str,
) -> None:
    if stage == "approved":
        advance_approve(advance=advance, officer=officer, now=now)
    facility.refresh_from_db()
    assert facility.committed_minor == 400_000
    refs = list(advance.assignments.values_list("invoice_ref", flat=True))

    rejected = advance_reject(advance=advance, officer=officer, now=now, note="Debtor disputes")

    assert rejected.status == Advance.Status.REJECTED
    assert (rejected.decided_at, rejected.decision_note) == (now, "Debtor disputes")
    facility.refresh_from_db()
    assert facility.committed_minor == 0
    assert set(advance.assignments.values_list("status", flat=True)) == {"released"}
    again = advance_request(merchant=trade.merchant, refs=refs, request_key="again", now=now)
    assert again.pk != advance.pk
    assert Assignment.objects.filter(status="held").get().advance_id == again.pk
    with pytest.raises(WrongState):  # a rejected advance is decided for good
        advance_approve(advance=advance, officer=officer, now=now)


# The database keeps maker and checker apart too -----------------------------------------------


def test_the_database_refuses_a_checker_who_is_the_maker(
    approved: Advance, officer: User, senior: User
) -> None:
    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        Advance.objects.filter(pk=approved.pk).update(authorized_by=officer)
    assert constraint_of(refused.value) == "advance_checker_not_maker"
    assert _fresh(approved).authorized_by is None

    # Negative control: another officer as checker is accepted by the same UPDATE.
    Advance.objects.filter(pk=approved.pk).update(authorized_by=senior)
    assert _fresh(approved).authorized_by == senior
