"""Helpers of the portal's advances tests: a frozen clock, users by role, the price form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from financing.models import Advance
from merchants.models import Membership
from tests.conftest import NOW
from tests.portal.conftest import Scenario, portal_sign_in


@pytest.fixture
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """The advances pages price on the bank's business day of ``timezone.now()``; the
    scenario's evidence is written for NOW, so the pages must read the same clock."""
    monkeypatch.setattr(timezone, "now", lambda: NOW)


@pytest.fixture
def member_of_a(
    scenario: Scenario, make_portal_user: Callable[..., User]
) -> Callable[[str], Client]:
    """``member_of_a(role)``: a signed-in client of a new user with that role at merchant A."""

    def sign_in(role: str) -> Client:
        return portal_sign_in(make_portal_user(scenario.a, role=role))

    return sign_in


@pytest.fixture
def owner(scenario: Scenario) -> Client:
    return portal_sign_in(scenario.user_a)


@pytest.fixture
def viewer(member_of_a: Callable[[str], Client]) -> Client:
    return member_of_a(Membership.Role.VIEWER)


def price_form(client: Client, refs: list[str]) -> dict[str, Any]:
    """Open the price page of ``refs`` and return the "Accept and request" form as posted."""
    response = client.get(reverse("portal:advance_price"), {"refs": refs})
    assert response.status_code == 200, response.content.decode()[:3000]
    initial = response.context["form"].initial
    return {
        "refs": refs,
        "terms_hash": initial["terms_hash"],
        "request_key": initial["request_key"],
    }


def requested(client: Client, refs: list[str]) -> Advance:
    """Request an advance of ``refs`` through the pages, at the price shown."""
    response = client.post(reverse("portal:advance_create"), price_form(client, refs))
    assert response.status_code == 302, response.content.decode()[:3000]
    return Advance.objects.get(ref=response["Location"].rstrip("/").rsplit("/", 1)[-1])


def page(response: Any) -> str:
    return str(response.content.decode())
