"""Thin Celery entry points for financing: they take ids, call a service, and are idempotent."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from financing import notices
from financing.books.models import BooksVerification
from financing.books.verification import books_verification_run
from financing.services.overdue import overdue_sweep


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
    """Verify the books and record the outcome where officers can see it; returns the run id."""
    run: BooksVerification = books_verification_run(now=timezone.now())
    return run.pk
