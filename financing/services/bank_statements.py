"""Importing bank statements (camt.053) and notifications (camt.054): one file, one job, its
statements and their entries written in one transaction, or nothing but a refused job.

The same file twice returns the first job and writes nothing (ReconJob is unique per kind and
SHA-256); a different file repeating a statement already imported (same message and statement
id) is refused, so an entry is never on the books twice. Matching the entries is
reconciliation's next step: the import asks a worker for it once its transaction commits
(``financing.reconciliation.engine.statement_match``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q

from financing import tasks
from financing.models import BankStatement, ReconJob, StatementEntry
from financing.reconciliation.camt import FileRefused, ParsedMessage, camt_parse


def bank_statement_import(
    *, file_name: str, data: bytes, uploaded_by: User | None, now: datetime
) -> ReconJob:
    """Read a camt.053/.054 file and write its statements and entries, or refuse it whole.

    Returns the job: ``done`` with ``summary`` counting what was written, or ``refused`` with
    the reason; for a file imported before, that file's job, unchanged.
    """
    sha256 = hashlib.sha256(data).hexdigest()
    kind = ReconJob.Kind.BANK_STATEMENT
    existing = ReconJob.objects.filter(kind=kind, file_sha256=sha256).first()
    if existing is not None:
        return existing
    job = ReconJob(
        kind=kind,
        file_name=file_name[:255],
        file_sha256=sha256,
        uploaded_by=uploaded_by,
        created_at=now,
        started_at=now,
        finished_at=now,
    )
    try:
        message = camt_parse(data, max_bytes=settings.RECON_XML_MAX_BYTES)
        _not_imported_before(message)
    except FileRefused as refused:
        job.status = ReconJob.Status.REFUSED
        job.refusal = refused.reason
        return _saved_once(job, None)
    job.status = ReconJob.Status.DONE
    job.file_format = message.file_format
    job.lines_total = job.lines_done = message.entries_total
    job.summary = {
        "message_id": message.message_id,
        "statements": len(message.statements),
        "entries": message.entries_total,
    }
    return _saved_once(job, lambda: _statements_write(job, message, now))


def _not_imported_before(message: ParsedMessage) -> None:
    ids = Q()
    for statement in message.statements:
        ids |= Q(message_id=message.message_id, statement_id=statement.statement_id)
    before = BankStatement.objects.filter(ids).select_related("job").first()
    if before is not None:
        raise FileRefused(
            f"Statement {before.statement_id} of message {before.message_id} was imported "
            f"already, from {before.job.file_name} (job {before.job.pk}); another file "
            "repeating it is refused so that no entry is counted twice."
        )


def _saved_once(job: ReconJob, write_rest: Callable[[], None] | None) -> ReconJob:
    """Save ``job`` and what goes with it in one transaction; when a concurrent upload of the
    same file won the race, return its job instead."""
    try:
        with transaction.atomic():
            job.save()
            if write_rest is not None:
                write_rest()
    except IntegrityError:
        winner = ReconJob.objects.filter(kind=job.kind, file_sha256=job.file_sha256).first()
        if winner is None:
            raise  # not the race: a statement of this message came in meanwhile, or a bug
        return winner
    return job


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
    tasks.statement_match_enqueue_on_commit(job.pk)
