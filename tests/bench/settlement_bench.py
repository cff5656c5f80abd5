"""Settlement throughput: payout lines settled by two Celery worker processes, vs one process.

    .venv/bin/python -m tests.bench.settlement_bench [--repeat N] [--quick]

Drops and recreates the database named by BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/chainfin_bench_settlement), migrates it and builds, untimed:

- merchants (KYC verified), each with an EUR facility (proposed and confirmed by two staff
  superusers; a limit and a checker threshold far above the run, so approval disburses at once);
- the evidence of every receivable (order, invoice of 1,000.00 due in 45 days, shipment
  dispatched and delivered), appended as the marketplace through ``entries_append`` in batches
  of one merchant's receivables;
- advances of 100 receivables each (the most one advance may hold), each requested with
  ``advance_request`` and approved with ``advance_approve``, which disburses it: ten thousand
  advances of one receivable would take the services longer to set up than the run they feed.
  Notices of assignment are not sent (``notice_send`` is replaced by a stand-in that counts);
- the payouts: each receivable is paid in equal lines (ten of 100.00 each at full size: eight
  repay principal, two release the reserve, the last closes the receivable and, with its
  advance's other receivables, repays the advance), a payout carrying 100 lines of one
  merchant's receivables, appended as the marketplace through ``entries_append``. Their
  settlement work is written by the outbox projector as in production, but not enqueued
  (``settlement_run`` is replaced by a stand-in that counts), so every piece of work is pending.

That state is copied to a template database. Each repetition then restores it twice (a fresh
``CREATE DATABASE … TEMPLATE``, untimed) and measures, from the same starting point:

1. workers: ``celery -A config worker -c 2`` (two prefork pool processes, its own queue, started
   and answering a ping before the clock starts) on this database and CELERY_BROKER_URL's Redis;
   the clock runs from the first ``settlement_run`` sent for every pending piece of work until
   none is pending (polled every 20 ms);
2. baseline: the same work applied by ``settlement_work_run`` called in this one process, in
   order, one transaction each, as the task does it without the broker.

After each run the bench checks that every piece of work is done (none dead), that both runs
left the very same account balances (the same allocations in total, whatever order the workers
took them in), and after the last repetition ``books_verify`` and ``ledger_verify``. The target
(issue 9: at most 60 s for 100,000 lines, 1,700 lines/s) is printed, not asserted; the exit
status is non-zero when a check fails.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from time import perf_counter, sleep
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tests.bench._setup import (
    Figure,
    Row,
    bench_database_url,
    django_bootstrap,
    figure_row,
    machine_context,
    merchants_create,
    receivable_evidence,
    statistics_gather,
    table_print,
    verdict,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from merchants.models import Merchant

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/chainfin_bench_settlement"
ROOT = Path(__file__).resolve().parents[2]
# From the issue: 100,000 lines in at most 60 s.
TARGET_LINE_RATE = 1_700
TARGET_SECONDS = 60
MARKETPLACE = "bench"
QUEUE = "settlement-bench"  # the workers' own queue, so nothing else on the broker is taken
FACE_MINOR = 100_000  # 1,000.00 EUR per invoice; the facility advances 80 %
RECEIVABLES_PER_ADVANCE = 100
FACILITY_TERMS: dict[str, Any] = {
    "limit_minor": 10_000_000_000,  # 100 million EUR: no run comes near it
    "advance_rate_bp": 8000,
    "annual_rate_bp": 1800,
    "max_tenor_days": 120,
    "min_days_to_due": 7,
    "debtor_cap_bp": 10_000,  # every receivable is owed by the one marketplace
    "checker_threshold_minor": 10_000_000_000,  # approval disburses: no second officer
}
_STARTED = perf_counter()


def _elapsed() -> str:
    return f"(t+{perf_counter() - _STARTED:.0f} s)"


@dataclass(frozen=True)
class Sizes:
    merchants: int
    receivables: int  # in all, spread evenly over the merchants
    lines_per_receivable: int  # equal lines that pay the face exactly
    lines_per_payout: int

    @property
    def lines(self) -> int:
        return self.receivables * self.lines_per_receivable


FULL = Sizes(merchants=20, receivables=10_000, lines_per_receivable=10, lines_per_payout=100)
QUICK = Sizes(merchants=4, receivables=400, lines_per_receivable=4, lines_per_payout=50)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (>= 3)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args(argv)
    if args.repeat < 3:
        parser.error("--repeat must be at least 3: a median of fewer says little")
    sizes = QUICK if args.quick else FULL
    if sizes.receivables % (sizes.merchants * RECEIVABLES_PER_ADVANCE):
        parser.error("receivables must fill whole advances on every merchant")
    url = bench_database_url(DEFAULT_DATABASE_URL)
    django_bootstrap(url)
    print(
        "Chainfin settlement benchmark"
        + (" (--quick: small sizes, figures are rough)" * args.quick)
    )
    for line in machine_context():
        print(line)
    broker = os.environ.get("CELERY_BROKER_URL", "")
    print(f"broker      {broker} (queue {QUEUE})")

    work_ids = _world_create(sizes)
    template = _template_save(url)
    print(
        f"\nsizes       {sizes.lines:,} payout lines: {sizes.receivables:,} receivables of"
        f" {FACE_MINOR // 100:,.2f} EUR, {sizes.lines_per_receivable} lines each, over"
        f" {sizes.merchants} merchants, {len(work_ids):,} payouts of {sizes.lines_per_payout}"
        f" lines; {args.repeat} repetitions, workers and baseline alternating {_elapsed()}",
        flush=True,
    )

    workers = Figure("settlement by 2 Celery worker processes", "lines/s")
    seconds = Figure("  total seconds, 2 workers", "s")
    baseline = Figure("  baseline: settlement_work_run in one process", "lines/s")
    problems: list[str] = []
    for rep in range(1, args.repeat + 1):
        _database_restore(url, template)
        took = _workers_run(url, broker, work_ids)
        books = _books_fingerprint()
        problems += _work_check("workers", len(work_ids))
        workers.samples.append(sizes.lines / took)
        seconds.samples.append(took)
        _database_restore(url, template)
        took_alone = _baseline_run(work_ids)
        problems += _work_check("baseline", len(work_ids))
        if _books_fingerprint() != books:
            problems.append(f"repetition {rep}: the workers' books differ from the baseline's")
        baseline.samples.append(sizes.lines / took_alone)
        print(
            f"repetition {rep}/{args.repeat}: 2 workers {took:.1f} s ({workers.samples[-1]:,.0f}"
            f" lines/s), one process {took_alone:.1f} s ({baseline.samples[-1]:,.0f} lines/s)"
            f" {_elapsed()}",
            flush=True,
        )
    problems += _verify()
    _template_drop(url, template)

    ratio = workers.median / baseline.median
    each = " ".join(f"{w / b:.0%}" for w, b in zip(workers.samples, baseline.samples, strict=True))
    print()
    table_print(
        [
            figure_row(
                workers,
                target=f">= {TARGET_LINE_RATE:,} lines/s",
                verdict=verdict(workers.median, TARGET_LINE_RATE),
            ),
            Row(
                seconds.label,
                f"{seconds.median:.1f} s",
                " ".join(f"{s:.1f}" for s in seconds.samples),
                f"<= {TARGET_SECONDS} s for 100,000 lines",
                verdict(TARGET_SECONDS * sizes.lines / 100_000, seconds.median),
            ),
            figure_row(baseline),
            Row("    2 workers / baseline", f"{ratio:.0%}", each, "(for reference)"),
        ]
    )
    print(f"\ntotal run time {perf_counter() - _STARTED:.1f} s")
    if problems:
        for problem in problems:
            print(f"FAILED: {problem}", file=sys.stderr)
        return 1
    return 0


# --- the world ---------------------------------------------------------------------------------


def _world_create(sizes: Sizes) -> list[int]:
    """Merchants, facilities, financed receivables and pending payouts; the work ids, in order."""
    from django.utils import timezone

    from financing.models import SettlementWork

    now = timezone.now()
    merchant_ids = merchants_create(sizes.merchants, code=MARKETPLACE)
    officer, merchants = _facilities_open(merchant_ids, now)
    per_merchant = sizes.receivables // sizes.merchants
    refs = {
        merchant_id: [f"INV-{m}-{n}" for n in range(per_merchant)]
        for m, merchant_id in enumerate(merchant_ids)
    }
    _evidence_append(refs, now)
    print(f"setup       evidence of {sizes.receivables:,} receivables appended {_elapsed()}")
    _advances_disburse(merchants, refs, officer, now)
    print(
        f"setup       {sizes.receivables // RECEIVABLES_PER_ADVANCE:,} advances of"
        f" {RECEIVABLES_PER_ADVANCE} receivables disbursed {_elapsed()}"
    )
    with _stand_in("settlement_run") as enqueued:
        _payouts_append(refs, sizes, now)
    pending = SettlementWork.objects.filter(status=SettlementWork.Status.PENDING)
    work_ids = list(pending.order_by("pk").values_list("pk", flat=True))
    if enqueued.calls != len(work_ids):
        raise SystemExit(f"bench: {enqueued.calls} payouts enqueued, {len(work_ids)} pending")
    print(f"setup       {len(work_ids):,} payouts appended, their work pending {_elapsed()}")
    statistics_gather()
    return work_ids


def _facilities_open(merchant_ids: list[int], now: datetime) -> tuple[User, dict[int, Merchant]]:
    from django.contrib.auth.models import User

    from financing.services.facilities import facility_open_propose
    from financing.services.proposals import change_confirm
    from merchants.models import Merchant

    # No service verifies KYC (an officer does it in the admin); the test fixtures set it too.
    Merchant.objects.filter(pk__in=merchant_ids).update(kyc_status=Merchant.KycStatus.VERIFIED)
    officer = User.objects.create_superuser("bench-officer", email="", password=None)
    proposer = User.objects.create_superuser("bench-proposer", email="", password=None)
    merchants = Merchant.objects.in_bulk(merchant_ids)
    for merchant in merchants.values():
        opening = facility_open_propose(
            merchant=merchant,
            currency="EUR",
            officer=proposer,
            reason="Bench onboarding",
            now=now,
            terms=FACILITY_TERMS,
        )
        change_confirm(change=opening, officer=officer, now=now)
    return officer, merchants


def _evidence_append(refs: dict[int, list[str]], now: datetime) -> None:
    from ledger.money import format_minor_units
    from ledger.services import NewEntry, entries_append

    for merchant_id, invoices in refs.items():
        for start in range(0, len(invoices), 250):  # 1,000 entries per batch
            entries = [
                NewEntry(merchant_id, event)
                for ref in invoices[start : start + 250]
                for event in receivable_evidence(
                    ref.removeprefix("INV-"), format_minor_units(FACE_MINOR, "EUR"), now
                )
            ]
            entries_append(source=MARKETPLACE, entries=entries, now=now)


def _advances_disburse(
    merchants: dict[int, Merchant], refs: dict[int, list[str]], officer: User, now: datetime
) -> None:
    from financing.models import Advance
    from financing.services.decisions import advance_approve
    from financing.services.requests import advance_request

    with _stand_in("notice_send"):
        for merchant_id, invoices in refs.items():
            for start in range(0, len(invoices), RECEIVABLES_PER_ADVANCE):
                advance = advance_request(
                    merchant=merchants[merchant_id],
                    refs=invoices[start : start + RECEIVABLES_PER_ADVANCE],
                    request_key=f"bench-{merchant_id}-{start}",
                    now=now,
                )
                advance = advance_approve(advance=advance, officer=officer, now=now)
                if advance.status != Advance.Status.DISBURSED:
                    raise SystemExit(f"bench: advance {advance.ref} is {advance.status}")


def _payouts_append(refs: dict[int, list[str]], sizes: Sizes, now: datetime) -> None:
    """Every receivable paid in equal lines, ``lines_per_payout`` lines per payout.

    Round r of a merchant's payouts pays its r-th line of each receivable in turn, so payouts
    repay advances part by part and the last round closes them. Merchants take turns, as
    payouts from many sellers arrive: the work's order then spreads over them, and the two
    workers rarely wait on one merchant's chain lock.
    """
    from ledger.events import event_parse, format_timestamp
    from ledger.money import format_minor_units
    from ledger.services import NewEntry, entries_append

    line_minor = FACE_MINOR // sizes.lines_per_receivable
    occurred = format_timestamp(now - timedelta(minutes=5))
    payouts: dict[int, list[NewEntry]] = {}
    for merchant_id, invoices in refs.items():
        lines = [ref for _ in range(sizes.lines_per_receivable) for ref in invoices]
        payouts[merchant_id] = []
        for number, start in enumerate(range(0, len(lines), sizes.lines_per_payout)):
            chunk = lines[start : start + sizes.lines_per_payout]
            data = {
                "currency": "EUR",
                "amount": format_minor_units(line_minor * len(chunk), "EUR"),
                "settled_on": now.date().isoformat(),
                "lines": [
                    {"invoice_ref": ref, "amount": format_minor_units(line_minor, "EUR")}
                    for ref in chunk
                ],
            }
            raw = {
                "type": "payout.settled",
                "ref": f"PO-{merchant_id}-{number}",
                "occurred_at": occurred,
                "data": data,
            }
            payouts[merchant_id].append(NewEntry(merchant_id, event_parse(raw)))
    for turn in zip(*payouts.values(), strict=True):  # one payout of each merchant per batch
        entries_append(source=MARKETPLACE, entries=list(turn), now=now)


class _Counter:
    """Stands in for a task: ``delay`` counts and sends nothing."""

    def __init__(self) -> None:
        self.calls = 0

    def delay(self, *args: Any, **kwargs: Any) -> None:
        self.calls += 1


@contextmanager
def _stand_in(task_name: str) -> Iterator[_Counter]:
    """No broker during setup: the after-commit callbacks find the stand-in for the task."""
    import financing.tasks

    task = getattr(financing.tasks, task_name)
    counter = _Counter()
    setattr(financing.tasks, task_name, counter)
    try:
        yield counter
    finally:
        setattr(financing.tasks, task_name, task)


# --- a fresh copy for every run ------------------------------------------------------------


def _admin_connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(
        urlsplit(url)._replace(path="/postgres").geturl(), autocommit=True, connect_timeout=5
    )


def _template_save(url: str) -> str:
    """Copy the bench database, as built, into a template every run starts from."""
    from django.db import connection
    from psycopg import sql

    name = urlsplit(url).path.lstrip("/")
    template = f"{name}_template"
    connection.close()
    with _admin_connect(url) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(template)))
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                sql.Identifier(template), sql.Identifier(name)
            )
        )
    return template


def _database_restore(url: str, template: str) -> None:
    from django.db import connection
    from psycopg import sql

    name = urlsplit(url).path.lstrip("/")
    connection.close()
    with _admin_connect(url) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )


def _template_drop(url: str, template: str) -> None:
    from psycopg import sql

    with _admin_connect(url) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(template)))


# --- the runs ----------------------------------------------------------------------------------


def _workers_run(url: str, broker: str, work_ids: list[int]) -> float:
    """Seconds two worker processes took to settle every piece of work, sent at once."""
    from config.celery import app
    from financing.tasks import settlement_run

    node = f"settlement-bench-{os.getpid()}@%h"
    environment = os.environ | {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": broker,
        "DJANGO_DEBUG": "false",
        # Django's LOGGING, not celery's --loglevel, decides what the workers log.
        "LOG_LEVEL": "WARNING",
    }
    with app.connection_for_write() as broker_connection:  # an interrupted run's messages
        broker_connection.default_channel.queue_purge(QUEUE)
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-c", "2", "-n", node]
    command += ["-Q", QUEUE, "--without-heartbeat", "--without-mingle", "--without-gossip"]
    # A file, not a pipe: a pipe nobody reads while the clock runs fills up and blocks the pool.
    with tempfile.TemporaryFile() as log:
        worker = subprocess.Popen(
            [*command, "--loglevel=WARNING"], cwd=ROOT, env=environment, stdout=log, stderr=log
        )
        try:
            _wait_ready(app, node.replace("%h", os.uname().nodename), worker)
            started = perf_counter()
            for work_id in work_ids:
                settlement_run.apply_async(kwargs={"work_id": work_id}, queue=QUEUE)
            while _pending_count():
                if worker.poll() is not None:
                    raise SystemExit("bench: the worker stopped before the work was done")
                sleep(0.02)
            return perf_counter() - started
        finally:
            _worker_stop(worker, log)


def _worker_stop(worker: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    """Stop the pool; print the end of its log when it did not stop cleanly."""
    worker.terminate()
    try:
        worker.wait(timeout=60)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
    if worker.returncode not in (0, -15):
        log.seek(0)
        print(log.read().decode(errors="replace")[-3000:], file=sys.stderr)


def _wait_ready(app: Any, node: str, worker: subprocess.Popen[bytes]) -> None:
    deadline = perf_counter() + 60
    while perf_counter() < deadline:
        if worker.poll() is not None:
            raise SystemExit(f"bench: the worker exited at start (status {worker.returncode})")
        if app.control.ping(destination=[node], timeout=0.5):
            return
    raise SystemExit("bench: the worker did not answer a ping within 60 s")


def _pending_count() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM financing_settlementwork WHERE status = 'pending'")
        (pending,) = cursor.fetchone()
    return int(pending)


def _baseline_run(work_ids: list[int]) -> float:
    """Seconds ``settlement_work_run`` took in this process, one piece of work after another."""
    from django.utils import timezone

    from financing.services.settlement import settlement_work_run

    started = perf_counter()
    for work_id in work_ids:
        settlement_work_run(work_id=work_id, now=timezone.now())
    return perf_counter() - started


# --- checks ------------------------------------------------------------------------------------


def _work_check(run: str, expected: int) -> list[str]:
    from financing.models import SettlementWork

    done = SettlementWork.objects.filter(status=SettlementWork.Status.DONE).count()
    if done != expected:
        return [f"{run}: {done} of {expected} pieces of work done"]
    return []


def _books_fingerprint() -> list[tuple[str, int]]:
    """Every account's balance (the bank's with their merchants' shards): equal after two runs
    means the same allocations in total."""
    from financing.books.selectors import accounts_with_balance

    balances = accounts_with_balance().order_by("code")
    return list(balances.values_list("code", "balance_total_minor"))


def _verify() -> list[str]:
    from financing.books.verification import books_verify
    from ledger.verification import ledger_verify

    started = perf_counter()
    books = books_verify()
    chains = ledger_verify()
    print(
        f"\nverify      books: {books.entries:,} entries, {books.postings:,} postings"
        f" ({'intact' if books.intact else books.first_problem}); chains: "
        f"{'intact' if chains.intact else chains.first_break} in {perf_counter() - started:.1f} s"
    )
    problems = []
    if not books.intact:
        problems.append(f"books_verify: {books.first_problem}")
    if not chains.intact:
        problems.append(f"ledger_verify: {chains.first_break}")
    return problems


if __name__ == "__main__":
    sys.exit(main())
