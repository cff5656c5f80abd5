"""Importing camt files: one transaction per file, the same file twice changes nothing, and
only the bank's own key may send them over the API."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from unittest import mock

import pytest
from django.db import IntegrityError
from django.test import Client
from django.utils import timezone

from financing.models import BankStatement, ReconJob, StatementEntry
from financing.reconciliation import camt
from financing.services.bank_statements import bank_statement_import
from merchants.models import Marketplace, Merchant
from merchants.services import api_key_issue
from tests.api.conftest import SignedClient, merchant_signed_client, signed_client

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

FORMATS = Path(__file__).resolve().parents[3] / ".." / "shared" / "formats"
ESR = (FORMATS / "camt054/postfinance-ch-camt054.001.04-esr-batch.xml").read_bytes()
MULTI = (FORMATS / "camt053/genkgo-camt053.v2.multi.statement.xml").read_bytes()


def _rows() -> tuple[int, int, int]:
    return ReconJob.objects.count(), BankStatement.objects.count(), StatementEntry.objects.count()


def test_a_file_is_imported_whole_with_every_entry(now: datetime) -> None:
    job = bank_statement_import(file_name="esr.xml", data=ESR, uploaded_by=None, now=now)

    assert (job.status, job.file_format, job.lines_total) == ("done", "camt.054.001.04", 2)
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
    job = bank_statement_import(file_name="multi.xml", data=MULTI, uploaded_by=None, now=now)
    assert job.summary == {"message_id": "CAMT053RIB000000000001", "statements": 2, "entries": 2}
    assert BankStatement.objects.filter(job=job).count() == 2


def test_the_same_file_twice_changes_nothing(now: datetime) -> None:
    first = bank_statement_import(file_name="esr.xml", data=ESR, uploaded_by=None, now=now)
    before = _rows()

    again = bank_statement_import(file_name="renamed.xml", data=ESR, uploaded_by=None, now=now)

    assert again.pk == first.pk
    assert _rows() == before


def test_another_file_repeating_an_imported_statement_is_refused_and_writes_none(
    now: datetime,
) -> None:
    bank_statement_import(file_name="esr.xml", data=ESR, uploaded_by=None, now=now)
    before = _rows()
    reformatted = ESR.replace(b"\t", b"  ")  # other bytes, the same statement

    job = bank_statement_import(file_name="esr-2.xml", data=reformatted, uploaded_by=None, now=now)

    assert job.status == ReconJob.Status.REFUSED
    assert "was imported already, from esr.xml" in job.refusal
    assert _rows() == (before[0] + 1, before[1], before[2])  # the refused job, nothing else


def test_a_refused_file_writes_a_refused_job_and_no_statement(now: datetime) -> None:
    truncated = ESR[: len(ESR) - 200]

    job = bank_statement_import(file_name="cut.xml", data=truncated, uploaded_by=None, now=now)

    assert job.status == ReconJob.Status.REFUSED
    assert job.refusal.startswith("The file is not well-formed XML (truncated?)")
    assert (BankStatement.objects.count(), StatementEntry.objects.count()) == (0, 0)


def test_a_file_failing_halfway_through_writing_leaves_nothing(now: datetime) -> None:
    # The second entry's amount breaks a CHECK only the database knows of; the first entry and
    # the statement written before it roll back with it.
    real = camt._entry

    def second_entry_negative(ntry, line, where):  # type: ignore[no-untyped-def]
        entry = real(ntry, line, where)
        if line == 1:
            object.__setattr__(entry, "amount_minor", -1)
        return entry

    with (
        mock.patch.object(camt, "_entry", second_entry_negative),
        pytest.raises(IntegrityError, match="statemententry_amount_positive"),
    ):
        bank_statement_import(file_name="esr.xml", data=ESR, uploaded_by=None, now=now)
    assert _rows() == (0, 0, 0)


# The API: bank keys only.


@pytest.fixture
def bank_api() -> SignedClient:
    issued = api_key_issue(bank=True, now=timezone.now(), label="statements")
    return SignedClient(Client(), None, issued.key, issued.signing_secret)


def test_the_bank_posts_a_statement_and_gets_its_job(bank_api: SignedClient) -> None:
    response = bank_api.post(
        "/api/v1/bank-statements?file_name=esr.xml", ESR, content_type="application/xml"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["file_format"], body["file_name"]) == (
        "done",
        "camt.054.001.04",
        "esr.xml",
    )
    assert StatementEntry.objects.count() == 2


def test_a_refused_file_is_a_422_naming_the_reason(bank_api: SignedClient) -> None:
    hostile = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>'
    )
    response = bank_api.post("/api/v1/bank-statements", hostile, content_type="application/xml")

    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "file_refused"
    assert "DTD or entity declaration" in response.json()["detail"]
    assert BankStatement.objects.count() == 0


def test_marketplace_and_merchant_keys_get_403_and_write_nothing(
    marketplace: Marketplace, merchant: Merchant
) -> None:
    for client in (signed_client(marketplace), merchant_signed_client(merchant)):
        response = client.post("/api/v1/bank-statements", ESR, content_type="application/xml")
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "credential_scope"
    assert _rows() == (0, 0, 0)


def test_a_bank_key_gets_403_where_a_party_reads_its_own_data(bank_api: SignedClient) -> None:
    assert bank_api.get("/api/v1/receivables").status_code == 403
    assert bank_api.get("/api/v1/advances/adv_0000000000000000").status_code == 403
