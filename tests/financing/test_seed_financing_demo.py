"""manage.py seed_financing_demo: facilities and advances in every state, through the services."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command

from financing.models import Advance, Assignment, AssignmentNotice, Facility, RiskChange
from merchants.models import Merchant


@pytest.mark.sqlite_smoke
@pytest.mark.django_db
def test_the_demo_has_advances_in_every_state_and_balanced_books() -> None:
    call_command("seed_demo", stdout=StringIO())

    call_command("seed_financing_demo", stdout=StringIO())

    verified = Merchant.objects.filter(kyc_status=Merchant.KycStatus.VERIFIED)
    assert Facility.objects.count() == verified.count() >= 2
    statuses = set(Advance.objects.values_list("status", flat=True))
    # Issue 8, item 9: a new price waits for its merchant, and a request was withdrawn.
    assert statuses == {"requested", "approved", "disbursed", "requote", "withdrawn"}
    assert set(Assignment.objects.values_list("status", flat=True)) == {
        "held",
        "assigned",
        "released",
    }
    # Four-eyes: every opening and one change confirmed by another officer, one change pending.
    changes = RiskChange.objects.order_by("id")
    assert [c.status for c in changes.filter(kind="facility_change")] == ["confirmed", "proposed"]
    assert all(c.proposed_by.username == "officer" for c in changes)
    assert {c.decided_by.username for c in changes.filter(status="confirmed")} == {"senior"}
    assert changes.filter(kind="facility_open", status="confirmed").count() == verified.count()
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
