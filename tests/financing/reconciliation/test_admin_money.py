"""The money movement admin: officers upload statements and status reports, and write and
download payment files; auditors read only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from financing.models import BankStatement, Break, Payment, PaymentBatch, ReconJob
from financing.reconciliation.pain001 import pain001_validate
from merchants.models import Merchant
from tests.financing.reconciliation.helpers import account_active, payment_pending

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

FORMATS = Path(__file__).resolve().parents[3] / ".." / "shared" / "formats"
ESR = FORMATS / "camt054/postfinance-ch-camt054.001.04-esr-batch.xml"


def _messages(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m) for m in response.context["messages"]]


def test_an_officer_uploads_a_statement_and_reads_its_entries(
    officer: User, officer_client_factory: Callable[..., Client]
) -> None:
    client = officer_client_factory(officer)
    url = reverse("admin:financing_bankstatement_upload")
    assert client.get(url).status_code == 200

    upload = SimpleUploadedFile("esr.xml", ESR.read_bytes(), content_type="application/xml")
    response = client.post(url, {"file": upload}, follow=True)

    assert "esr.xml (camt.054.001.04) read" in " ".join(_messages(response))
    statement = BankStatement.objects.get()
    page = client.get(reverse("admin:financing_bankstatement_change", args=[statement.pk]))
    assert page.status_code == 200 and b"EndToEndId-001-02-01" in page.content


def test_a_refused_upload_says_why_and_imports_nothing(
    officer: User, officer_client_factory: Callable[..., Client]
) -> None:
    client = officer_client_factory(officer)
    cut = SimpleUploadedFile("cut.xml", ESR.read_bytes()[:500], content_type="application/xml")

    response = client.post(
        reverse("admin:financing_bankstatement_upload"), {"file": cut}, follow=True
    )

    assert any(
        m.startswith("Refused: The file is not well-formed XML") for m in _messages(response)
    )
    assert ReconJob.objects.get().status == "refused" and not BankStatement.objects.exists()


def test_an_auditor_may_not_upload(
    auditor: User, officer_client_factory: Callable[..., Client]
) -> None:
    client = officer_client_factory(auditor)
    for name in ("financing_bankstatement_upload", "financing_paymentbatch_status"):
        assert client.get(reverse(f"admin:{name}")).status_code == 403


def test_the_payment_action_writes_a_file_to_download(
    merchant: Merchant,
    officer: User,
    senior: User,
    now: datetime,
    officer_client_factory: Callable[..., Client],
) -> None:
    account_active(merchant, officer, senior, now)
    payment = payment_pending(merchant, now)
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
    merchant: Merchant,
    officer: User,
    senior: User,
    auditor: User,
    now: datetime,
    officer_client_factory: Callable[..., Client],
) -> None:
    account_active(merchant, officer, senior, now)
    payment = payment_pending(merchant, now)
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
    merchant: Merchant,
    officer: User,
    senior: User,
    now: datetime,
    officer_client_factory: Callable[..., Client],
) -> None:
    account_active(merchant, officer, senior, now)
    payment = payment_pending(merchant, now)
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
