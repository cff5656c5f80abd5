"""Disbursement, reached two ways: on the maker's approval below the facility's checker
threshold, on the checker's authorization above it. Journal, chain, notice."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import transaction

from financing.books.models import Account, JournalEntry
from financing.exceptions import WrongState
from financing.locks import advance_decision_lock
from financing.models import (
    Advance,
    Assignment,
    AssignmentNotice,
    Facility,
    assignment_entry_ref,
)
from financing.selectors import evidence_trails
from financing.services.decisions import advance_approve, advance_authorize
from financing.services.disbursement import advance_disburse
from financing.services.requests import advance_request
from ledger.event_fields import REF_MAX_LENGTH
from ledger.models import Entry
from tests.financing.conftest import Trade

pytestmark = pytest.mark.django_db


# In the SQLite smoke run too: the embedded default runs each deferred read and write at once.
@pytest.mark.sqlite_smoke
def test_a_small_advance_disburses_on_approval(
    trade: Trade,
    facility: Facility,
    officer: User,
    now: datetime,
    capsys: pytest.CaptureFixture[str],
) -> None:
    refs = trade.fundable(2, amount="1000.00")

    advance = advance_request(merchant=trade.merchant, refs=refs, request_key="k1", now=now)
    assert advance.status == Advance.Status.REQUESTED
    assert set(advance.assignments.values_list("status", flat=True)) == {"held"}
    facility.refresh_from_db()
    assert facility.committed_minor == advance.advance_minor == 160_000

    approved = advance_approve(advance=advance, officer=officer, now=now)

    assert approved.status == Advance.Status.DISBURSED
    assert set(approved.assignments.values_list("status", flat=True)) == {"assigned"}
    entry = JournalEntry.objects.get(key=f"disburse:{advance.ref}")
    assert sorted(p.amount_minor for p in entry.postings.all()) == sorted(
        [200_000, -(160_000 - approved.fee_minor), -approved.fee_minor, -40_000]
    )
    chain = Entry.objects.filter(chain_id=trade.merchant.pk, source="chainfin")
    assert sorted(chain.values_list("type", flat=True)) == [
        "advance.disbursed",
        "receivable.assigned",
        "receivable.assigned",
    ]
    assert AssignmentNotice.objects.filter(advance=advance).count() == 1
    call_command("verify_books")
    call_command("verify_ledger")
    assert "intact" in capsys.readouterr().out.lower()


def test_a_large_advance_waits_for_a_second_officer(
    trade: Trade,
    open_facility,  # type: ignore[no-untyped-def]
    officer: User,
    senior: User,
    now: datetime,
) -> None:
    open_facility(trade.merchant, checker_threshold_minor=100_000)
    refs = trade.fundable(1, amount="5000.00")
    advance = advance_request(merchant=trade.merchant, refs=refs, request_key="big", now=now)

    approved = advance_approve(advance=advance, officer=officer, now=now)
    assert approved.status == Advance.Status.APPROVED
    assert not Account.objects.filter(code__startswith="advances_receivable").exists()

    disbursed = advance_authorize(advance=advance, officer=senior, now=now)
    assert disbursed.status == Advance.Status.DISBURSED
    assert disbursed.authorized_by == senior


def test_only_an_approved_advance_is_disbursed(
    trade: Trade, facility: Facility, now: datetime
) -> None:
    refs = trade.fundable(1, amount="1000.00")
    advance = advance_request(merchant=trade.merchant, refs=refs, request_key="k", now=now)

    with pytest.raises(WrongState, match="not approved"):
        advance_disburse(advance=advance, now=now)

    advance.refresh_from_db()
    assert advance.status == Advance.Status.REQUESTED
    assert not JournalEntry.objects.exists()
    assert not AssignmentNotice.objects.exists()


def test_an_advance_that_lost_a_receivable_is_not_disbursed(
    trade: Trade,
    open_facility,  # type: ignore[no-untyped-def]
    officer: User,
    now: datetime,
) -> None:
    open_facility(trade.merchant, checker_threshold_minor=100_000)
    refs = trade.fundable(2, amount="5000.00")
    advance = advance_request(merchant=trade.merchant, refs=refs, request_key="big", now=now)
    advance_approve(advance=advance, officer=officer, now=now)
    # Behind the advance's back: one of its receivables is no longer held by it.
    Assignment.objects.filter(advance=advance, invoice_ref=refs[1]).update(
        status=Assignment.Status.RELEASED
    )

    with pytest.raises(WrongState, match="lost a receivable"), transaction.atomic():
        advance_disburse(advance=advance_decision_lock(advance.pk), now=now)

    advance.refresh_from_db()
    assert advance.status == Advance.Status.APPROVED
    assert list(advance.assignments.values_list("status", flat=True).order_by("pk")) == [
        Assignment.Status.HELD,
        Assignment.Status.RELEASED,
    ]
    assert not JournalEntry.objects.exists()
    assert not AssignmentNotice.objects.exists()


def test_the_longest_invoice_number_the_api_accepts_finances(
    trade: Trade,
    facility: Facility,
    officer: User,
    now: datetime,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 8, item 13: "<invoice ref>@<advance ref>" overflowed the 128-character chain ref."""
    number = "INV-" + "7" * (REF_MAX_LENGTH - 4)
    trade.order("ORD-LONG")
    trade.invoice(number, "ORD-LONG")
    trade.delivered("ORD-LONG")
    advance = advance_request(merchant=trade.merchant, refs=[number], request_key="k", now=now)

    disbursed = advance_approve(advance=advance, officer=officer, now=now)

    assert disbursed.status == Advance.Status.DISBURSED
    assigned = Entry.objects.get(chain_id=trade.merchant.pk, type="receivable.assigned")
    assert len(assigned.external_ref) <= REF_MAX_LENGTH
    assert assigned.external_ref.endswith(f"@{advance.ref}")
    assert json.loads(bytes(assigned.body))["data"]["invoice_ref"] == number
    # The officer's evidence trail still finds the assignment under its shortened ref.
    [trail], _ = evidence_trails(advance=disbursed)
    assert "receivable.assigned" in [entry.type for entry in trail.entries]
    call_command("verify_ledger")
    assert "intact" in capsys.readouterr().out.lower()


def test_a_short_invoice_number_keeps_its_readable_assignment_ref() -> None:
    assert assignment_entry_ref(invoice_ref="INV-1", advance_ref="adv_1") == "INV-1@adv_1"
