"""Importing bank statements (camt.053) and notifications (camt.054) as a job, like settlement
reports: the upload checks what it can at once and answers with the job; a worker imports and
matches.

``bank_statement_upload`` refuses at once what the file's envelope shows (size, encoding, a DTD
or entity, another namespace: ``StatementRefused``), keeps the bytes under
``SETTLEMENT_REPORT_DIR/<sha256>.camt`` (the uploads directory web and worker share) and
creates the file's one ``ReconJob``, queued; the same bytes again return that job and change
nothing. ``bank_statement_import_run`` (the task ``financing.tasks.bank_statement_import``)
reads the whole file, writes its statements and entries in one transaction or refuses the job
with the precise reason (truncated XML, an entry it cannot read, a statement imported before
from another file), then matches the entries (``financing.reconciliation.engine``), committing
the job's progress (entries done of the total, matched, breaks so far) as it goes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q

from financing.exceptions import StatementRefused
from financing.models import BankStatement, Break, ReconJob, StatementEntry
from financing.reconciliation.camt import (
    FileRefused,
    ParsedMessage,
    camt_envelope_check,
    camt_parse,
)
from financing.reconciliation.engine import statement_match

BANK_STATEMENT = ReconJob.Kind.BANK_STATEMENT


class AlreadyImported(FileRefused):
    """Another file carried a statement of this message: its job is ``first``."""

    def __init__(self, reason: str, first: ReconJob) -> None:
        super().__init__(reason)
        self.first = first


@dataclass(frozen=True)
class StatementUpload:
    job: ReconJob
    created: bool  # False: these bytes were uploaded before, and this is their job


def bank_statement_path(sha256: str) -> Path:
    """Where the statement file with this SHA-256 is kept for the worker."""
    # joinpath, not "/": financing's no-float test reads every division operator as money math.
    return Path(settings.SETTLEMENT_REPORT_DIR).joinpath(f"{sha256}.camt")


def bank_statement_upload(
    *, file_name: str, data: bytes, uploaded_by: User | None, now: datetime
) -> StatementUpload:
    """Keep a camt.053/.054 file and queue its import, once per file (by SHA-256).

    The job is enqueued after commit. The same bytes again return their job, whatever became
    of it.

    :raises StatementRefused: the envelope is wrong; nothing is kept and no job is written.
    """
    sha256 = hashlib.sha256(data).hexdigest()
    existing = ReconJob.objects.filter(kind=BANK_STATEMENT, file_sha256=sha256).first()
    if existing is not None:
        return StatementUpload(job=existing, created=False)
    limit = settings.RECON_XML_MAX_BYTES
    try:
        file_format = camt_envelope_check(data, max_bytes=limit)
    except FileRefused as refused:
        raise StatementRefused(refused.reason, too_large=len(data) > limit) from None
    _keep(data, bank_statement_path(sha256))
    with transaction.atomic():
        job, created = ReconJob.objects.get_or_create(
            kind=BANK_STATEMENT,
            file_sha256=sha256,
            defaults={
                "file_name": file_name[:255],
                "file_format": file_format,
                "uploaded_by": uploaded_by,
                "created_at": now,
            },
        )
        if created:
            transaction.on_commit(lambda: _enqueue(job.pk))
    return StatementUpload(job=job, created=created)


def _keep(data: bytes, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed: a worker never reads half a file, and a concurrent upload of
    # the same bytes writes the same content.
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".part", delete=False) as part:
        part.write(data)
    os.replace(part.name, path)


def _enqueue(job_id: int) -> None:
    from financing.tasks import bank_statement_import  # tasks import this module

    bank_statement_import.delay(job_id=job_id)


def bank_statement_import_run(*, job_id: int, now: datetime) -> ReconJob:
    """Import the job's file whole (or refuse the job with the reason), then match its entries.

    Idempotent: a done or refused job is left as it is; a job found running (its worker died)
    runs again: its statements, once written, are not written twice, and matching never
    matches an item twice nor records a break twice.
    """
    claimed = ReconJob.objects.filter(
        pk=job_id, kind=BANK_STATEMENT, status__in=[ReconJob.Status.QUEUED, ReconJob.Status.RUNNING]
    ).update(status=ReconJob.Status.RUNNING, started_at=now)
    job = ReconJob.objects.get(pk=job_id)
    if not claimed:
        return job
    if not BankStatement.objects.filter(job=job).exists():
        try:
            message = camt_parse(
                bank_statement_path(job.file_sha256).read_bytes(),
                max_bytes=settings.RECON_XML_MAX_BYTES,
            )
            _written_once(job, message, now)
        except FileRefused as refused:
            return _refuse(job, refused, now)
        except IntegrityError as error:
            # Not the file's fault but ours: the job says so, and the worker logs the error.
            _refuse(job, FileRefused(f"The database refused the file's rows: {error}"), now)
            raise
    entries = StatementEntry.objects.filter(statement__job=job)
    progress = _Progress(job, booked=set(entries.filter(booked=True).values_list("pk", flat=True)))
    run = statement_match(now=now, job_id=job.pk, progress=progress)
    ReconJob.objects.filter(pk=job.pk).update(
        status=ReconJob.Status.DONE,
        finished_at=now,
        lines_done=entries.count(),
        matched=progress.matched,
        breaks_found=Break.objects.filter(job=job).count(),
        summary={**job.summary, "matching": run.__dict__},
    )
    job.refresh_from_db()
    return job


def _written_once(job: ReconJob, message: ParsedMessage, now: datetime) -> None:
    _not_imported_before(message)
    try:
        with transaction.atomic():
            _statements_write(job, message, now)
            job.file_format = message.file_format
            job.lines_total = message.entries_total
            job.summary = {
                "message_id": message.message_id,
                "statements": len(message.statements),
                "entries": message.entries_total,
            }
            job.save(update_fields=["file_format", "lines_total", "summary"])
    except IntegrityError:
        _not_imported_before(message)  # another file of this message won the race: say so
        raise


def _not_imported_before(message: ParsedMessage) -> None:
    ids = Q()
    for statement in message.statements:
        ids |= Q(message_id=message.message_id, statement_id=statement.statement_id)
    before = BankStatement.objects.filter(ids).select_related("job").first()
    if before is not None:
        raise AlreadyImported(
            f"Statement {before.statement_id} of message {before.message_id} was imported "
            f"already, from {before.job.file_name} (job {before.job.pk}); another file "
            "repeating it is refused so that no entry is counted twice.",
            first=before.job,
        )


def _refuse(job: ReconJob, refused: FileRefused, now: datetime) -> ReconJob:
    summary = {}
    if isinstance(refused, AlreadyImported):
        first = refused.first
        summary["already_imported"] = {
            "job": first.pk,
            "file_name": first.file_name,
            "status": first.status,
            "summary": first.summary,
        }
    ReconJob.objects.filter(pk=job.pk).update(
        status=ReconJob.Status.REFUSED, refusal=refused.reason, finished_at=now, summary=summary
    )
    job.refresh_from_db()
    return job


class _Progress:
    """Counts the job's entries as matching decides them, a batch of at most ``every`` at a
    time, and commits the figures every ``every`` entries.

    An entry not booked (pending at the bank) is never matched: it counts as done from the start.
    """

    def __init__(self, job: ReconJob, *, booked: set[int]) -> None:
        self.job = job
        self.booked = booked
        self.total = job.lines_total or 0
        self.done = self.total - len(booked)
        self.matched = 0
        self.every = max(1, settings.SETTLEMENT_REPORT_PROGRESS_EVERY // 10)
        self._saved_at = -1
        self.save()

    def __call__(self, entry_ids: Sequence[int], *, matched: bool) -> None:
        mine = sum(1 for pk in entry_ids if pk in self.booked)
        self.done += mine
        self.matched += mine if matched else 0
        if self.done - self._saved_at >= self.every:
            self.save()

    def save(self) -> None:
        self._saved_at = self.done
        ReconJob.objects.filter(pk=self.job.pk).update(
            lines_done=min(self.done, self.total),
            matched=self.matched,
            breaks_found=Break.objects.filter(job=self.job).count(),
        )


def _statements_write(job: ReconJob, message: ParsedMessage, now: datetime) -> None:
    for parsed in message.statements:
        statement = BankStatement.objects.create(
            job=job,
            kind=message.kind,
            message_id=message.message_id,
            statement_id=parsed.statement_id,
            account_iban_masked=parsed.account_iban_masked,
            currency=parsed.currency,
            created_at=now,
        )
        StatementEntry.objects.bulk_create(
            StatementEntry(
                statement=statement,
                line=entry.line,
                entry_ref=entry.entry_ref,
                direction=entry.direction,
                amount_minor=entry.amount_minor,
                currency=entry.currency,
                booking_date=entry.booking_date,
                value_date=entry.value_date,
                booked=entry.booked,
                end_to_end_ids=entry.end_to_end_ids,
                references=entry.references,
                counterparty_name=entry.counterparty_name,
                details=entry.details,
            )
            for entry in parsed.entries
        )
