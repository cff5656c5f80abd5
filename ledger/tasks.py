"""Thin Celery entry points for the ledger."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from ledger.log.sequencer import log_sequence_all
from ledger.models import LedgerVerification
from ledger.services import ledger_verification_run


@shared_task(acks_late=True)
def ledger_verify(**kwargs: object) -> int:
    """Verify every chain and record the outcome where officers can see it; returns the run id."""
    run: LedgerVerification = ledger_verification_run(now=timezone.now())
    return run.pk


@shared_task(acks_late=True)
def log_sequence(**kwargs: object) -> int:
    """Give every queued entry its place in the global log, a batch and a checkpoint at a time;
    returns the tree size. Idempotent: a second run finds the queue empty."""
    return log_sequence_all(now=timezone.now()).tree_size
