"""Thin Celery entry points for financing: they take ids, call a service, and are idempotent."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.utils import timezone

from financing import notices
from financing.services.overdue import overdue_sweep


@shared_task(acks_late=True)
def overdue_sweep_run(**kwargs: object) -> int:
    """Daily: mark advances past due, accrue late fees, blacklist the long overdue."""
    return overdue_sweep(now=timezone.now())


class _NoticeTask(Task):  # type: ignore[type-arg]
    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        # The dead letter: the notice turns failed, with why, where officers see it.
        notices.notice_give_up(notice_id=kwargs["notice_id"], error=f"Gave up after retries: {exc}")


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
