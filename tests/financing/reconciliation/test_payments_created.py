"""Payments are written with the money movement that causes them, exactly once (issue 10)."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from financing.models import Facility, Payment, SettlementWork
from financing.reconciliation.payments import end_to_end_id_for
from financing.services.settlement import settlement_work_run
from tests.financing.conftest import Trade
from tests.financing.settlement_helpers import balance, disbursed, payout, settle_pending

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_disbursing_creates_one_payment_of_the_net_advance(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    [ref] = trade.fundable(1)
    advance = disbursed(trade, [ref], officer, now)

    [payment] = Payment.objects.all()
    assert (payment.kind, payment.status, payment.merchant_id) == (
        Payment.Kind.DISBURSEMENT,
        Payment.Status.PENDING,
        trade.merchant.pk,
    )
    assert payment.amount_minor == advance.advance_minor - advance.fee_minor
    assert payment.amount_minor == -balance("disbursement_clearing")
    assert payment.source_key == f"disburse:{advance.ref}"
    assert payment.end_to_end_id == end_to_end_id_for(payment.source_key)
    assert len(payment.end_to_end_id) <= 35
    assert payment.bank_account is None  # the merchant has none yet; batching waits for one


def test_a_release_creates_one_payment_per_settlement_and_a_rerun_none(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    [ref] = trade.fundable(1)
    disbursed(trade, [ref], officer, now)
    payout(trade, [(ref, "1000.00")])
    [work] = SettlementWork.objects.all()

    assert settle_pending(now) == 1
    assert settlement_work_run(work_id=work.pk, now=now) is False

    release = Payment.objects.get(kind=Payment.Kind.RELEASE)
    assert release.amount_minor == 20_000  # the reserve, nothing netted
    assert release.source_key == f"release:settle:{work.entry_id}"
    assert Payment.objects.count() == 2
    # Both payments together are everything that left through disbursement clearing.
    total = sum(Payment.objects.values_list("amount_minor", flat=True))
    assert total == -balance("disbursement_clearing")


def test_a_partial_payment_releases_nothing_and_writes_no_payment(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    [ref] = trade.fundable(1)
    disbursed(trade, [ref], officer, now)
    payout(trade, [(ref, "400.00")])

    settle_pending(now)

    assert not Payment.objects.filter(kind=Payment.Kind.RELEASE).exists()


def test_the_database_refuses_a_second_payment_for_one_cause(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    [ref] = trade.fundable(1)
    disbursed(trade, [ref], officer, now)
    first = Payment.objects.get()

    with pytest.raises(IntegrityError, match="source_key"), transaction.atomic():
        Payment.objects.create(
            merchant=first.merchant,
            kind=first.kind,
            currency="EUR",
            amount_minor=1,
            end_to_end_id="CFOTHER",
            source_key=first.source_key,
            created_at=now,
        )
    # Negative control: another cause is accepted.
    Payment.objects.create(
        merchant=first.merchant,
        kind=first.kind,
        currency="EUR",
        amount_minor=1,
        end_to_end_id="CFOTHER",
        source_key="disburse:another",
        created_at=now,
    )


@pytest.mark.parametrize(
    ("field", "value", "constraint"),
    [
        ("amount_minor", 0, "payment_amount_positive"),
        ("end_to_end_id", "/bad_id", "payment_end_to_end_id_safe"),
        ("status", "batched", "payment_batched_has_file_and_account"),
        ("status", "rejected", "payment_batched_has_file_and_account"),
        ("status", "booked", "payment_booked_at_iff_booked"),
    ],
)
def test_the_database_refuses_a_malformed_payment(
    trade: Trade, now: datetime, field: str, value: object, constraint: str
) -> None:
    fields = {
        "merchant": trade.merchant,
        "kind": "disbursement",
        "currency": "EUR",
        "amount_minor": 100,
        "end_to_end_id": "CF1",
        "source_key": "disburse:x",
        "created_at": now,
        field: value,
    }
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        Payment.objects.create(**fields)
