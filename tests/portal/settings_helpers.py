"""Fixtures of the settings tests: merchant A with an owner, a finance and a viewer member;
merchant B with its owner. Imported by the settings test modules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User

from merchants.models import Membership, Merchant


@dataclass
class Team:
    a: Merchant
    b: Merchant
    owner: User
    finance: User
    viewer: User
    owner_b: User

    def membership(self, user: User, merchant: Merchant | None = None) -> Membership:
        return Membership.objects.get(user=user, merchant=merchant or self.a)


@pytest.fixture
def team(make_merchant: Callable[..., Merchant], make_portal_user: Callable[..., User]) -> Team:
    a, b = make_merchant(), make_merchant()
    return Team(
        a=a,
        b=b,
        owner=make_portal_user(a, role="owner"),
        finance=make_portal_user(a, role="finance"),
        viewer=make_portal_user(a, role="viewer"),
        owner_b=make_portal_user(b, role="owner"),
    )
