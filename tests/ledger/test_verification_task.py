"""The daily verification runs in a real Celery worker over Redis and records what it found."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from ledger.models import LedgerVerification
from ledger.services import entry_append, ledger_verification_run
from ledger.tasks import ledger_verify
from tests.conftest import celery_worker, order_placed

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def appended(merchant, marketplace, now) -> None:
    for n in range(5):
        entry_append(
            source=marketplace.code, merchant_id=merchant.pk, event=order_placed(f"O-{n}"), now=now
        )


@pytest.mark.sqlite_smoke
@pytest.mark.django_db
def test_verification_run_records_an_intact_ledger(appended, now) -> None:
    run = ledger_verification_run(now=now)
    run.refresh_from_db()
    assert run.outcome == LedgerVerification.Outcome.INTACT
    assert (run.chains_checked, run.entries_checked) == (1, 5)
    assert run.finished_at is not None


@pytest.mark.django_db
def test_verification_run_records_the_break(appended, merchant, now) -> None:
    with connection.cursor() as cursor:  # the chain head claims an entry that is not there
        cursor.execute("UPDATE ledger_chain SET head_seq = 6 WHERE merchant_id = %s", [merchant.pk])
    run = ledger_verification_run(now=now)
    assert run.outcome == LedgerVerification.Outcome.BROKEN
    assert (run.broken_merchant, run.broken_seq) == (merchant.public_id, 6)
    assert "entry missing" in run.problem


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_real_worker_runs_the_task(appended, redis_url) -> None:
    queue = f"test-{uuid.uuid4().hex[:8]}"
    with celery_worker(queue, redis_url) as output:
        ledger_verify.apply_async(queue=queue)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            run = LedgerVerification.objects.filter(finished_at__isnull=False).first()
            if run is not None:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the worker did not finish the verification within 60 s")
    assert run.outcome == LedgerVerification.Outcome.INTACT, output
    assert run.entries_checked == 5
