"""The business figures /metrics reads from the tables at scrape time (config/metrics.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from django.db.models import Sum
from django.utils import timezone

from config.metrics import Reading, gauge_source
from financing.books.models import BooksVerification
from financing.models import AssignmentNotice, DeadLetter, SuspenseItem
from financing.reconciliation.selectors import open_breaks_by_kind
from financing.settlement_selectors import settlement_lag
from ledger.models import Chain, LedgerVerification


@gauge_source(
    name="chainfin_ledger_entries",
    documentation="Entries appended to the ledger: events ingested plus the system's own.",
    kind="counter",
)
def ledger_entries() -> Iterator[Reading]:
    # Chains are gap-free from seq 1, so the heads add up to the entries without counting them.
    yield (), float(Chain.objects.aggregate(total=Sum("head_seq"))["total"] or 0)


@gauge_source(
    name="chainfin_last_verification_ok",
    documentation="1 if the last finished verification found everything intact, else 0.",
    labels=("check",),
)
def last_verification_ok() -> Iterator[Reading]:
    for check, ok, _started_at in _last_verifications():
        yield (check,), 1.0 if ok else 0.0


@gauge_source(
    name="chainfin_last_verification_timestamp_seconds",
    documentation="When the last finished verification started (Unix time).",
    labels=("check",),
)
def last_verification_at() -> Iterator[Reading]:
    for check, _ok, started_at in _last_verifications():
        yield (check,), started_at.timestamp()


@gauge_source(
    name="chainfin_dead_letters",
    documentation="Work that exhausted its retries and waits for an officer, by kind.",
    labels=("kind",),
)
def dead_letters() -> Iterator[Reading]:
    failed = AssignmentNotice.objects.filter(status=AssignmentNotice.Status.FAILED).count()
    yield ("assignment_notice",), float(failed)
    yield ("settlement",), float(DeadLetter.objects.filter(rerun_at__isnull=True).count())


@gauge_source(
    name="chainfin_settlement_lag_seconds",
    documentation="Settlement behind: the oldest pending work's age, and the median payout "
    "entry → settled over the last 24 hours.",
    labels=("measure",),
)
def settlement_lag_seconds() -> Iterator[Reading]:
    now = timezone.now()
    lag = settlement_lag(now=now)
    oldest = lag.oldest_pending_at
    yield ("oldest_pending",), (now - oldest).total_seconds() if oldest else 0.0
    if lag.median_lag is not None:
        yield ("median_24h",), lag.median_lag.total_seconds()


@gauge_source(
    name="chainfin_settlement_pending",
    documentation="Payouts and dilutions recorded and not yet settled by a worker.",
)
def settlement_pending() -> Iterator[Reading]:
    yield (), float(settlement_lag(now=timezone.now()).pending)


@gauge_source(
    name="chainfin_suspense_open",
    documentation="Money received that no payout line could be applied to, waiting for officers.",
)
def suspense_open() -> Iterator[Reading]:
    yield (), float(SuspenseItem.objects.filter(status=SuspenseItem.Status.OPEN).count())


def _last_verifications() -> Iterator[tuple[str, bool, datetime]]:
    ledger = LedgerVerification.objects.exclude(outcome="running").order_by("-started_at").first()
    books = BooksVerification.objects.exclude(outcome="running").order_by("-started_at").first()
    if ledger is not None:
        yield "ledger", ledger.outcome == LedgerVerification.Outcome.INTACT, ledger.started_at
    if books is not None:
        yield "books", books.outcome == BooksVerification.Outcome.BALANCED, books.started_at


@gauge_source(
    name="chainfin_reconciliation_breaks_open",
    documentation="Reconciliation breaks waiting for an officer, by kind.",
    labels=("kind",),
)
def reconciliation_breaks_open() -> Iterator[Reading]:
    for kind, count in open_breaks_by_kind().items():
        yield (kind,), float(count)
