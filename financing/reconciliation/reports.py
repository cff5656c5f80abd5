"""Marketplace settlement reports: uploaded once per file, reconciled by a Celery job.

``settlement_report_upload`` streams the upload to ``SETTLEMENT_REPORT_DIR/<sha256>.report``
(hashing as it writes, never holding the file) and creates the file's one ``ReconJob``; the
same bytes again return the same job and change nothing. ``settlement_report_run`` (the task
``financing.tasks.settlement_report_reconcile``) reads the file once, line by line, matching it
in batches of ``SETTLEMENT_REPORT_PROGRESS_EVERY`` lines and committing the job's progress
after each for the admin's progress bar and ``GET /api/v1/jobs/{id}``; the breaks are written
at the end, all at once, only if the whole file was valid.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import IO

import orjson
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from financing.exceptions import FinancingError
from financing.models import Break, ReconJob
from financing.reconciliation.formats import ReportLine, ReportRefused, report_open
from financing.reconciliation.report_matching import SettlementMatcher
from merchants.models import Marketplace

SETTLEMENT_REPORT = ReconJob.Kind.SETTLEMENT_REPORT


class ReportUploadedElsewhere(FinancingError):
    """The same file was uploaded for another marketplace: its job is not the caller's."""

    code = "report_uploaded_elsewhere"


@dataclass(frozen=True)
class ReportUpload:
    job: ReconJob
    created: bool  # False: the same file was uploaded before, and this is its job


def settlement_report_path(sha256: str) -> Path:
    """Where the report with this SHA-256 is kept (the worker reads it from there)."""
    return Path(settings.SETTLEMENT_REPORT_DIR) / f"{sha256}.report"


def settlement_report_upload(
    *,
    chunks: Iterable[bytes],
    file_name: str,
    marketplace: Marketplace,
    uploaded_by: AbstractBaseUser | None,
    now: datetime,
) -> ReportUpload:
    """Store a report and queue its reconciliation, once per file (by SHA-256).

    A file above ``SETTLEMENT_REPORT_MAX_BYTES`` gets a job refused at once, with nothing
    stored. The job is enqueued after commit.

    :raises ReportUploadedElsewhere: these exact bytes are another marketplace's report.
    """
    directory = Path(settings.SETTLEMENT_REPORT_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    limit = settings.SETTLEMENT_REPORT_MAX_BYTES
    digest, size = hashlib.sha256(), 0
    with tempfile.NamedTemporaryFile(dir=directory, suffix=".part", delete=False) as part:
        try:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                if size <= limit:  # past the limit keep hashing, so a retry finds its job
                    part.write(chunk)
        except BaseException:
            os.unlink(part.name)
            raise
    sha256 = digest.hexdigest()
    refusal = (
        f"The file is {size:,} bytes; the limit is {limit:,} (SETTLEMENT_REPORT_MAX_BYTES)."
        if size > limit
        else ""
    )
    try:
        with transaction.atomic():
            job, created = ReconJob.objects.get_or_create(
                kind=SETTLEMENT_REPORT,
                file_sha256=sha256,
                defaults={
                    "file_name": file_name[:255],
                    "marketplace": marketplace,
                    "uploaded_by": uploaded_by,
                    "created_at": now,
                    "status": ReconJob.Status.REFUSED if refusal else ReconJob.Status.QUEUED,
                    "finished_at": now if refusal else None,
                    "refusal": refusal,
                },
            )
            if job.marketplace_id != marketplace.pk:
                raise ReportUploadedElsewhere(
                    "This file was uploaded for another marketplace; upload your own report."
                )
            if created and not refusal:
                os.replace(part.name, settlement_report_path(sha256))
                transaction.on_commit(lambda: _enqueue(job.pk))
    finally:
        if os.path.exists(part.name):
            os.unlink(part.name)
    return ReportUpload(job=job, created=created)


def _enqueue(job_id: int) -> None:
    from financing.tasks import settlement_report_reconcile  # tasks import this module

    settlement_report_reconcile.delay(job_id=job_id)


def _batches(lines: Iterator[ReportLine], size: int) -> Iterator[list[ReportLine]]:
    while batch := list(islice(lines, size)):
        yield batch


def settlement_report_run(*, job_id: int, now: datetime) -> ReconJob:
    """Reconcile the job's report against the ledger, recording its breaks and progress.

    One pass over the file: the breaks found are spooled to a temporary file and written, all
    in one transaction with the job's summary, only once the last line has been read, so a file
    refused at its last line (a formula, a bad amount, a byte that is not UTF-8) writes none.
    Progress (lines done of the total, breaks so far) is committed every batch meanwhile.

    Idempotent: a done or refused job is left as it is; a job found running (its worker died)
    runs again from the top and, its break keys being stable, ends with the same breaks.
    """
    claimed = ReconJob.objects.filter(
        pk=job_id,
        kind=SETTLEMENT_REPORT,
        status__in=[ReconJob.Status.QUEUED, ReconJob.Status.RUNNING],
    ).update(status=ReconJob.Status.RUNNING, started_at=now)
    job = ReconJob.objects.select_related("marketplace").get(pk=job_id)
    if not claimed:
        return job
    assert job.marketplace is not None  # every settlement report job names its marketplace
    path = settlement_report_path(job.file_sha256)
    total = _lines_after_header(path)
    ReconJob.objects.filter(pk=job.pk).update(
        lines_total=total, lines_done=0, matched=0, breaks_found=0
    )
    with tempfile.TemporaryFile() as spool, path.open("rb") as handle:
        try:
            reader = report_open(handle)
            ReconJob.objects.filter(pk=job.pk).update(file_format=reader.layout.name)
            matcher = SettlementMatcher(
                job=job,
                marketplace_code=job.marketplace.code,
                sums_orders=reader.layout.sums_orders,
                now=now,
            )
            size = settings.SETTLEMENT_REPORT_PROGRESS_EVERY
            for batch in _batches(reader.lines, size):
                _spool(spool, matcher.feed(batch))
                ReconJob.objects.filter(pk=job.pk).update(
                    lines_done=min(batch[-1].number - 1, total),
                    matched=matcher.tally.matched,
                    breaks_found=sum(matcher.tally.breaks.values()),
                )
        except ReportRefused as exc:
            # Nothing of it is kept: the counts go back to nothing, as the breaks never came.
            ReconJob.objects.filter(pk=job.pk).update(
                status=ReconJob.Status.REFUSED,
                refusal=exc.reason,
                finished_at=now,
                matched=0,
                breaks_found=0,
            )
            job.refresh_from_db()
            return job
        _spool(spool, matcher.flush())
        _spool(spool, list(matcher.missing_in_report()))
        with transaction.atomic():
            _write(_unspooled(spool, job, now))
            return _finish(job, matcher, total=total, layout=reader.layout.name, now=now)


def _lines_after_header(path: Path) -> int:
    """The physical lines after the header, counted in bytes (fast): the progress bar's 100 %."""
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    lines += last != b"\n"  # a last line without its newline
    return max(lines - 1, 0)


# What a spooled break keeps: all but the job and the time, which the run knows.
_SPOOLED = (
    "key",
    "kind",
    "merchant_id",
    "currency",
    "amount_minor",
    "expected_minor",
    "reference",
    "detail",
)


def _spool(spool: IO[bytes], breaks: list[Break]) -> None:
    if breaks:
        rows = [[getattr(b, name) for name in _SPOOLED] for b in breaks]
        spool.write(orjson.dumps(rows) + b"\n")


def _unspooled(spool: IO[bytes], job: ReconJob, now: datetime) -> Iterator[Break]:
    spool.seek(0)
    for batch in spool:  # one JSON array of breaks per line
        for values in orjson.loads(batch):
            yield Break(job=job, found_at=now, **dict(zip(_SPOOLED, values, strict=True)))


def _write(breaks: Iterable[Break], size: int = 2000) -> None:
    iterator = iter(breaks)
    while batch := list(islice(iterator, size)):
        # A re-run meets its own earlier breaks: UNIQUE(kind, key) keeps the first of each.
        Break.objects.bulk_create(batch, ignore_conflicts=True)


def _finish(
    job: ReconJob, matcher: SettlementMatcher, *, total: int, layout: str, now: datetime
) -> ReconJob:
    tally = matcher.tally
    counts = dict(sorted(tally.breaks.items()))
    summary = {
        "format": layout,
        "lines": total,
        "matched": tally.matched,
        "unallocated": tally.unallocated,
        "payouts": tally.payouts,
        "period": [
            tally.first_settled.isoformat() if tally.first_settled else None,
            tally.last_settled.isoformat() if tally.last_settled else None,
        ],
        "breaks": counts,
    }
    ReconJob.objects.filter(pk=job.pk).update(
        status=ReconJob.Status.DONE,
        finished_at=now,
        lines_done=total,
        matched=tally.matched,
        breaks_found=Break.objects.filter(job=job).count(),
        summary=summary,
    )
    job.refresh_from_db()
    return job
