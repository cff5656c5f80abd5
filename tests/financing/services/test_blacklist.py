"""The blacklist: officers add and lift it; the database keeps one active bar per merchant.

Blacklisting by the overdue sweep, and lifting what it imposed, are in ``test_overdue``.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from financing.exceptions import WrongState
from financing.models import Blacklisting
from financing.services.blacklist import blacklist_add
from tests.financing.conftest import Trade, blacklist_lifted, constraint_of

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_the_database_allows_one_active_blacklisting_per_merchant(
    trade: Trade, officer: User, now: datetime
) -> None:
    merchant = trade.merchant
    first = blacklist_add(merchant=merchant, officer=officer, reason="Fraud alert", now=now)

    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        Blacklisting.objects.create(merchant=merchant, reason="Again", created_at=now)
    assert constraint_of(refused.value) == "blacklisting_one_active_per_merchant"
    with pytest.raises(WrongState, match="already blacklisted"):
        blacklist_add(merchant=merchant, officer=officer, reason="Again", now=now)
    # A lift without officer or reason is refused by the database as well.
    with pytest.raises(IntegrityError) as unlifted, transaction.atomic():
        Blacklisting.objects.filter(pk=first.pk).update(lifted_at=now)
    assert constraint_of(unlifted.value) == "blacklisting_lift_needs_officer_and_reason"

    blacklist_lifted(first, officer, "Cleared", now)
    blacklist_add(merchant=merchant, officer=officer, reason="New alert", now=now)
    assert Blacklisting.objects.filter(merchant=merchant).count() == 2
