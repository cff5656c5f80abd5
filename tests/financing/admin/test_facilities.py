"""Facilities opened and changed through the admin, and their audit trail (admin.facilities).

Since issue 8 both are four-eyes: the form proposes, a different senior officer confirms on the
proposal's page, and only then does the line open or change.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from financing.models import Facility, FacilityChange, RiskChange
from merchants.models import Merchant
from tests.financing.admin.conftest import SignIn, _facility_form, _messages, _request
from tests.financing.conftest import Trade, facility_terms_set


def _confirm(client: object, change: RiskChange) -> object:
    url = reverse("admin:financing_riskchange_decide", args=[change.pk])
    return client.post(url, {"note": "", "_confirm": "Confirm"})  # type: ignore[attr-defined]


pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


# --- facilities ---------------------------------------------------------------------------------


def test_a_facility_change_through_the_admin_is_audited_with_its_reason(
    line: Facility, officer: User, senior: User, sign_in: SignIn
) -> None:
    client = sign_in(officer)
    url = reverse("admin:financing_facility_change", args=[line.pk])
    form = client.get(url).content.decode()
    assert 'name="reason"' in form and 'value="100000.00"' in form

    missing = client.post(url, _facility_form(line, limit_minor="150000.00"))
    assert missing.status_code == 200 and "This field is required." in missing.content.decode()
    unchanged = client.post(url, _facility_form(line, reason="No reason to change anything"))
    assert "No term changed" in unchanged.content.decode()
    assert line.changes.count() == 1  # the opening only

    response = client.post(
        url, _facility_form(line, limit_minor="150000.00", reason="Annual review: turnover up")
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:financing_riskchange_changelist")
    line.refresh_from_db()
    assert (line.limit_minor, line.version) == (10_000_000, 1)  # proposed, not applied
    proposal = RiskChange.objects.get(target=f"facility:{line.pk}", status="proposed")
    pending = client.get(reverse("admin:financing_riskchange_changelist")).content.decode()
    assert "100,000.00 EUR → 150,000.00 EUR" in pending
    assert _confirm(client, proposal).status_code == 200  # the proposer cannot confirm
    line.refresh_from_db()
    assert line.version == 1

    confirmed = _confirm(sign_in(senior), proposal)

    assert confirmed.status_code == 302
    line.refresh_from_db()
    assert (line.limit_minor, line.version) == (15_000_000, 2)
    change = line.changes.order_by("-id").first()
    assert change is not None
    assert (change.officer, change.reason) == (officer, "Annual review: turnover up")
    assert change.proposal is not None and change.proposal.decided_by == senior
    assert (change.before["limit_minor"], change.after["limit_minor"]) == (10_000_000, 15_000_000)
    assert {k for k in change.after if change.after[k] != change.before[k]} == {"limit_minor"}
    page = client.get(url).content.decode()
    assert "Annual review: turnover up" in page
    assert "100,000.00 EUR → 150,000.00 EUR" in page
    assert f"confirmed by {senior.get_username()}" in page


def test_a_facility_limit_cannot_go_below_its_commitments(
    live: Trade, line: Facility, officer: User, sign_in: SignIn
) -> None:
    _request(live)  # commits 800.00
    client = sign_in(officer)
    url = reverse("admin:financing_facility_change", args=[line.pk])

    response = client.post(url, _facility_form(line, limit_minor="500.00", reason="Cut"))

    assert response.status_code == 200
    assert "the limit cannot go below that" in response.content.decode()
    line.refresh_from_db()
    assert (line.limit_minor, line.version) == (10_000_000, 1)


def test_a_facility_opens_through_the_admin_with_its_reason(
    make_merchant: Callable[..., Merchant], officer: User, senior: User, sign_in: SignIn
) -> None:
    merchant = make_merchant()
    client = sign_in(officer)
    data = {
        "merchant": str(merchant.pk),
        "currency": "eur",
        "limit_minor": "25000",
        "checker_threshold_minor": "2500.00",
        "advance_rate_bp": "7500",
        "annual_rate_bp": "1500",
        "day_count": "ACT/360",
        "max_tenor_days": "90",
        "min_days_to_due": "7",
        "debtor_cap_bp": "5000",
        "late_fee_rate_bp": "2400",
        "late_fee_cap_bp": "1000",
        "non_accrual_after_days": "90",
        "blacklist_after_days": "30",
        "active": "on",
        "reason": "Onboarding after KYC",
        "_save": "Save",
    }

    response = client.post(reverse("admin:financing_facility_add"), data)

    assert response.status_code == 302, response.content.decode()
    assert not Facility.objects.filter(merchant=merchant).exists()  # proposed only
    again = client.post(reverse("admin:financing_facility_add"), data, follow=True)
    assert "already proposed" in " ".join(_messages(again))  # one open proposal per target
    proposal = RiskChange.objects.get(kind="facility_open", status="proposed")
    assert _confirm(sign_in(senior), proposal).status_code == 302
    facility = Facility.objects.get(merchant=merchant)
    assert (facility.currency, facility.limit_minor, facility.checker_threshold_minor) == (
        "EUR",
        2_500_000,
        250_000,
    )
    [opening] = FacilityChange.objects.filter(facility=facility)
    assert (opening.officer, opening.reason, opening.before) == (
        officer,
        "Onboarding after KYC",
        {},
    )
    twice = client.post(reverse("admin:financing_facility_add"), data)
    assert twice.status_code == 200  # one active line per currency: a form error, no row
    assert Facility.objects.filter(merchant=merchant).count() == 1


def test_a_facility_change_the_database_refuses_returns_to_the_form(
    line: Facility,
    officer: User,
    open_facility: Callable[..., Facility],
    sign_in: SignIn,
) -> None:
    facility_terms_set(line, timezone.now(), reason="Closed", active=False)
    successor = open_facility(line.merchant)
    line.refresh_from_db()
    client = sign_in(officer)
    url = reverse("admin:financing_facility_change", args=[line.pk])

    response = client.post(url, _facility_form(line, reason="Reopen"), follow=True)

    assert response.redirect_chain == [(url, 302)]
    [message] = _messages(response)
    assert "facility_one_active_per_currency" in message
    line.refresh_from_db()
    assert (line.active, line.version) == (False, 2)
    assert Facility.objects.filter(merchant=line.merchant, active=True).get() == successor
