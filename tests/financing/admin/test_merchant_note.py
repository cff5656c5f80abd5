"""The note officers write for the merchant (``Advance.merchant_note``), kept apart from their
internal record (``decision_note``): the approve form fills both separately, a rejection's
reason is written for the merchant, and what the services add themselves stays internal."""

from __future__ import annotations

import importlib

from django.apps import apps as django_apps
from django.contrib.auth.models import User
from django.utils import timezone

from financing.models import Advance, Facility
from financing.services.decisions import advance_approve, advance_reject
from financing.services.quotes import advance_withdraw
from tests.financing.admin.conftest import SignIn, _request, _url
from tests.financing.conftest import Trade


def test_the_approve_form_keeps_the_merchants_note_apart_from_the_internal_one(
    live: Trade, line: Facility, officer: User, sign_in: SignIn
) -> None:
    advance = _request(live)
    client = sign_in(officer)
    page = client.get(_url("change", advance)).content.decode()
    assert 'name="merchant_note"' in page and "shown in their portal" in page

    client.post(
        _url("approve", advance),
        {"note": "Thin file; watch the debtor.", "merchant_note": "  Paid out today.  "},
    )

    advance.refresh_from_db()
    assert advance.status == Advance.Status.DISBURSED
    assert advance.decision_note == "Thin file; watch the debtor."
    assert advance.merchant_note == "Paid out today."
    review = client.get(_url("change", advance)).content.decode()
    assert "Note to the merchant" in review and "Paid out today." in review


def test_the_second_officer_reason_stays_internal(
    live: Trade, line: Facility, officer: User
) -> None:
    # Two advances of 4,000.00 within 24 hours: together above the 5,000.00 threshold.
    advance_approve(advance=_request(live, amount="5000.00"), officer=officer, now=timezone.now())
    second = _request(live, amount="5000.00")

    approved = advance_approve(
        advance=second, officer=officer, now=timezone.now(), merchant_note="Almost there."
    )

    assert approved.status == Advance.Status.APPROVED
    assert "Needs a second officer" in approved.decision_note
    assert approved.merchant_note == "Almost there."


def test_a_rejections_reason_is_written_for_the_merchant(
    live: Trade, line: Facility, officer: User, sign_in: SignIn
) -> None:
    advance = _request(live)

    sign_in(officer).post(_url("reject", advance), {"note": "The buyer disputes the delivery."})

    advance.refresh_from_db()
    assert advance.status == Advance.Status.REJECTED
    assert advance.merchant_note == advance.decision_note == "The buyer disputes the delivery."


def test_a_withdrawals_reason_is_kept_for_the_officers_only(live: Trade, line: Facility) -> None:
    withdrawn = advance_withdraw(advance=_request(live), now=timezone.now(), reason="Found cheaper")

    assert "Found cheaper" in withdrawn.decision_note
    assert withdrawn.merchant_note == ""


def test_the_migration_hands_earlier_rejection_notes_to_the_merchant(
    live: Trade, line: Facility, officer: User
) -> None:
    rejected = advance_reject(
        advance=_request(live), officer=officer, now=timezone.now(), note="Buyer disputes."
    )
    withdrawn = advance_withdraw(advance=_request(live), now=timezone.now(), reason="Cheaper")
    Advance.objects.update(merchant_note="")  # as they stood before the field existed
    migration = importlib.import_module("financing.migrations.0014_advance_merchant_note")

    migration.rejection_notes_to_merchant(django_apps, None)

    rejected.refresh_from_db()
    withdrawn.refresh_from_db()
    assert rejected.merchant_note == "Buyer disputes."
    assert withdrawn.merchant_note == ""
