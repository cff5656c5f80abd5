"""pain.001 out, the bank's camt.054 of the same payments back in: every payment's end-to-end
id comes back on an entry of its amount (matching them is reconciliation's next step)."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.contrib.auth.models import User

from financing.models import StatementEntry
from financing.services.payment_files import payment_batch_create
from merchants.models import Merchant
from tests.financing.reconciliation.camt_synthetic import camt054_debits
from tests.financing.reconciliation.helpers import (
    account_active,
    payment_pending,
    statement_imported,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.mark.parametrize("batch_entry", [False, True], ids=["entry-per-payment", "batch-entry"])
def test_the_batched_payments_come_back_on_the_statement(
    batch_entry: bool, merchant: Merchant, officer: User, senior: User, now: datetime
) -> None:
    account_active(merchant, officer, senior, now)
    payments = [payment_pending(merchant, now, amount) for amount in (80_000, 19_999, 1)]
    batch = payment_batch_create(currency="EUR", scheme="pain.001.001.09", officer=officer, now=now)
    sent = list(batch.payments.order_by("pk"))
    assert [p.pk for p in sent] == [p.pk for p in payments]

    camt = camt054_debits(sent, message_id="RT-1", booked_on=now.date(), batch_entry=batch_entry)
    job = statement_imported(camt, now, "rt.xml")

    assert job.status == "done", job.refusal
    entries = list(StatementEntry.objects.order_by("line"))
    came_back = {d["end_to_end_id"]: d["amount_minor"] for e in entries for d in e.details}
    assert came_back == {p.end_to_end_id: p.amount_minor for p in sent}
    assert all(e.direction == "debit" and e.booked for e in entries)
    assert sum(e.amount_minor for e in entries) == batch.control_sum_minor
