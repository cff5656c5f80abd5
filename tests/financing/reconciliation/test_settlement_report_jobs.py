"""Uploads and jobs: a refused file writes nothing, the API answers at once and shows a
marketplace only its own jobs, officers upload in the admin and watch the progress, and a real
worker reconciles what was uploaded."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import reverse

import financing.tasks
from financing.models import Break, ReconJob
from financing.reconciliation.reports import (
    ReportUploadedElsewhere,
    settlement_report_path,
    settlement_report_run,
    settlement_report_upload,
)
from merchants.models import Marketplace, Merchant
from tests.api.conftest import SignedClient, merchant_signed_client, signed_client
from tests.financing.conftest import Trade
from tests.financing.reconciliation.helpers import file_job_worker
from tests.financing.reconciliation.report_helpers import chunks_of

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

HEADER = b"line_id,payout_ref,invoice_ref,order_ref,currency,amount,paid_to,settled_on\n"
GHOST = b"G%d,PO-GHOST-%d,INV-%d,,EUR,10.00,merchant,2026-11-01\n"


def ghosts(n: int) -> bytes:
    """``n`` lines of payouts the ledger does not have: each would be a break."""
    return HEADER + b"".join(GHOST % (k, k, k) for k in range(n))


class Enqueued:
    """Stands in for the task: remembers what was enqueued, runs nothing."""

    def __init__(self) -> None:
        self.job_ids: list[int] = []

    def delay(self, job_id: int) -> None:
        self.job_ids.append(job_id)


@pytest.fixture(autouse=True)
def report_dir(settings: Any, tmp_path: Path) -> Path:
    settings.SETTLEMENT_REPORT_DIR = str(tmp_path / "reports")
    return tmp_path / "reports"


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> Enqueued:
    stand_in = Enqueued()
    monkeypatch.setattr(financing.tasks, "settlement_report_reconcile", stand_in)
    return stand_in


def upload(body: bytes, marketplace: Marketplace, now: datetime) -> ReconJob:
    return settlement_report_upload(
        chunks=[body], file_name="r.csv", marketplace=marketplace, uploaded_by=None, now=now
    ).job


# --- refusals: nothing written ------------------------------------------------------------


@pytest.mark.parametrize(
    ("last_line", "reason"),
    [
        (
            b"L9,PO-1,=cmd|' /C calc'!A0,,EUR,1.00,bank,2026-11-01\n",
            "Line 2002, column 'invoice_ref': the cell starts with '=', which a spreadsheet",
        ),
        (
            b"L9,PO-1,INV-\xe9,,EUR,1.00,bank,2026-11-01\n",
            "The file is not UTF-8: line 2002 has byte 0xe9 at position 13.",
        ),
        (
            b"L9,PO-1,INV-9,,EUR,12.345,bank,2026-11-01\n",
            "Line 2002, column 'amount': EUR has 2 decimal place(s); '12.345' has 3.",
        ),
        (b"L9,PO-1,INV-9,,EUR,,bank,2026-11-01\n", "Line 2002, column 'amount': the value is"),
    ],
)
def test_a_file_bad_at_its_last_line_is_refused_with_nothing_written(
    marketplace: Marketplace, now: datetime, settings: Any, last_line: bytes, reason: str
) -> None:
    settings.SETTLEMENT_REPORT_PROGRESS_EVERY = 100  # batches would be written before the end
    job = upload(ghosts(2000) + last_line, marketplace, now)
    job = settlement_report_run(job_id=job.pk, now=now)
    assert job.status == ReconJob.Status.REFUSED
    assert job.refusal.startswith(reason), job.refusal
    assert not Break.objects.exists()
    assert (job.breaks_found, job.matched) == (0, 0)


def test_the_same_file_good_is_reconciled(marketplace: Marketplace, now: datetime) -> None:
    job = settlement_report_run(job_id=upload(ghosts(2000), marketplace, now).pk, now=now)
    assert job.status == ReconJob.Status.DONE
    assert job.breaks_found == Break.objects.filter(job=job).count() == 2000


def test_a_50_mb_report_is_refused_and_not_stored(
    marketplace: Marketplace, now: datetime, tmp_path: Path, report_dir: Path
) -> None:
    big = tmp_path / "big.csv"
    with big.open("wb") as out:  # generated here, 50 MB, written a megabyte at a time
        out.write(HEADER)
        block = ghosts(20_000)[len(HEADER) :]
        while out.tell() < 50 * 1024 * 1024:
            out.write(block)
    job = settlement_report_upload(
        chunks=chunks_of(big),
        file_name="big.csv",
        marketplace=marketplace,
        uploaded_by=None,
        now=now,
    ).job
    assert job.status == ReconJob.Status.REFUSED
    assert job.refusal == (
        f"The file is {big.stat().st_size:,} bytes; the limit is 33,554,432"
        " (SETTLEMENT_REPORT_MAX_BYTES)."
    )
    assert list(report_dir.iterdir()) == []  # neither the report nor a partial copy
    assert settlement_report_run(job_id=job.pk, now=now).status == ReconJob.Status.REFUSED
    assert not Break.objects.exists()


def test_the_same_file_is_one_job(
    marketplace: Marketplace,
    now: datetime,
    enqueued: Enqueued,
    report_dir: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first = settlement_report_upload(
            chunks=[ghosts(3)],
            file_name="a.csv",
            marketplace=marketplace,
            uploaded_by=None,
            now=now,
        )
        again = settlement_report_upload(
            chunks=[ghosts(3)[:7], ghosts(3)[7:]],
            file_name="b.csv",
            marketplace=marketplace,
            uploaded_by=None,
            now=now,
        )
    assert first.created and not again.created and again.job.pk == first.job.pk
    assert enqueued.job_ids == [first.job.pk]  # enqueued once, after commit
    assert [p.name for p in report_dir.iterdir()] == [f"{first.job.file_sha256}.report"]
    assert settlement_report_path(first.job.file_sha256).read_bytes() == ghosts(3)


def test_another_marketplaces_file_is_not_yours(
    marketplace: Marketplace, now: datetime, enqueued: Enqueued
) -> None:
    upload(ghosts(3), marketplace, now)
    rival = Marketplace.objects.create(code="rival-x", name="Rival")
    with pytest.raises(ReportUploadedElsewhere):
        upload(ghosts(3), rival, now)


def test_orders_of_an_amazon_report_are_matched_by_their_net(
    trade: Trade, marketplace: Marketplace, now: datetime
) -> None:
    """An Amazon settlement spreads an order over rows: their net pays the order's invoice."""
    trade.order("111-1", "100.00")
    trade.invoice("INV-A", "111-1", "100.00")
    trade.paid("9001", "INV-A", "90.00")
    header = (
        "settlement-id\tsettlement-start-date\tsettlement-end-date\tdeposit-date\ttotal-amount"
        "\tcurrency\ttransaction-type\torder-id\tamount-type\tamount-description\tamount\n"
    )
    rows = [
        "9001\t2026-10-15\t2026-10-31\t2026-11-01 00:00:00 UTC\t80.00\tEUR\t\t\t\t\t\n",
        "9001\t\t\t\t\t\tOrder\t111-1\tItemPrice\tPrincipal\t100.00\n",
        "9001\t\t\t\t\t\tOrder\t111-1\tItemFees\tCommission\t-10.00\n",
        "9001\t\t\t\t\t\tother-transaction\t\tother-transaction\tSubscription Fee\t-10.00\n",
    ]
    job = settlement_report_run(
        job_id=upload((header + "".join(rows)).encode(), marketplace, now).pk, now=now
    )
    assert job.status == ReconJob.Status.DONE, job.refusal
    assert job.file_format == "amazon-v2"
    assert (job.matched, job.breaks_found) == (1, 0)
    assert job.summary["unallocated"] == 1  # the subscription fee pays no receivable


# --- the API ------------------------------------------------------------------------------


@pytest.fixture
def api(marketplace: Marketplace) -> SignedClient:
    return signed_client(marketplace)


@pytest.fixture
def rival(db: None) -> SignedClient:
    return signed_client(Marketplace.objects.create(code="rival", name="Rival Market"))


def test_a_marketplace_uploads_and_gets_202_with_its_job_at_once(
    api: SignedClient, enqueued: Enqueued, django_capture_on_commit_callbacks: Any
) -> None:
    stamp = int(time.time())
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/settlement-reports", ghosts(5), content_type="text/csv", timestamp=stamp
        )
    assert response.status_code == 202, response.content
    job = response.json()["job"]
    assert response["Location"] == f"/api/v1/jobs/{job['id']}"
    assert (job["status"], job["lines_done"], job["percent"]) == ("queued", 0, 0)
    assert enqueued.job_ids == [job["id"]]

    # Signed a second before the first: the same bytes under the same stamp would be a replay.
    again = api.post(
        "/api/v1/settlement-reports",
        ghosts(5),
        content_type="text/csv",
        timestamp=stamp - 1,
    )
    assert again.status_code == 200 and again.json()["job"]["id"] == job["id"]


def test_a_multipart_upload_keeps_its_file_name(api: SignedClient, enqueued: Enqueued) -> None:
    boundary = "BoUnDaRy"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="june.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + ghosts(2)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = api.post(
        "/api/v1/settlement-reports", body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 202, response.content
    job = ReconJob.objects.get(pk=response.json()["job"]["id"])
    assert job.file_name == "june.csv"
    assert settlement_report_path(job.file_sha256).read_bytes() == ghosts(2)


def test_the_job_endpoint_shows_a_marketplace_only_its_own_jobs(
    api: SignedClient, rival: SignedClient, merchant: Merchant, now: datetime
) -> None:
    assert api.marketplace is not None
    job = settlement_report_run(job_id=upload(ghosts(4), api.marketplace, now).pk, now=now)
    mine = api.get(f"/api/v1/jobs/{job.pk}")
    assert mine.status_code == 200
    shown = mine.json()["job"]
    assert (shown["status"], shown["lines_total"], shown["lines_done"], shown["percent"]) == (
        "done",
        4,
        4,
        100,
    )
    assert (shown["breaks_found"], shown["summary"]["breaks"]) == (4, {"missing_in_ledger": 4})

    assert rival.get(f"/api/v1/jobs/{job.pk}").status_code == 404
    assert rival.get("/api/v1/jobs/999999").status_code == 404
    assert merchant_signed_client(merchant).get(f"/api/v1/jobs/{job.pk}").status_code == 403
    assert Client().get(f"/api/v1/jobs/{job.pk}").status_code == 401


def test_a_merchant_key_may_not_upload(merchant: Merchant, enqueued: Enqueued) -> None:
    response = merchant_signed_client(merchant).post(
        "/api/v1/settlement-reports", ghosts(1), content_type="text/csv"
    )
    assert response.status_code == 403
    assert not ReconJob.objects.exists()


# --- the admin ----------------------------------------------------------------------------


def test_an_officer_uploads_and_watches_the_progress(
    officer: User,
    officer_client_factory: Callable[..., Client],
    marketplace: Marketplace,
    enqueued: Enqueued,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = officer_client_factory(officer)
    listing = client.get(reverse("admin:financing_settlementreportjob_changelist"))
    assert b"Upload a report" in listing.content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:financing_settlementreportjob_upload"),
            {
                "marketplace": marketplace.pk,
                "report": SimpleUploadedFile("june.csv", ghosts(3), "text/csv"),
            },
        )
    job = ReconJob.objects.get()
    progress_url = reverse("admin:financing_settlementreportjob_progress", args=[job.pk])
    assert response.status_code == 302 and response["Location"] == progress_url
    assert (job.uploaded_by, job.marketplace, enqueued.job_ids) == (officer, marketplace, [job.pk])

    page = client.get(progress_url)
    assert page.status_code == 200 and b"<progress" in page.content
    poll = reverse("admin:financing_settlementreportjob_progress_json", args=[job.pk])
    assert client.get(poll).json()["job"]["status"] == "queued"
    settlement_report_run(job_id=job.pk, now=job.created_at)
    done = client.get(poll).json()["job"]
    assert (done["status"], done["percent"], done["breaks_found"]) == ("done", 100, 3)


def test_an_auditor_may_watch_but_not_upload(
    auditor: User, officer_client_factory: Callable[..., Client]
) -> None:
    client = officer_client_factory(auditor)
    listing = client.get(reverse("admin:financing_settlementreportjob_changelist"))
    assert listing.status_code == 200 and b"Upload a report" not in listing.content
    assert client.get(reverse("admin:financing_settlementreportjob_upload")).status_code == 403


# --- a real worker --------------------------------------------------------------------------


@pytest.fixture
def worker_queue(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, report_dir: Path
) -> Iterator[str]:
    with file_job_worker("settlement_report_reconcile", redis_url, monkeypatch, report_dir) as q:
        yield q


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_reconciles_the_upload(
    marketplace: Marketplace, now: datetime, worker_queue: str
) -> None:
    with transaction.atomic():
        job = upload(ghosts(300), marketplace, now)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status == ReconJob.Status.DONE:
            break
        time.sleep(0.2)
    assert (job.status, job.lines_done, job.breaks_found) == ("done", 300, 300)
