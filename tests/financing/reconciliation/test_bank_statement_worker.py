"""End to end with a real Celery worker: the bank posts a camt.054, the API answers at once, the
worker imports and matches it, and the job endpoint shows the progress and the result."""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from django.apps import apps
from django.test import Client
from django.utils import timezone

from financing.models import Break, MatchRule, Payment, StatementEntry
from merchants.models import Merchant
from merchants.services import api_key_issue
from tests.api.conftest import SignedClient
from tests.financing.reconciliation.camt_synthetic import camt054_debits
from tests.financing.reconciliation.helpers import file_job_worker, payment_pending

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def worker_queue(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, uploads_dir: Path
) -> Iterator[str]:
    with file_job_worker("bank_statement_import", redis_url, monkeypatch, uploads_dir) as queue:
        yield queue


@pytest.fixture
def match_rules() -> None:
    """The seeded rules: an earlier transactional test's flush may have emptied the table."""
    if not MatchRule.objects.exists():
        importlib.import_module("financing.migrations.0012_matching").rules_seed(apps, None)


def test_the_bank_posts_a_statement_and_a_real_worker_imports_and_matches_it(
    merchant: Merchant, now: datetime, match_rules: None, worker_queue: str
) -> None:
    payments = [payment_pending(merchant, now, 80_000), payment_pending(merchant, now, 1_999)]
    stranger = Payment(currency="EUR", amount_minor=4_200, end_to_end_id="NOT-CHAINFINS-E2E")
    camt = camt054_debits([*payments, stranger], message_id="WRK-1", booked_on=now.date())
    issued = api_key_issue(bank=True, now=timezone.now(), label="statements")
    bank = SignedClient(Client(), None, issued.key, issued.signing_secret)

    response = bank.post("/api/v1/bank-statements", camt, content_type="application/xml")

    assert response.status_code == 202, response.content
    assert response.json()["job"]["status"] == "queued"
    location = response["Location"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = bank.get(location).json()["job"]
        if job["status"] in ("done", "refused"):
            break
        time.sleep(0.2)
    assert (job["status"], job["lines_done"], job["lines_total"], job["percent"]) == (
        "done",
        3,
        3,
        100,
    ), job
    assert (job["matched"], job["breaks_found"]) == (2, 1)
    assert job["summary"]["matching"] == {
        "confirmed": 2,
        "suggested": 0,
        "ambiguous": 0,
        "unmatched": 1,
        "not_on_statement": 0,
    }
    assert set(Payment.objects.values_list("status", flat=True)) == {"booked"}
    [brk] = Break.objects.all()
    assert (brk.kind, brk.amount_minor) == ("unmatched_statement_entry", -4_200)

    again = bank.post("/api/v1/bank-statements", camt, content_type="application/xml")
    assert again.status_code == 200 and again.json()["already_imported"] is True
    assert again.json()["job"]["id"] == job["id"] and StatementEntry.objects.count() == 3
