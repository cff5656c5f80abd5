"""A settlement report of 10,000 lines, written from the ledger's real payouts with 1 % of each
kind of difference injected: every difference is reported, nothing else is, and running it
again finds exactly the same (issue 10, "What it must show")."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from financing.models import Break, Facility, ReconJob
from financing.reconciliation.reports import settlement_report_run, settlement_report_upload
from merchants.models import Marketplace, Merchant
from tests.financing.conftest import Trade
from tests.financing.reconciliation.report_helpers import (
    Line,
    ledger_lines,
    report_bytes,
    with_amount,
)
from tests.financing.settlement_helpers import disbursed

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

PAYOUTS, LINES_PER_PAYOUT, ASSIGNED = 10, 980, 110
INJECTED = 100  # of each kind: 1 % of the report
SETTLED_ON = date(2026, 11, 1)
BREAKS_OF_A_REPORT = {
    "missing_in_ledger",
    "missing_in_report",
    "amount_mismatch",
    "currency_mismatch",
    "duplicate_line",
    "unknown_reference",
    "diverted_payment",
}


@pytest.fixture(autouse=True)
def report_dir(settings: Any, tmp_path: Path) -> Path:
    settings.SETTLEMENT_REPORT_DIR = str(tmp_path / "reports")
    settings.SETTLEMENT_REPORT_PROGRESS_EVERY = 1000
    return tmp_path


def payout_append(trade: Trade, ref: str, lines: list[tuple[str, int]]) -> None:
    trade.append(
        "payout.settled",
        ref,
        {
            "currency": "EUR",
            "amount": f"{sum(a for _, a in lines) / 100:.2f}",
            "settled_on": SETTLED_ON.isoformat(),
            "lines": [{"invoice_ref": r, "amount": f"{a / 100:.2f}"} for r, a in lines],
        },
        days_ago=0,
    )


@pytest.fixture
def ledger(
    trade: Trade,
    facility: Facility,
    officer: User,
    now: datetime,
    make_merchant: Callable[..., Merchant],
    trade_for: Callable[[Merchant], Trade],
) -> Trade:
    """10 payouts of 980 lines; 110 lines pay receivables assigned to the bank."""
    assigned = trade.fundable(ASSIGNED, amount="10.00")
    for half in (assigned[:55], assigned[55:]):
        disbursed(trade, half, officer, now)
    for p in range(PAYOUTS):
        mine = assigned[p * 11 : (p + 1) * 11]
        refs = [*mine, *(f"INV-P{p}-{i}" for i in range(LINES_PER_PAYOUT - len(mine)))]
        payout_append(
            trade, f"PO-{p}", [(r, 100 + (p * 997 + i * 31) % 90_000) for i, r in enumerate(refs)]
        )
    # Another merchant's payout of the same days: not in this report, and not its business.
    other = trade_for(make_merchant())
    payout_append(other, "PO-OTHER", [("INV-OTHER-1", 5000)])
    return trade


def injected_report(lines: list[Line]) -> tuple[list[Line], dict[str, set[Any]]]:
    """The report with 100 differences of each kind, and where each one is."""
    rng = random.Random(10)
    plain = [i for i, line in enumerate(lines) if line.paid_to == "merchant"]
    to_bank = [i for i, line in enumerate(lines) if line.paid_to == "bank"]
    picked = rng.sample(plain, 4 * INJECTED)
    drop, amount, currency, duplicate = (
        set(picked[k * INJECTED : (k + 1) * INJECTED]) for k in range(4)
    )
    diverted = set(rng.sample(to_bank, INJECTED))
    report: list[Line] = []
    where: dict[str, set[Any]] = {kind: set() for kind in Break.Kind.values}
    for i, line in enumerate(lines):
        if i in drop:
            where[Break.Kind.MISSING_IN_REPORT].add((line.payout_ref, i % LINES_PER_PAYOUT))
            continue
        if i in amount:
            line = with_amount(line, 1)  # one cent more than the ledger says
            where[Break.Kind.AMOUNT_MISMATCH].add(len(report) + 2)
        if i in currency:
            line = replace(line, currency="USD")
            where[Break.Kind.CURRENCY_MISMATCH].add(len(report) + 2)
        if i in diverted:
            line = replace(line, paid_to="merchant")
            where[Break.Kind.DIVERTED_PAYMENT].add(len(report) + 2)
        report.append(line)
        if i in duplicate:
            where[Break.Kind.DUPLICATE_LINE].add(len(report) + 2)
            report.append(line)
    for k in range(INJECTED):
        base = lines[rng.randrange(len(lines))]
        where[Break.Kind.UNKNOWN_REFERENCE].add(len(report) + 2)
        report.append(replace(base, line_id=f"X-{k}", invoice_ref=f"INV-NOPE-{k}"))
        where[Break.Kind.MISSING_IN_LEDGER].add(len(report) + 2)
        report.append(replace(base, line_id=f"G-{k}", payout_ref=f"PO-GHOST-{k}"))
    return report, where


def found(job: ReconJob) -> dict[str, set[Any]]:
    where: dict[str, set[Any]] = {kind: set() for kind in Break.Kind.values}
    for b in Break.objects.filter(job=job):
        if b.kind == Break.Kind.MISSING_IN_REPORT:
            where[b.kind].add((b.detail["payout_ref"], b.detail["ledger_line"]))
        else:
            where[b.kind].add(b.detail["line"])
    return where


def snapshot(job: ReconJob) -> list[tuple[Any, ...]]:
    return list(
        Break.objects.filter(job=job)
        .order_by("kind", "key")
        .values_list("kind", "key", "amount_minor", "expected_minor", "currency", "reference")
    )


def test_ten_thousand_lines_with_one_percent_of_each_difference(
    ledger: Trade, marketplace: Marketplace, now: datetime, tmp_path: Path
) -> None:
    lines = ledger_lines(marketplace, [ledger.merchant])
    assert len(lines) == PAYOUTS * LINES_PER_PAYOUT
    report, expected = injected_report(lines)
    assert len(report) == 10_000
    body = report_bytes(report)

    upload = settlement_report_upload(
        chunks=[body], file_name="june.csv", marketplace=marketplace, uploaded_by=None, now=now
    )
    job = settlement_report_run(job_id=upload.job.pk, now=now)

    assert job.status == ReconJob.Status.DONE, job.refusal
    assert found(job) == expected  # 100 % reported, 0 false breaks
    counts = Counter(Break.objects.filter(job=job).values_list("kind", flat=True))
    kinds = [kind for kind in Break.Kind.values if kind in BREAKS_OF_A_REPORT]
    assert counts == dict.fromkeys(kinds, INJECTED)
    assert (job.lines_total, job.lines_done, job.breaks_found) == (10_000, 10_000, 700)
    assert job.matched == 10_000 - 6 * INJECTED  # every line but those six kinds of break
    assert job.summary["breaks"] == dict(sorted(counts.items()))
    assert job.file_format == "chainfin"
    diverted = Break.objects.filter(job=job, kind=Break.Kind.DIVERTED_PAYMENT).first()
    assert diverted is not None and diverted.merchant_id == ledger.merchant.pk
    assert diverted.detail["paid_to"] == "merchant"

    # The same file again: the same job, nothing changes.
    before = snapshot(job)
    again = settlement_report_upload(
        chunks=[body[:100], body[100:]],
        file_name="june-again.csv",
        marketplace=marketplace,
        uploaded_by=None,
        now=now,
    )
    assert (again.job.pk, again.created) == (job.pk, False)
    assert settlement_report_run(job_id=job.pk, now=now).status == ReconJob.Status.DONE
    assert snapshot(job) == before

    # A second run of the job (a worker died and the task was redelivered): identical breaks.
    ReconJob.objects.filter(pk=job.pk).update(status=ReconJob.Status.RUNNING)
    rerun = settlement_report_run(job_id=job.pk, now=datetime(2026, 12, 1, tzinfo=now.tzinfo))
    assert snapshot(rerun) == before
    assert (rerun.breaks_found, rerun.matched, rerun.summary) == (
        job.breaks_found,
        job.matched,
        job.summary,
    )
