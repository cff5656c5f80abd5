"""Portal fixtures: merchant users signed in through the real sign-in form, a seeded scenario."""

# The financing fixtures are imported to be shared; fixtures naming them as arguments are not
# redefinitions.
# ruff: noqa: F811

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from itertools import count

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from financing.models import Advance, Facility
from merchants.models import Membership, Merchant
from merchants.services import membership_grant
from tests.financing.conftest import (  # noqa: F401  (fixtures, shared with financing's tests)
    TODAY,
    Trade,
    officer,
    open_facility,
    senior,
    today,
    trade,
    trade_for,
    verified_merchant,
)
from tests.financing.settlement_helpers import disbursed, payout, settle_pending

PORTAL_PASSWORD = "a-long-portal-password"
REAL_LOCALDATE = timezone.localdate
_serial = count(1)


@pytest.fixture(autouse=True)
def _portal_today(monkeypatch: pytest.MonkeyPatch) -> None:
    """The portal's views read today from the clock; the scenarios are written for TODAY."""
    monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: TODAY)


@pytest.fixture
def make_portal_user(db: None, django_user_model: type[User]) -> Callable[..., User]:
    """``make_portal_user(merchant, role=...)``: a non-staff user with a membership of each."""

    def make(*merchants: Merchant, role: str = Membership.Role.OWNER, username: str = "") -> User:
        user = django_user_model.objects.create_user(
            username or f"supplier-{next(_serial)}",
            email=f"supplier{next(_serial)}@example.com",
            password=PORTAL_PASSWORD,
        )
        for merchant in merchants:
            membership_grant(user=user, merchant=merchant, role=role)
        return user

    return make


def portal_sign_in(user: User, client: Client | None = None) -> Client:
    """Sign ``user`` in through the portal's form (CSRF off as the test client does)."""
    client = client or Client()
    response = client.post(
        reverse("portal:login"), {"username": user.get_username(), "password": PORTAL_PASSWORD}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    return client


@dataclass
class Scenario:
    """Merchant A with a facility, eligible and ineligible invoices, one advance part repaid;
    merchant B with its own invoice; a user of each and one of both."""

    a: Merchant
    b: Merchant
    facility: Facility
    advance: Advance
    eligible: list[str]
    financed: list[str]
    ineligible: str
    b_invoice: str
    user_a: User
    user_b: User
    user_both: User


@pytest.fixture
def scenario(
    trade: Trade,
    trade_for: Callable[[Merchant], Trade],
    open_facility: Callable[..., Facility],
    officer: User,
    make_portal_user: Callable[..., User],
    verified_merchant: Merchant,
    make_merchant: Callable[..., Merchant],
    now: object,
) -> Scenario:
    line = open_facility(trade.merchant)
    financed = trade.fundable(2, amount="1000.00", due_in_days=20)
    advance = disbursed(trade, financed, officer, now)  # type: ignore[arg-type]
    # The buyer pays the first financed invoice in full: principal repaid, reserve released.
    payout(trade, [(financed[0], "1000.00")])
    settle_pending(now)  # type: ignore[arg-type]
    eligible = trade.fundable(3, amount="500.00", due_in_days=60)
    trade.order("ORD-NODELIVERY", "700.00")
    trade.invoice("INV-NODELIVERY", "ORD-NODELIVERY", "700.00")
    b = make_merchant()
    trade_b = trade_for(b)
    b_refs = trade_b.fundable(1, amount="900.00")
    return Scenario(
        a=trade.merchant,
        b=b,
        facility=Facility.objects.get(pk=line.pk),
        advance=Advance.objects.get(pk=advance.pk),
        eligible=eligible,
        financed=financed,
        ineligible="INV-NODELIVERY",
        b_invoice=b_refs[0],
        user_a=make_portal_user(trade.merchant),
        user_b=make_portal_user(b),
        user_both=make_portal_user(trade.merchant, b, role=Membership.Role.FINANCE),
    )


@pytest.fixture
def today_date() -> date:
    return TODAY
