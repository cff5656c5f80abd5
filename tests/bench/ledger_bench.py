"""Ledger throughput: chain appends against a raw-SQL baseline, and chain verification.

    .venv/bin/python -m tests.bench.ledger_bench [--repeat N] [--quick]

Drops and recreates the database named by BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/chainfin_bench), migrates it, then measures in one process:

1. single appends: ``entry_append`` round-robin over the merchants, one transaction each;
2. batch appends: ``entries_append`` with 100 events for one merchant per call (one transaction),
   the calls round-robin over the merchants;
3. the same rows inserted "without the chain" into a clone of ``ledger_entry`` (same columns,
   indexes and constraints; no triggers, no foreign key, no projections), one row per transaction
   and 100 rows per multi-row INSERT, through the same Django cursor;
4. ``ledger_verify()`` over a ledger topped up to at least 200,000 entries (the top-up is setup,
   not a figure, and runs in two processes to keep the run short), in this process and with
   as many worker processes as there are usable CPUs (``verify_ledger``'s default).

Each figure is the median of the repetitions; chain and baseline runs alternate inside every
repetition so that noise on a shared machine hits both. The targets are printed, not asserted;
the exit status is non-zero only when verification does not find the ledger intact.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import queue
import statistics
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import count
from time import perf_counter
from typing import TYPE_CHECKING, Any

from tests.bench._setup import (
    ENTRY_COLUMNS,
    Figure,
    Row,
    bench_database_url,
    django_bootstrap,
    figure_row,
    machine_context,
    merchants_create,
    statistics_gather,
    table_print,
    verdict,
)

if TYPE_CHECKING:
    from multiprocessing import Queue
    from multiprocessing.process import BaseProcess

    from ledger.events import ValidEvent
    from ledger.services import NewEntry

# From issue 13: single appends keep at least half the raw insert rate, batches 60 %;
# verification 400k entries/s using both cores.
TARGET_SINGLE_RATIO = 0.5
TARGET_BATCH_RATIO = 0.6
TARGET_VERIFY_RATE = 400_000
# verify_ledger's default: a worker per usable CPU.
VERIFY_WORKERS = len(os.sched_getaffinity(0))

SOURCE = "bench"
TOP_UP_WORKERS = 2
FORK = multiprocessing.get_context("fork")
BASELINE_TABLE = "bench_entry_baseline"
# Share of each event type in the generated stream, out of ten. Types whose projector updates an
# earlier row (order.cancelled, shipment.delivered/returned, invoice.credited) are left out so the
# events can be appended in any order and to any merchant.
EVENT_MIX = (
    ("order.placed", 4),
    ("invoice.issued", 3),
    ("shipment.dispatched", 2),
    ("payout.settled", 1),
)
BaselineRow = tuple[Any, ...]
_STARTED = perf_counter()  # reading a clock is the only thing importing this module does


def _elapsed() -> str:
    return f"(t+{perf_counter() - _STARTED:.0f} s)"


@dataclass(frozen=True)
class Sizes:
    merchants: int
    singles: int  # single appends per repetition
    batch_events: int  # events per repetition in batches
    batch_size: int
    verify_entries: int  # the ledger is topped up to this many entries before verification
    top_up_merchants: int
    top_up_batch: int


FULL = Sizes(
    merchants=200,
    singles=2_000,
    batch_events=20_000,
    batch_size=100,
    verify_entries=200_000,
    top_up_merchants=100,
    top_up_batch=500,
)
QUICK = Sizes(
    merchants=20,
    singles=200,
    batch_events=2_000,
    batch_size=100,
    verify_entries=10_000,
    top_up_merchants=10,
    top_up_batch=500,
)


class EventMaker:
    """Valid events of varied types and realistic size, each with a ref never used before."""

    _cycle = [event_type for event_type, share in EVENT_MIX for _ in range(share)]

    def __init__(self) -> None:
        self._next = 1

    def reserve(self, number: int) -> range:
        """Serial numbers for ``number`` events, never handed out again (refs derive from them)."""
        serials = range(self._next, self._next + number)
        self._next += number
        return serials

    def build(self, number: int) -> list[ValidEvent]:
        return self.build_serials(self.reserve(number))

    @classmethod
    def build_serials(cls, serials: range) -> list[ValidEvent]:
        from ledger.events import event_parse

        return [event_parse(cls._raw(n)) for n in serials]

    @classmethod
    def _raw(cls, n: int) -> dict[str, Any]:
        event_type = cls._cycle[n % len(cls._cycle)]
        buyer = n % 5_000
        amount = f"{100 + n % 9_000}.{n % 100:02d}"
        occurred_at = f"2026-10-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:{n * 7 % 60:02d}Z"
        data: dict[str, Any]
        if event_type == "order.placed":
            ref = f"ORD-{n:09d}"
            data = {
                "currency": "EUR",
                "amount": amount,
                "buyer": {"id": f"BUY-{buyer:06d}", "name": f"Buyer {buyer} Handels GmbH"},
            }
        elif event_type == "invoice.issued":
            ref = f"INV-{n:09d}"
            data = {
                "currency": "EUR",
                "amount": amount,
                "order_ref": f"ORD-{n - 1:09d}",
                "issue_date": "2026-10-01",
                "due_date": "2026-11-30",
                "debtor": {
                    "kind": "business",
                    "name": f"Buyer {buyer} Handels GmbH",
                    "tax_id": f"DE{200000000 + buyer}",
                    "country": "DE",
                },
            }
        elif event_type == "shipment.dispatched":
            ref = f"SHP-{n:09d}"
            data = {
                "order_ref": f"ORD-{n - 2:09d}",
                "carrier": "DHL Paket",
                "tracking_number": f"JJD{n:018d}",
            }
        else:
            ref = f"PAY-{n:09d}"
            lines = [{"invoice_ref": f"INV-{n - k:09d}", "amount": "250.00"} for k in (1, 2, 3)]
            data = {
                "currency": "EUR",
                "amount": "750.00",
                "settled_on": "2026-10-15",
                "lines": lines,
            }
        return {"type": event_type, "ref": ref, "occurred_at": occurred_at, "data": data}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per figure (>= 3)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args(argv)
    if args.repeat < 3:
        parser.error("--repeat must be at least 3: a median of fewer says little")
    sizes = QUICK if args.quick else FULL
    django_bootstrap(bench_database_url())
    print("Chainfin ledger benchmark" + (" (--quick: small sizes, figures are rough)" * args.quick))
    for line in machine_context():
        print(line)

    merchant_ids = merchants_create(sizes.merchants)
    maker = EventMaker()
    _baseline_table_create()
    serial = count(1)  # makes baseline seqs, hashes and keys unique across the whole run
    _warm_up(maker, merchant_ids, sizes, serial)
    print(
        f"\nsizes       per repetition {sizes.singles:,} single appends round-robin over"
        f" {sizes.merchants} merchants, and {sizes.batch_events:,} events in batches of"
        f" {sizes.batch_size}, each batch for one merchant, round-robin; {args.repeat} repetitions,"
        " chain and baseline alternating"
    )
    mix = ", ".join(f"{event_type} {share * 10}%" for event_type, share in EVENT_MIX)
    print(f"event mix   {mix}")

    figures = _appends_measure(maker, merchant_ids, sizes, args.repeat, serial)
    print(f"bodies      {figures.body_sizes}")

    verification, broken = _verification_measure(maker, merchant_ids, sizes, args.repeat)
    rows = _report_rows(figures, verification)
    print()
    table_print(rows)
    print(f"\ntotal run time {perf_counter() - _STARTED:.1f} s")
    if broken:
        print(f"\nFAILED: {broken}", file=sys.stderr)
        return 1
    return 0


def _baseline_table_create() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        # LIKE copies columns, defaults, identity, CHECK and NOT NULL constraints and every index
        # (so the unique ones too), but no triggers and no foreign keys.
        cursor.execute(f"CREATE TABLE {BASELINE_TABLE} (LIKE ledger_entry INCLUDING ALL)")


def _warm_up(maker: EventMaker, merchant_ids: list[int], sizes: Sizes, serial: count[int]) -> None:
    """Create every chain (the first append to a merchant does) and warm the code paths."""
    first = _entries_mark()
    _chain_single(maker.build(len(merchant_ids)), merchant_ids)
    _chain_batches(_batches(maker, merchant_ids, 5 * sizes.batch_size, sizes.batch_size))
    rows = _baseline_rows(_entries_since(first), serial, tag="warm")
    _baseline_single(rows[: len(merchant_ids)])
    _baseline_batches(rows[len(merchant_ids) :], sizes.batch_size)


@dataclass
class AppendFigures:
    chain_single: Figure
    baseline_single: Figure
    chain_batch: Figure
    baseline_batch: Figure
    body_sizes: str


def _appends_measure(
    maker: EventMaker, merchant_ids: list[int], sizes: Sizes, repeat: int, serial: count[int]
) -> AppendFigures:
    figures = AppendFigures(
        chain_single=Figure("1 single appends, chain (entry_append)", "appends/s"),
        baseline_single=Figure("1 single inserts, raw SQL baseline", "rows/s"),
        chain_batch=Figure(
            f"2 batch appends, chain ({sizes.batch_size}/entries_append)", "events/s"
        ),
        baseline_batch=Figure(
            f"2 batch inserts, raw SQL baseline ({sizes.batch_size}/tx)", "rows/s"
        ),
        body_sizes="",
    )
    bodies: list[int] = []
    for rep in range(1, repeat + 1):
        statistics_gather()  # the tables grew by a repetition since, for chain and baseline alike
        events = maker.build(sizes.singles)
        mark = _entries_mark()
        seconds = _chain_single(events, merchant_ids)
        figures.chain_single.samples.append(sizes.singles / seconds)
        produced = _entries_since(mark)
        bodies += [len(row[-1]) for row in produced]
        rows = _baseline_rows(produced, serial, tag=f"s{rep}")
        figures.baseline_single.samples.append(len(rows) / _baseline_single(rows))

        batches = _batches(maker, merchant_ids, sizes.batch_events, sizes.batch_size)
        mark = _entries_mark()
        seconds = _chain_batches(batches)
        figures.chain_batch.samples.append(sizes.batch_events / seconds)
        rows = _baseline_rows(_entries_since(mark), serial, tag=f"b{rep}")
        figures.baseline_batch.samples.append(len(rows) / _baseline_batches(rows, sizes.batch_size))
        print(
            f"repetition {rep}/{repeat}: single {figures.chain_single.samples[-1]:,.0f} vs"
            f" {figures.baseline_single.samples[-1]:,.0f} rows/s; batch"
            f" {figures.chain_batch.samples[-1]:,.0f} vs {figures.baseline_batch.samples[-1]:,.0f}"
            f" rows/s {_elapsed()}",
            flush=True,
        )
    figures.body_sizes = (
        f"{statistics.mean(bodies):,.0f} bytes on average ({min(bodies)}..{max(bodies)}),"
        " the baseline inserts the very same bodies"
    )
    return figures


def _chain_single(events: list[ValidEvent], merchant_ids: list[int]) -> float:
    from django.utils import timezone

    from ledger.services import entry_append

    merchants = len(merchant_ids)
    started = perf_counter()
    for index, event in enumerate(events):
        entry_append(
            source=SOURCE,
            merchant_id=merchant_ids[index % merchants],
            event=event,
            now=timezone.now(),
        )
    return perf_counter() - started


def _batches(
    maker: EventMaker, merchant_ids: list[int], events: int, size: int
) -> list[list[NewEntry]]:
    """``events`` events in batches of ``size``, each batch for one merchant, round-robin."""
    from ledger.services import NewEntry

    batches = []
    for index in range(0, events, size):
        merchant_id = merchant_ids[(index // size) % len(merchant_ids)]
        batch = maker.build(min(size, events - index))
        batches.append([NewEntry(merchant_id=merchant_id, event=event) for event in batch])
    return batches


def _chain_batches(batches: list[list[NewEntry]]) -> float:
    from django.utils import timezone

    from ledger.services import entries_append

    started = perf_counter()
    for batch in batches:
        entries_append(source=SOURCE, entries=batch, now=timezone.now())
    return perf_counter() - started


def _entries_mark() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM ledger_entry")
        (mark,) = cursor.fetchone()
    return int(mark)


def _entries_since(mark: int) -> list[BaselineRow]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(ENTRY_COLUMNS)} FROM ledger_entry WHERE id > %s ORDER BY id",
            [mark],
        )
        return [tuple(row) for row in cursor.fetchall()]


def _baseline_rows(
    entries: list[BaselineRow], serial: count[int], *, tag: str
) -> list[BaselineRow]:
    """The chain's rows with fresh seqs, hashes and keys, so the unique indexes accept them."""
    rows = []
    for chain_id, _seq, type_, source, ref, key, request, occurred, recorded, _, _, body in entries:
        n = next(serial)
        prev = hashlib.sha256(f"prev:{n}".encode()).hexdigest()
        hash_ = hashlib.sha256(f"hash:{n}".encode()).hexdigest()
        seq = n + 1  # above 1, so a non-genesis prev_hash satisfies entry_genesis_iff_first
        rows.append(
            (
                chain_id,
                seq,
                type_,
                source,
                ref,
                f"{key}#{tag}",
                request,
                occurred,
                recorded,
                prev,
                hash_,
                bytes(body),
            )
        )
    return rows


def _insert_sql(rows: int) -> str:
    values = "(" + ", ".join(["%s"] * len(ENTRY_COLUMNS)) + ")"
    return f"INSERT INTO {BASELINE_TABLE} ({', '.join(ENTRY_COLUMNS)}) VALUES " + ", ".join(
        [values] * rows
    )


def _baseline_single(rows: list[BaselineRow]) -> float:
    from django.db import connection, transaction

    sql = _insert_sql(1)
    with connection.cursor() as cursor:
        started = perf_counter()
        for row in rows:
            with transaction.atomic():
                cursor.execute(sql, row)
        return perf_counter() - started


def _baseline_batches(rows: list[BaselineRow], size: int) -> float:
    from django.db import connection, transaction

    chunks = [rows[start : start + size] for start in range(0, len(rows), size)]
    statements = {len(chunk): _insert_sql(len(chunk)) for chunk in chunks}
    params = [[value for row in chunk for value in row] for chunk in chunks]
    with connection.cursor() as cursor:
        started = perf_counter()
        for chunk, flat in zip(chunks, params, strict=True):
            with transaction.atomic():
                cursor.execute(statements[len(chunk)], flat)
        return perf_counter() - started


def _verification_measure(
    maker: EventMaker, merchant_ids: list[int], sizes: Sizes, repeat: int
) -> tuple[list[Figure], str | None]:
    """Top the ledger up to size, then time full verifications; return the figure and any break."""
    from django.db import connection

    from ledger.models import Chain, Entry
    from ledger.verification import ledger_verify

    _top_up(maker, merchant_ids[: sizes.top_up_merchants], sizes)
    with connection.cursor() as cursor:
        # autovacuum may be off (it is on the reference machine); give the planner the statistics
        # a running database would have.
        cursor.execute("VACUUM (ANALYZE) ledger_entry")
    entries, chains = Entry.objects.count(), Chain.objects.count()
    print(f"verify      {entries:,} entries in {chains:,} chains {_elapsed()}", flush=True)

    figures = [
        Figure("4 verification (ledger_verify, 1 process)", "entries/s"),
        Figure(f"4 verification (ledger_verify, {VERIFY_WORKERS} worker processes)", "entries/s"),
    ]
    for _ in range(repeat):
        for figure, workers in zip(figures, (1, VERIFY_WORKERS), strict=True):
            started = perf_counter()
            result = ledger_verify(workers=workers)
            seconds = perf_counter() - started
            if not result.intact:
                return figures, f"verification found a break: {result.first_break}"
            if (result.entries, result.chains) != (entries, chains):
                return figures, (
                    f"verification checked {result.entries:,} entries in {result.chains:,}"
                    f" chains; the database holds {entries:,} in {chains:,}"
                )
            figure.samples.append(result.entries / seconds)
    return figures, None


def _top_up(maker: EventMaker, merchant_ids: list[int], sizes: Sizes) -> None:
    """Append batches until the ledger holds ``sizes.verify_entries``; print how long it took.

    This is setup, not a figure: it runs in TOP_UP_WORKERS processes, each appending to its own
    merchants, so that the full run stays within a few minutes.
    """
    from django.db import connections

    from ledger.models import Entry

    missing = sizes.verify_entries - Entry.objects.count()
    if missing <= 0:
        return
    workers = min(TOP_UP_WORKERS, len(merchant_ids))
    serials = maker.reserve(missing)
    plans: list[list[tuple[int, range]]] = [[] for _ in range(workers)]
    for call, start in enumerate(range(0, missing, sizes.top_up_batch)):
        worker = call % workers
        own = merchant_ids[worker::workers]
        merchant_id = own[(call // workers) % len(own)]
        plans[worker].append((merchant_id, serials[start : start + sizes.top_up_batch]))

    connections.close_all()  # a forked child must not share the parent's socket
    results = FORK.Queue()
    processes = [FORK.Process(target=_top_up_worker, args=(plan, results)) for plan in plans]
    started = perf_counter()
    for process in processes:
        process.start()
    reports = _collect(results, processes)
    wall = perf_counter() - started
    failures = [report for report in reports if isinstance(report, str)]
    if failures or any(process.exitcode for process in processes):
        raise SystemExit("bench: a top-up worker failed:\n" + "\n".join(failures))
    build = sum(report[1] for report in reports if not isinstance(report, str))
    print(
        f"top-up      {missing:,} entries in batches of {sizes.top_up_batch} (one merchant per"
        f" call) by {workers} processes over {len(merchant_ids)} merchants: {wall:.1f} s wall"
        f" clock, {missing / wall:,.0f} events/s together (of which {build:.1f} s CPU building"
        f" events) {_elapsed()}",
        flush=True,
    )


def _collect(
    results: Queue[tuple[float, float] | str], processes: Sequence[BaseProcess]
) -> list[tuple[float, float] | str]:
    """One report per process; a process that died without reporting counts as a failure."""
    reports: list[tuple[float, float] | str] = []
    while len(reports) < len(processes):
        try:
            reports.append(results.get(timeout=5))
        except queue.Empty:
            if not any(process.is_alive() for process in processes) and results.empty():
                reports.append("a top-up worker died without a report")
    for process in processes:
        process.join()
    return reports


def _top_up_worker(
    plan: list[tuple[int, range]], results: Queue[tuple[float, float] | str]
) -> None:
    from django.db import connections

    from ledger.services import NewEntry

    append_seconds = build_seconds = 0.0
    try:
        for merchant_id, serials in plan:
            started = perf_counter()
            events = EventMaker.build_serials(serials)
            batch = [NewEntry(merchant_id=merchant_id, event=event) for event in events]
            build_seconds += perf_counter() - started
            append_seconds += _chain_batches([batch])
    except BaseException:  # report, so the parent fails with the cause instead of hanging
        results.put(traceback.format_exc())
        raise
    finally:
        connections.close_all()
    results.put((append_seconds, build_seconds))


def _report_rows(figures: AppendFigures, verification: list[Figure]) -> list[Row]:
    rows = []
    for chain, baseline, label, wanted in (
        (
            figures.chain_single,
            figures.baseline_single,
            "1 single: chain / baseline",
            TARGET_SINGLE_RATIO,
        ),
        (
            figures.chain_batch,
            figures.baseline_batch,
            "2 batch:  chain / baseline",
            TARGET_BATCH_RATIO,
        ),
    ):
        target = f">= {wanted:.0%} of baseline"
        ratio = chain.median / baseline.median
        each = " ".join(
            f"{c / b:.0%}" for c, b in zip(chain.samples, baseline.samples, strict=True)
        )
        rows += [
            figure_row(chain),
            figure_row(baseline),
            Row(f"  {label}", f"{ratio:.0%}", each, target, verdict(ratio, wanted)),
        ]
    one, several = verification
    if one.samples:
        rows.append(figure_row(one, target="(baseline: one process)"))
    if several.samples:
        rows.append(
            figure_row(
                several,
                target=f">= {TARGET_VERIFY_RATE:,} entries/s",
                verdict=verdict(several.median, TARGET_VERIFY_RATE),
            )
        )
    return rows


if __name__ == "__main__":
    sys.exit(main())
