"""The money movement admin: officers upload statements and status reports, and write and
download payment files; auditors read only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

import financing.tasks
from financing.models import BankStatement, Break, Payment, PaymentBatch, ReconJob
from financing.reconciliation.pain001 import pain001_validate
from financing.services.bank_statements import bank_statement_import_run
from ledger.money import Money
from merchants.models import Merchant
from tests.financing.reconciliation.helpers import account_active, payment_pending

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

FORMATS = Path(__file__).resolve().parents[3] / ".." / "shared" / "formats"
ESR = FORMATS / "camt054/postfinance-ch-camt054.001.04-esr-batch.xml"


def _messages(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m) for m in response.context["messages"]]


def _esr(name: str = "esr.xml") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, ESR.read_bytes(), content_type="application/xml")


def test_an_officer_uploads_a_statement_watches_its_job_and_reads_its_entries(
    officer: User,
    officer_client_factory: Callable[..., Client],
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    queued: list[int] = []
    monkeypatch.setattr(
        financing.tasks.bank_statement_import, "delay", lambda job_id: queued.append(job_id)
    )
    client = officer_client_factory(officer)
    listing = client.get(reverse("admin:financing_bankstatement_changelist"))
    url = reverse("admin:financing_bankstatementjob_upload")
    assert url.encode() in listing.content and client.get(url).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"file": _esr()})

    job = ReconJob.objects.get()
    progress = reverse("admin:financing_bankstatementjob_progress", args=[job.pk])
    assert response.status_code == 302 and response["Location"] == progress
    assert (job.uploaded_by, job.status, queued) == (officer, "queued", [job.pk])
    page = client.get(progress)
    assert page.status_code == 200 and b"<progress" in page.content and b"entries" in page.content
    poll = reverse("admin:financing_bankstatementjob_progress_json", args=[job.pk])
    assert client.get(poll).json()["job"]["status"] == "queued"

    bank_statement_import_run(job_id=job.pk, now=job.created_at)
    done = client.get(poll).json()["job"]
    assert (done["status"], done["percent"], done["lines_done"], done["breaks_found"]) == (
        "done",
        100,
        2,
        2,
    )
    statement = BankStatement.objects.get()
    page = client.get(reverse("admin:financing_bankstatement_change", args=[statement.pk]))
    assert page.status_code == 200 and b"EndToEndId-001-02-01" in page.content

    again = client.post(url, {"file": _esr("renamed.xml")}, follow=True)
    assert again.redirect_chain[-1][0] == progress
    assert any(m.startswith(f"Already uploaded as job {job.pk}") for m in _messages(again))
    assert ReconJob.objects.count() == 1 and queued == [job.pk]


def test_a_bad_envelope_is_refused_on_the_form_and_writes_nothing(
    officer: User, officer_client_factory: Callable[..., Client]
) -> None:
    client = officer_client_factory(officer)
    hostile = SimpleUploadedFile(
        "x.xml", b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "y">]><d>&x;</d>'
    )

    response = client.post(reverse("admin:financing_bankstatementjob_upload"), {"file": hostile})

    assert response.status_code == 200
    assert "DTD or entity declaration" in " ".join(response.context["form"].non_field_errors())
    assert not ReconJob.objects.exists() and not BankStatement.objects.exists()


def test_a_truncated_file_is_a_refused_job_that_says_why(
    officer: User, officer_client_factory: Callable[..., Client]
) -> None:
    client = officer_client_factory(officer)
    cut = SimpleUploadedFile("cut.xml", ESR.read_bytes()[:500], content_type="application/xml")

    client.post(reverse("admin:financing_bankstatementjob_upload"), {"file": cut})
    job = bank_statement_import_run(job_id=ReconJob.objects.get().pk, now=timezone.now())

    poll = reverse("admin:financing_bankstatementjob_progress_json", args=[job.pk])
    shown = client.get(poll).json()["job"]
    assert shown["status"] == "refused"
    assert shown["refusal"].startswith("The file is not well-formed XML")
    assert not BankStatement.objects.exists()


def test_an_auditor_may_watch_but_not_upload(
    auditor: User, officer_client_factory: Callable[..., Client]
) -> None:
    client = officer_client_factory(auditor)
    listing = client.get(reverse("admin:financing_bankstatementjob_changelist"))
    assert listing.status_code == 200 and b"Upload a statement" not in listing.content
    for name in ("financing_bankstatementjob_upload", "financing_paymentbatch_status"):
        assert client.get(reverse(f"admin:{name}")).status_code == 403


@pytest.fixture
def pending_payment(merchant: Merchant, officer: User, senior: User, now: datetime) -> Payment:
    """A payment waiting for a payment file, to the merchant's confirmed bank account."""
    account_active(merchant, officer, senior, now)
    return payment_pending(merchant, now)


def test_the_payment_action_writes_a_file_to_download(
    officer: User,
    pending_payment: Payment,
    officer_client_factory: Callable[..., Client],
) -> None:
    payment = pending_payment
    client = officer_client_factory(officer)

    response = client.post(
        reverse("admin:financing_payment_changelist"),
        {"action": "batch_pain_001_001_09", "_selected_action": [payment.pk]},
        follow=True,
    )

    batch = PaymentBatch.objects.get()
    assert f"pain.001.001.09 file {batch.msg_id} of 1 payments written" in " ".join(
        _messages(response)
    )
    download = client.get(reverse("admin:financing_paymentbatch_download", args=[batch.pk]))
    assert download["Content-Disposition"] == f'attachment; filename="{batch.msg_id}.xml"'
    pain001_validate(download.content, scheme="pain.001.001.09")
    assert payment.end_to_end_id.encode() in download.content


def test_an_auditor_neither_writes_nor_downloads_payment_files(
    officer: User,
    auditor: User,
    pending_payment: Payment,
    officer_client_factory: Callable[..., Client],
) -> None:
    payment = pending_payment
    client = officer_client_factory(auditor)
    client.post(
        reverse("admin:financing_payment_changelist"),
        {"action": "batch_pain_001_001_09", "_selected_action": [payment.pk]},
    )
    assert not PaymentBatch.objects.exists()
    officer_client = officer_client_factory(officer)
    officer_client.post(
        reverse("admin:financing_payment_changelist"),
        {"action": "batch_pain_001_001_03", "_selected_action": [payment.pk]},
    )
    batch = PaymentBatch.objects.get()
    download = reverse("admin:financing_paymentbatch_download", args=[batch.pk])
    assert client.get(download).status_code == 403


def test_an_officer_uploads_a_status_report(
    officer: User,
    pending_payment: Payment,
    officer_client_factory: Callable[..., Client],
) -> None:
    payment = pending_payment
    client = officer_client_factory(officer)
    client.post(
        reverse("admin:financing_payment_changelist"),
        {"action": "batch_pain_001_001_09", "_selected_action": [payment.pk]},
    )
    Payment.objects.filter(pk=payment.pk).update(end_to_end_id="EndToEndId-006-01-01")
    report = FORMATS / "pain001/postfinance-ch-pain002.001.03-status-report.xml"
    upload = SimpleUploadedFile("p2.xml", report.read_bytes(), content_type="application/xml")

    response = client.post(
        reverse("admin:financing_paymentbatch_status"), {"file": upload}, follow=True
    )

    assert "rejected: 1" in " ".join(_messages(response))
    assert Payment.objects.get().status == "rejected"
    assert Break.objects.get().kind == "payment_rejected"


def test_the_payments_list_is_one_line_a_payment_with_the_merchant_named_in_full_on_hover(
    merchant: Merchant,
    officer: User,
    pending_payment: Payment,
    officer_client_factory: Callable[..., Client],
) -> None:
    client = officer_client_factory(officer)

    page = client.get(reverse("admin:financing_payment_changelist")).content.decode()

    assert f'<span title="{merchant}">{merchant.legal_name}</span>' in page
    assert "white-space: nowrap" in page  # the compact list: one line a row
    assert 'id="nav-sidebar"' not in page  # the list has the screen's width


def test_the_payment_page_shows_its_amount_in_money_not_minor_units(
    officer: User, pending_payment: Payment, officer_client_factory: Callable[..., Client]
) -> None:
    page = (
        officer_client_factory(officer)
        .get(reverse("admin:financing_payment_change", args=[pending_payment.pk]))
        .content.decode()
    )

    assert Money.display(pending_payment.amount_minor, pending_payment.currency) in page
    assert "Amount minor" not in page
