"""Thin Celery entry points for financing: they take ids, call a service, and are idempotent."""

from __future__ import annotations

import logging
import random
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from financing import notices
from financing.books.models import BooksVerification
from financing.books.verification import books_verification_run
from financing.reconciliation.engine import statement_match
from financing.reconciliation.reports import settlement_report_run
from financing.services.bank_statements import bank_statement_import_run
from financing.services.early_warning import early_warnings_run
from financing.services.fee_accrual import fee_accrual_sweep
from financing.services.overdue import overdue_sweep
from financing.services.settlement import (
    SettlementContended,
    settlement_work_dead_letter,
    settlement_work_resend_due,
    settlement_work_run,
)

logger = logging.getLogger(__name__)

# Worth another try: the database went away, a lock timed out, receivables kept moving.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, SettlementContended)
# A job reading an uploaded file: run again when the worker dies or the database goes away
# (the job picks up where its rows say), never on the file's own faults (a refused job).
file_job = shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
)


@shared_task(acks_late=True)
def overdue_sweep_run(**kwargs: object) -> int:
    """Daily: mark advances past due, accrue late fees, blacklist the long overdue."""
    return overdue_sweep(now=timezone.now())


class _NoticeTask(Task):  # type: ignore[type-arg]
    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        # The dead letter: the notice turns failed, with why, where officers see it.
        notices.notice_give_up(
            notice_id=kwargs["notice_id"], error=f"Gave up after retries: {exc}", now=timezone.now()
        )


@shared_task(
    base=_NoticeTask,
    acks_late=True,
    autoretry_for=(notices.DeliveryFailed,),
    retry_backoff=5,
    retry_backoff_max=3600,
    retry_jitter=True,
    max_retries=settings.FINANCING_WEBHOOK_MAX_RETRIES,
)
def notice_send(*, notice_id: int, **kwargs: object) -> None:
    """Deliver a notice of assignment; transient failures retry with exponential backoff."""
    notices.notice_deliver(notice_id=notice_id, now=timezone.now())


@shared_task(acks_late=True)
def notice_sweep_run(**kwargs: object) -> int:
    """Send the notices that waited for an endpoint or address, now that one exists."""
    return len(notices.notices_waiting_send(now=timezone.now()))


def notice_send_on_commit(notice_id: int) -> None:
    """Enqueue a notice's delivery once the current transaction commits (at once outside one)."""
    # After commit only: a worker must find the notice, and a rolled-back write sends none.
    # ``notice_send`` is looked up when the callback runs, so a test may stand in for it.
    transaction.on_commit(lambda: notice_send.delay(notice_id=notice_id))


@shared_task(acks_late=True)
def books_verify_run(**kwargs: object) -> int:
    """Verify the books, and the financing tables against the chain (``financing.integrity``,
    a registered books check), and record the outcome where officers see it; returns the run id."""
    run: BooksVerification = books_verification_run(now=timezone.now())
    return run.pk


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def settlement_run(self: Task[Any, Any], /, *, work_id: int, **kwargs: object) -> bool:
    """Apply one payout's or dilution's effects, exactly once (the service claims the work).

    Transient errors retry with exponential backoff and jitter, a bounded number of times;
    then, or at once for any other error, the work is dead-lettered for officers to re-run.
    """
    try:
        return settlement_work_run(work_id=work_id, now=timezone.now())
    except TRANSIENT_ERRORS as exc:
        retries = self.request.retries
        if retries < settings.SETTLEMENT_MAX_RETRIES:
            raise self.retry(exc=exc, countdown=_backoff(retries)) from exc
        error = f"Gave up after {retries + 1} attempts: {exc!r}"
    except Exception as exc:  # a bug or bad data: retrying would only fail again
        logger.exception("Settlement of work %s failed", work_id)
        error = f"Failed: {exc!r}"
    settlement_work_dead_letter(
        work_id=work_id,
        task_name=self.name,
        error=error,
        attempts=self.request.retries + 1,
        now=timezone.now(),
    )
    return False


def _backoff(retries: int) -> float:
    """Seconds before retry ``retries`` + 1: exponential, capped, with 50 to 100 % jitter."""
    base_ms = settings.SETTLEMENT_RETRY_BACKOFF_MS * 2**retries
    capped_ms: int = min(base_ms, settings.SETTLEMENT_RETRY_BACKOFF_MAX_MS)
    jittered_ms = capped_ms * random.randint(500, 1000) // 1000  # noqa: S311  (not a secret)
    return jittered_ms / 1000


def settlement_enqueue_on_commit(work_id: int) -> None:
    """Ask a worker to apply ``work_id`` once the current transaction commits."""
    # ``settlement_run`` is looked up when the callback runs, so a test may stand in for it.
    transaction.on_commit(lambda: settlement_run.delay(work_id=work_id))


@shared_task(acks_late=True)
def settlement_sweep_run(**kwargs: object) -> int:
    """Re-send settlement work still pending a while after it was sent; returns how many."""
    ids = settlement_work_resend_due(now=timezone.now())
    for work_id in ids:
        settlement_run.delay(work_id=work_id)
    return len(ids)


@shared_task(acks_late=True)
def fee_accrual_run(**kwargs: object) -> int:
    """Daily: recognise the discount fee earned to today on every outstanding advance."""
    return fee_accrual_sweep(now=timezone.now())


@shared_task(acks_late=True)
def early_warning_run(**kwargs: object) -> int:
    """Daily: list the merchants with money outstanding whose evidence turned for the worse."""
    return early_warnings_run(now=timezone.now())


@file_job
def settlement_report_reconcile(*, job_id: int, **kwargs: object) -> str:
    """Reconcile one uploaded settlement report; a re-run finds the same breaks."""
    return settlement_report_run(job_id=job_id, now=timezone.now()).status


@file_job
def bank_statement_import(*, job_id: int, **kwargs: object) -> str:
    """Import one uploaded camt.053/.054 file and match its entries; a re-run changes nothing."""
    return bank_statement_import_run(job_id=job_id, now=timezone.now()).status


@shared_task(acks_late=True, reject_on_worker_lost=True)
def statement_match_run(*, job_id: int | None = None, **kwargs: object) -> dict[str, int]:
    """By hand (a statement import matches its own): match open bank entries, record breaks.

    Idempotent: matched items are no longer open and each break is recorded once.
    """
    return statement_match(job_id=job_id, now=timezone.now()).__dict__
