"""manage.py seed_financing_demo: facilities and advances in every state, and settlement, through
the services."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command

from financing.models import (
    Advance,
    Assignment,
    AssignmentNotice,
    EarlyWarning,
    Facility,
    LineAllocation,
    Recourse,
    RiskChange,
    SettlementWork,
    SuspenseItem,
)
from merchants.models import BankAccount, Merchant


@pytest.mark.sqlite_smoke
@pytest.mark.django_db
def test_the_demo_has_advances_in_every_state_and_balanced_books() -> None:
    call_command("seed_demo", stdout=StringIO())

    call_command("seed_financing_demo", stdout=StringIO())

    verified = Merchant.objects.filter(kyc_status=Merchant.KycStatus.VERIFIED)
    assert Facility.objects.count() == verified.count() >= 2
    statuses = set(Advance.objects.values_list("status", flat=True))
    # Issue 8, item 9: a new price waits for its merchant, and a request was withdrawn.
    assert statuses == {"requested", "approved", "disbursed", "requote", "withdrawn", "repaid"}
    assert set(Assignment.objects.values_list("status", flat=True)) == {
        "held",
        "assigned",
        "released",
        "settled",
    }
    _assert_settlement_stories(verified.count())
    # Four-eyes: every opening and one change confirmed by another officer, one change pending.
    changes = RiskChange.objects.order_by("id")
    assert [c.status for c in changes.filter(kind="facility_change")] == ["confirmed", "proposed"]
    assert all(c.proposed_by.username == "officer" for c in changes)
    assert {c.decided_by.username for c in changes.filter(status="confirmed")} == {"senior"}
    assert changes.filter(kind="facility_open", status="confirmed").count() == verified.count()
    # Every merchant is paid to an account confirmed four-eyes, as the portal shows it (masked).
    assert (
        changes.filter(kind=RiskChange.Kind.BANK_ACCOUNT_CHANGE, status="confirmed").count()
        == verified.count()
    )
    active = BankAccount.objects.filter(status=BankAccount.Status.ACTIVE)
    assert set(active.values_list("merchant_id", flat=True)) == set(
        verified.values_list("pk", flat=True)
    )
    # a business buyer was e-mailed its notice of assignment, with the PDF (the console in the demo)
    emailed = AssignmentNotice.objects.filter(channel="email", status="delivered")
    assert emailed.exists()
    assert [m.to for m in mail.outbox] == [[n.debtor.email] for n in emailed.order_by("pk")]
    assert all(m.attachments[0][2] == "application/pdf" for m in mail.outbox)
    call_command("verify_books", stdout=StringIO())  # raises SystemExit(1) on a broken book
    call_command("verify_ledger", stdout=StringIO())

    count = Advance.objects.count()
    again = StringIO()
    call_command("seed_financing_demo", stdout=again)
    assert "already loaded" in again.getvalue()
    assert Advance.objects.count() == count


def _assert_settlement_stories(merchants: int) -> None:
    """Issue 9, item 7, for each verified merchant: an advance repaid in full, one partly repaid,
    one diluted by a credit note after funding with the recourse netted from its release, and a
    payout line in suspense; all of it applied by the settlement service, nothing left pending."""
    assert not SettlementWork.objects.exclude(status=SettlementWork.Status.DONE).exists()
    repaid_in_full = Advance.objects.filter(
        status=Advance.Status.REPAID, assignments__diluted_minor=0
    )
    assert repaid_in_full.count() == merchants
    partly = Assignment.objects.filter(
        status=Assignment.Status.ASSIGNED, principal_repaid_minor__gt=0, paid_minor__gt=0
    )
    assert partly.count() == merchants
    assert all(a.advance.status == Advance.Status.DISBURSED for a in partly)
    diluted = Assignment.objects.filter(status=Assignment.Status.SETTLED, diluted_minor__gt=0)
    assert diluted.count() == merchants
    for assignment in diluted:
        [recourse] = Recourse.objects.filter(assignment=assignment)
        assert recourse.reason == Recourse.Reason.CREDIT_NOTE
        assert recourse.amount_minor == assignment.diluted_minor
        [line] = LineAllocation.objects.filter(assignment=assignment)
        assert line.recourse_netted_minor == recourse.amount_minor  # netted from the release
        assert line.payout_entry_id > recourse.source_entry_id  # the release came later
        assert assignment.advance.status == Advance.Status.REPAID
    suspense = SuspenseItem.objects.filter(status=SuspenseItem.Status.OPEN, line__isnull=False)
    assert suspense.count() == merchants
    # The part-paid receivable shows on the early-warning list, as the daily check finds it.
    assert EarlyWarning.objects.filter(kind=EarlyWarning.Kind.PAYOUTS_SHORT).count() == merchants
