"""Importing camt files as a job: the upload refuses at once what the envelope shows and
otherwise answers with a queued job; the job imports a file whole or refuses it with the reason,
then matches; the same file twice changes nothing; only the bank's own key may send them over
the API and follow their jobs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.db import IntegrityError
from django.test import Client
from django.utils import timezone

import financing.tasks
from financing.exceptions import StatementRefused
from financing.models import BankStatement, ReconJob, StatementEntry
from financing.reconciliation import camt
from financing.services import bank_statements
from financing.services.bank_statements import (
    bank_statement_import_run,
    bank_statement_path,
    bank_statement_upload,
)
from merchants.models import Marketplace, Merchant
from merchants.services import api_key_issue
from tests.api.conftest import SignedClient, merchant_signed_client, signed_client
from tests.financing.reconciliation.helpers import statement_imported

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

FORMATS = Path(__file__).resolve().parents[3] / ".." / "shared" / "formats"
ESR = (FORMATS / "camt054/postfinance-ch-camt054.001.04-esr-batch.xml").read_bytes()
MULTI = (FORMATS / "camt053/genkgo-camt053.v2.multi.statement.xml").read_bytes()
HOSTILE = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>'


class Enqueued:
    """Stands in for the task: remembers what was enqueued, runs nothing."""

    def __init__(self) -> None:
        self.job_ids: list[int] = []

    def delay(self, job_id: int) -> None:
        self.job_ids.append(job_id)


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> Enqueued:
    stand_in = Enqueued()
    monkeypatch.setattr(financing.tasks, "bank_statement_import", stand_in)
    return stand_in


def _rows() -> tuple[int, int, int]:
    return ReconJob.objects.count(), BankStatement.objects.count(), StatementEntry.objects.count()


# --- the upload: at once --------------------------------------------------------------------


def test_an_upload_keeps_the_file_and_queues_its_job_after_commit(
    now: datetime, enqueued: Enqueued, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        upload = bank_statement_upload(file_name="esr.xml", data=ESR, uploaded_by=None, now=now)

    job = upload.job
    assert upload.created and enqueued.job_ids == [job.pk]
    assert (job.status, job.file_format, job.lines_total) == ("queued", "camt.054.001.04", None)
    assert bank_statement_path(job.file_sha256).read_bytes() == ESR
    assert (BankStatement.objects.count(), StatementEntry.objects.count()) == (0, 0)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (HOSTILE, "The file carries a DTD or entity declaration (DTDForbidden)"),
        (ESR.replace(b"camt.054.001.04", b"camt.099.001.04"), "The root element is '{urn:iso"),
        (ESR.replace(b"<Document", b"<!-- \xe9 --><Document", 1), "The file is not UTF-8"),
        (b"", "The file is empty."),
    ],
    ids=["xxe", "namespace", "encoding", "empty"],
)
def test_a_bad_envelope_is_refused_at_once_and_writes_nothing(
    now: datetime, enqueued: Enqueued, uploads_dir: Path, data: bytes, reason: str
) -> None:
    with pytest.raises(StatementRefused) as refused:
        bank_statement_upload(file_name="bad.xml", data=data, uploaded_by=None, now=now)
    assert refused.value.message.startswith(reason), refused.value.message
    assert refused.value.code == "file_refused"
    assert _rows() == (0, 0, 0) and enqueued.job_ids == []
    assert not uploads_dir.exists() or list(uploads_dir.iterdir()) == []


def test_a_file_over_the_limit_is_refused_at_once(
    now: datetime, settings: Any, enqueued: Enqueued
) -> None:
    settings.RECON_XML_MAX_BYTES = 1000
    with pytest.raises(StatementRefused) as refused:
        bank_statement_upload(file_name="big.xml", data=ESR, uploaded_by=None, now=now)
    assert refused.value.code == "file_too_large"
    assert refused.value.message == f"The file has {len(ESR):,} bytes; the limit is 1,000 bytes."
    assert _rows() == (0, 0, 0)


# --- the job: imports whole, or refuses with the reason -------------------------------------


def test_a_file_is_imported_whole_with_every_entry(now: datetime) -> None:
    job = statement_imported(ESR, now, "esr.xml")

    assert (job.status, job.file_format, job.lines_total, job.lines_done) == (
        "done",
        "camt.054.001.04",
        2,
        2,
    )
    assert job.summary["matching"] == {
        "confirmed": 0,
        "suggested": 0,
        "ambiguous": 0,
        "unmatched": 2,
        "not_on_statement": 0,
    }
    assert (job.matched, job.breaks_found) == (0, 2)  # nothing of Chainfin's is on it
    [statement] = BankStatement.objects.filter(job=job)
    assert (statement.kind, statement.currency) == ("camt.054", "CHF")
    assert statement.account_iban_masked == "CH29 •••• •••• •••• 4239"
    credit, debit = statement.entries.order_by("line")
    assert (credit.direction, credit.amount_minor, credit.booked) == ("credit", 153700, True)
    assert credit.match_status == StatementEntry.MatchStatus.UNMATCHED
    assert (len(credit.details), len(credit.end_to_end_ids)) == (5, 3)
    assert sum(d["amount_minor"] for d in credit.details) == credit.amount_minor
    assert (debit.direction, debit.amount_minor) == ("debit", 14700)


def test_two_statements_in_one_message_are_two_rows(now: datetime) -> None:
    job = statement_imported(MULTI, now, "multi.xml")
    assert {k: job.summary[k] for k in ("message_id", "statements", "entries")} == {
        "message_id": "CAMT053RIB000000000001",
        "statements": 2,
        "entries": 2,
    }
    assert BankStatement.objects.filter(job=job).count() == 2


def test_the_same_file_twice_changes_nothing(now: datetime, enqueued: Enqueued) -> None:
    first = statement_imported(ESR, now, "esr.xml")
    before = _rows()

    again = bank_statement_upload(file_name="renamed.xml", data=ESR, uploaded_by=None, now=now)

    assert (again.created, again.job.pk, again.job.status) == (False, first.pk, "done")
    assert bank_statement_import_run(job_id=first.pk, now=now).summary == first.summary
    assert _rows() == before and enqueued.job_ids == []


def test_another_file_repeating_an_imported_statement_reports_the_first(now: datetime) -> None:
    first = statement_imported(ESR, now, "esr.xml")
    before = _rows()
    reformatted = ESR.replace(b"\t", b"  ")  # other bytes, the same statement

    job = statement_imported(reformatted, now, "esr-2.xml")

    assert job.status == ReconJob.Status.REFUSED
    assert "was imported already, from esr.xml" in job.refusal
    assert job.summary["already_imported"] == {
        "job": first.pk,
        "file_name": "esr.xml",
        "status": "done",
        "summary": first.summary,
    }
    assert _rows() == (before[0] + 1, before[1], before[2])  # the refused job, nothing else


def test_a_truncated_file_passes_the_upload_and_its_job_is_refused(now: datetime) -> None:
    job = statement_imported(ESR[: len(ESR) - 200], now, "cut.xml")

    assert job.status == ReconJob.Status.REFUSED
    assert job.refusal.startswith("The file is not well-formed XML (truncated?)")
    assert (BankStatement.objects.count(), StatementEntry.objects.count()) == (0, 0)


def test_a_file_failing_halfway_through_writing_leaves_nothing(now: datetime) -> None:
    # The second entry's amount breaks a CHECK only the database knows of; the first entry and
    # the statement written before it roll back with it, and the job says why.
    real = camt._entry

    def second_entry_negative(ntry, line, where):  # type: ignore[no-untyped-def]
        entry = real(ntry, line, where)
        if line == 1:
            object.__setattr__(entry, "amount_minor", -1)
        return entry

    upload = bank_statement_upload(file_name="esr.xml", data=ESR, uploaded_by=None, now=now)
    with (
        mock.patch.object(camt, "_entry", second_entry_negative),
        pytest.raises(IntegrityError, match="statemententry_amount_positive"),
    ):
        bank_statement_import_run(job_id=upload.job.pk, now=now)
    job = ReconJob.objects.get()
    assert job.status == "refused" and "statemententry_amount_positive" in job.refusal
    assert (BankStatement.objects.count(), StatementEntry.objects.count()) == (0, 0)


def test_progress_is_committed_while_matching(
    now: datetime, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.SETTLEMENT_REPORT_PROGRESS_EVERY = 10  # a commit per entry decided
    committed: list[tuple[int, int]] = []
    real_save = bank_statements._Progress.save

    def recording(progress: Any) -> None:
        real_save(progress)
        row = ReconJob.objects.values_list("lines_done", "breaks_found").get(pk=progress.job.pk)
        committed.append(row)

    monkeypatch.setattr(bank_statements._Progress, "save", recording)
    upload = bank_statement_upload(file_name="esr.xml", data=ESR, uploaded_by=None, now=now)
    job = bank_statement_import_run(job_id=upload.job.pk, now=now)

    # Entries done and breaks so far, as the progress bar reads them between decisions.
    assert committed == [(0, 0), (1, 1), (2, 2)]
    assert (job.lines_done, job.breaks_found) == (2, 2)


# --- the API: bank keys only ----------------------------------------------------------------


@pytest.fixture
def bank_api() -> SignedClient:
    issued = api_key_issue(bank=True, now=timezone.now(), label="statements")
    return SignedClient(Client(), None, issued.key, issued.signing_secret)


def test_the_bank_posts_a_statement_and_gets_202_with_its_job_at_once(
    bank_api: SignedClient, enqueued: Enqueued, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = bank_api.post(
            "/api/v1/bank-statements?file_name=esr.xml", ESR, content_type="application/xml"
        )

    assert response.status_code == 202, response.content
    body = response.json()
    job = body["job"]
    assert body["already_imported"] is False
    assert response["Location"] == f"/api/v1/jobs/{job['id']}"
    assert (job["status"], job["format"], job["file_name"], job["kind"]) == (
        "queued",
        "camt.054.001.04",
        "esr.xml",
        "bank_statement",
    )
    assert enqueued.job_ids == [job["id"]] and StatementEntry.objects.count() == 0

    bank_statement_import_run(job_id=job["id"], now=timezone.now())
    done = bank_api.get(f"/api/v1/jobs/{job['id']}").json()["job"]
    assert (done["status"], done["lines_done"], done["lines_total"], done["percent"]) == (
        "done",
        2,
        2,
        100,
    )
    assert (done["breaks_found"], done["summary"]["matching"]["unmatched"]) == (2, 2)

    again = bank_api.post(
        "/api/v1/bank-statements?file_name=again.xml", ESR, content_type="application/xml"
    )
    assert again.status_code == 200, again.content
    assert again.json()["already_imported"] is True
    assert again.json()["job"] == done  # the first's result
    assert StatementEntry.objects.count() == 2 and enqueued.job_ids == [job["id"]]


def test_a_hostile_file_is_a_422_naming_the_reason(
    bank_api: SignedClient, enqueued: Enqueued
) -> None:
    response = bank_api.post("/api/v1/bank-statements", HOSTILE, content_type="application/xml")

    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "file_refused"
    assert "DTD or entity declaration" in response.json()["detail"]
    assert _rows() == (0, 0, 0)


def test_a_file_over_the_limit_is_a_413(
    bank_api: SignedClient, enqueued: Enqueued, settings: Any
) -> None:
    settings.RECON_XML_MAX_BYTES = 1000
    response = bank_api.post("/api/v1/bank-statements", ESR, content_type="application/xml")
    assert response.status_code == 413 and response.json()["code"] == "file_too_large"
    assert _rows() == (0, 0, 0)


def test_marketplace_and_merchant_keys_get_403_and_write_nothing(
    marketplace: Marketplace, merchant: Merchant
) -> None:
    for client in (signed_client(marketplace), merchant_signed_client(merchant)):
        response = client.post("/api/v1/bank-statements", ESR, content_type="application/xml")
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "credential_scope"
    assert _rows() == (0, 0, 0)


def test_a_statement_job_is_shown_to_the_bank_only(
    bank_api: SignedClient, marketplace: Marketplace, merchant: Merchant, now: datetime
) -> None:
    job = statement_imported(ESR, now)
    report = ReconJob.objects.create(
        kind=ReconJob.Kind.SETTLEMENT_REPORT,
        file_name="r.csv",
        file_sha256="0" * 64,
        marketplace=marketplace,
        created_at=now,
    )

    assert bank_api.get(f"/api/v1/jobs/{job.pk}").status_code == 200
    assert bank_api.get(f"/api/v1/jobs/{report.pk}").status_code == 404  # a marketplace's file
    market = signed_client(marketplace)
    assert market.get(f"/api/v1/jobs/{job.pk}").status_code == 404
    assert market.get(f"/api/v1/jobs/{report.pk}").status_code == 200
    refused = merchant_signed_client(merchant).get(f"/api/v1/jobs/{job.pk}")
    assert refused.status_code == 403 and refused.json()["code"] == "credential_scope"


def test_a_bank_key_gets_403_where_a_party_reads_its_own_data(bank_api: SignedClient) -> None:
    assert bank_api.get("/api/v1/receivables").status_code == 403
    assert bank_api.get("/api/v1/advances/adv_0000000000000000").status_code == 403
