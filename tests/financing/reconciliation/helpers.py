"""Bank accounts and payments as the services write them, for the money movement tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

import financing.tasks
from financing.models import Payment, ReconJob
from financing.services.bank_accounts import bank_account_propose
from financing.services.bank_statements import bank_statement_import_run, bank_statement_upload
from financing.services.payments import payment_record_later
from financing.services.proposals import change_confirm
from merchants.models import BankAccount, Merchant
from tests.conftest import celery_worker

IBAN = "DE89370400440532013000"
_causes = count(1)


def account_active(
    merchant: Merchant, officer: User, senior: User, now: datetime, iban: str = IBAN
) -> BankAccount:
    change = bank_account_propose(
        merchant=merchant,
        holder_name=merchant.legal_name,
        iban=iban,
        officer=officer,
        reason="Onboarding: account confirmed by the merchant's bank letter.",
        now=now,
    )
    change_confirm(change=change, officer=senior, now=now)
    return BankAccount.objects.get(pk=change.payload["bank_account"])


def payment_pending(
    merchant: Merchant, now: datetime, amount_minor: int = 80_000, source_key: str | None = None
) -> Payment:
    """A disbursement's payment, of a new cause unless ``source_key`` names one."""
    return payment_record_later(
        merchant=merchant,
        kind=Payment.Kind.DISBURSEMENT,
        currency="EUR",
        amount_minor=amount_minor,
        source_key=source_key or f"disburse:adv_test{next(_causes)}",
        now=now,
    )()


def statement_imported(data: bytes, now: datetime, file_name: str = "statement.xml") -> ReconJob:
    """Upload a camt file and run its import job in-line, as the worker does; the job after."""
    upload = bank_statement_upload(file_name=file_name, data=data, uploaded_by=None, now=now)
    return bank_statement_import_run(job_id=upload.job.pk, now=now)


class OnQueue:
    """A task sent to one test's own queue, so no other worker on the broker meets it."""

    def __init__(self, task: Any, queue: str) -> None:
        self.task, self.queue = task, queue

    def delay(self, **kwargs: Any) -> None:
        self.task.apply_async(kwargs=kwargs, queue=self.queue)


@contextmanager
def file_job_worker(
    task_name: str, redis_url: str, monkeypatch: pytest.MonkeyPatch, uploads: Path
) -> Iterator[str]:
    """A real worker on a queue of its own, reading uploads from ``uploads``; the task
    ``financing.tasks.<task_name>`` goes to it while the block runs. Prints its log after."""
    queue = f"test-{task_name}-{uuid.uuid4().hex[:8]}"
    with celery_worker(queue, redis_url, SETTLEMENT_REPORT_DIR=str(uploads)) as output:
        task = getattr(financing.tasks, task_name)
        monkeypatch.setattr(financing.tasks, task_name, OnQueue(task, queue))
        try:
            yield queue
        finally:
            print(output)
