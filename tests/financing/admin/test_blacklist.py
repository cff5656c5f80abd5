"""Blacklisting and lifting through the admin (financing.admin.blacklist)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from financing.admin.writes import PROPOSED
from financing.models import Blacklisting, RiskChange
from financing.services.blacklist import blacklist_add
from merchants.models import Merchant
from tests.financing.admin.conftest import SignIn, _messages

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


# --- blacklist ----------------------------------------------------------------------------------


def test_blacklist_and_lift_through_the_admin(
    verified_merchant: Merchant, officer: User, senior: User, auditor: User, sign_in: SignIn
) -> None:
    url = reverse("admin:financing_blacklisting_blacklist")
    refused = sign_in(auditor).post(url, {"merchant": verified_merchant.pk, "reason": "I think so"})
    assert "Missing permission financing.manage_blacklist." in refused.content.decode()
    assert not Blacklisting.objects.exists()
    client = sign_in(officer)
    listing = client.get(reverse("admin:financing_blacklisting_changelist")).content.decode()
    assert "Blacklist a merchant" in listing

    response = client.post(
        url, {"merchant": verified_merchant.pk, "reason": "Fraud suspected"}, follow=True
    )

    assert _messages(response) == [f"{verified_merchant.legal_name} is blacklisted."]
    blacklisting = Blacklisting.objects.get()
    assert (blacklisting.created_by, blacklisting.reason) == (officer, "Fraud suspected")
    assert "Lift…" in response.content.decode()
    again = client.post(url, {"merchant": verified_merchant.pk, "reason": "Again"})
    assert "is already blacklisted" in again.content.decode()

    lift = reverse("admin:financing_blacklisting_lift", args=[blacklisting.pk])
    assert "Fraud suspected" in client.get(lift).content.decode()
    blank = client.post(lift, {"reason": ""})
    assert "This field is required." in blank.content.decode()
    proposed = client.post(lift, {"reason": "Cleared by compliance"}, follow=True)

    # Four-eyes (issue 8): the lift is a proposal until a different senior officer confirms.
    assert _messages(proposed) == [PROPOSED]
    blacklisting.refresh_from_db()
    assert blacklisting.lifted_at is None
    pending = client.post(lift, {"reason": "Once more"})
    assert "already proposed" in pending.content.decode()
    change = RiskChange.objects.get(target=f"blacklisting:{blacklisting.pk}")
    decide = reverse("admin:financing_riskchange_decide", args=[change.pk])
    assert "Fraud suspected" in proposed.content.decode()  # the pending list says what it lifts
    confirmed = sign_in(senior).post(decide, {"note": "", "_confirm": "Confirm"}, follow=True)
    assert _messages(confirmed) == ["The change is confirmed and applied."]
    blacklisting.refresh_from_db()
    assert blacklisting.lifted_by == officer
    assert blacklisting.lift_reason == "Cleared by compliance"
    assert blacklisting.lift_change == change
    twice = client.post(lift, {"reason": "Once more"})
    assert "This blacklisting was already lifted." in twice.content.decode()


def test_active_blacklistings_are_listed_first(
    make_merchant: Callable[..., Merchant], officer: User, sign_in: SignIn
) -> None:
    old, newer = make_merchant(legal_name="Old Lifted GmbH"), make_merchant(legal_name="Active AG")
    now = timezone.now()
    lifted = blacklist_add(merchant=old, officer=officer, reason="old", now=now)
    lifted.lifted_at, lifted.lifted_by, lifted.lift_reason = now, officer, "ok"
    lifted.save()
    blacklist_add(merchant=newer, officer=officer, reason="new", now=now - timedelta(days=3))

    page = sign_in(officer).get(reverse("admin:financing_blacklisting_changelist")).content.decode()

    assert page.index("Active AG") < page.index("Old Lifted GmbH")
