"""``payment_record_later`` writes one payment per cause, in one statement (issue 13), carrying the
merchant's active bank account; a cause repeated, at once or concurrently, gets the first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db.models import Model

from financing.exceptions import WrongState
from financing.models import Payment
from merchants.models import Merchant
from tests.financing.conftest import staged_race
from tests.financing.reconciliation.helpers import account_active, payment_pending

CAUSE = "disburse:adv_record0000001"


def _recorded(merchant: Merchant, now: datetime, amount_minor: int = 80_000) -> Payment:
    return payment_pending(merchant, now, amount_minor, source_key=CAUSE)


def _columns(instance: Model) -> dict[str, Any]:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


@pytest.mark.sqlite_smoke
@pytest.mark.django_db
def test_a_payment_is_returned_as_stored_with_the_active_account(
    verified_merchant: Merchant, officer: User, senior: User, now: datetime
) -> None:
    account = account_active(verified_merchant, officer, senior, now)

    payment = _recorded(verified_merchant, now)

    stored = Payment.objects.get()
    assert payment.bank_account_id == account.pk
    assert _columns(payment) == _columns(stored)
    assert (payment.status, payment.status_reason, payment.batch_id) == ("pending", "", None)
    assert not payment._state.adding


@pytest.mark.django_db
def test_a_merchant_without_an_active_account_is_paid_once_it_has_one(
    verified_merchant: Merchant, now: datetime
) -> None:
    payment = _recorded(verified_merchant, now)

    assert payment.bank_account_id is None
    assert Payment.objects.get().bank_account_id is None


@pytest.mark.sqlite_smoke
@pytest.mark.django_db
def test_a_cause_repeated_returns_its_first_payment(
    verified_merchant: Merchant, now: datetime
) -> None:
    first = _recorded(verified_merchant, now)

    again = _recorded(verified_merchant, now)

    assert again.pk == first.pk
    assert _columns(again) == _columns(first)
    assert Payment.objects.count() == 1


@pytest.mark.django_db
def test_a_cause_repeated_for_another_amount_is_refused_and_writes_nothing(
    verified_merchant: Merchant, now: datetime
) -> None:
    first = _recorded(verified_merchant, now)

    with pytest.raises(WrongState, match="caused a different payment"):
        _recorded(verified_merchant, now, amount_minor=1)

    assert [(p.pk, p.amount_minor) for p in Payment.objects.all()] == [(first.pk, 80_000)]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_cause_recorded_concurrently_gets_one_payment(
    verified_merchant: Merchant, now: datetime
) -> None:
    """The second insert waits for the first transaction's row, then writes nothing and returns
    that row (a read before the insert would have found nothing and failed on the unique key)."""
    first, second = staged_race(
        lambda: _recorded(verified_merchant, now), lambda: _recorded(verified_merchant, now)
    )

    assert isinstance(first, Payment), first
    assert isinstance(second, Payment), second
    assert second.pk == first.pk
    assert Payment.objects.count() == 1
