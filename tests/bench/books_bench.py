"""Books throughput: journal transfers and disbursements with their chain entries, vs raw SQL.

    .venv/bin/python -m tests.bench.books_bench [--repeat N] [--quick]

Drops and recreates the database named by BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/chainfin_bench_books), migrates it, creates merchants (KYC
verified), the bank's cash account and one advances-receivable account per merchant, an EUR
facility per merchant (proposed and confirmed by two staff superusers, four-eyes; a limit and a
checker threshold far above what the run advances, so approval disburses at once) with its
chart of accounts, then measures in one process, for every figure in FIGURES, the figure and its
baselines:

1. journal transfers: one transaction each, doing what a repayment does to the books: build the
   ``advance.repaid`` system event, ``journal_post`` a balanced two-posting entry under an
   idempotency key (debit cash, credit the merchant's receivable) and ``entry_append`` the event
   to the merchant's chain; round-robin over the merchants;
   baselines: the very same rows (1 journal entry, 2 postings, 1 ledger entry with the same
   body bytes) inserted into clones of the three tables (same columns, indexes and constraints;
   no triggers, no foreign keys), one transaction per transfer, through the same Django cursor,
   with no event validation, lock, balance, idempotency look-up or hash:
   a. one INSERT per table (3 statements), as plain raw SQL writes them: the target's baseline;
   b. all three INSERTs in one statement (data-modifying CTEs): the floor, shown for reference.
2. advances disbursed: ``advance_approve`` of a requested advance on one receivable, below the
   facility's checker threshold, so that it disburses in the same transaction: the evidence is
   re-checked and the advance repriced, the assignment goes held -> assigned, a journal entry of
   four postings is posted, ``advance.disbursed`` and ``receivable.assigned`` are appended to the
   merchant's chain and the notice of assignment is written to the outbox; round-robin over the
   merchants. Not timed, before each run: the receivables' evidence (order, invoice due in 45
   days, shipment dispatched and delivered) is appended through ``entries_append`` as the
   marketplace, and each advance is requested with ``advance_request``.
   The notice's delivery is enqueued after commit; for the run, ``financing.tasks.notice_send``
   is replaced by a stand-in whose ``delay`` only counts (no broker is needed, nothing is sent;
   the bench creates no webhook endpoint either), and the count must equal the disbursements;
   baseline a: the same rows written by raw SQL with no checks, one transaction per disbursement:
   the advance's and its assignment's changes as two UPDATEs of clones of their tables (their
   rows as they stood when requested are copied in first, untimed), then one INSERT each of the
   journal entry, its postings, the chain entries and the notice, into clones as in 1
   (6 statements).

3. the evidence re-check of one receivable (``verdicts``, as every quote, request and approval
   runs it) for a merchant with a long history (``Sizes.long_chain`` events on its chain: orders
   and their invoices, long past due, appended untimed before the run) against baseline a: the
   same check for a merchant whose chain holds only the receivable's evidence. Its history must
   not slow it: target at least 90 %.
4. the portal dashboard's figures (``dashboard_figures``: what may be financed now, what is
   outstanding, reserves, recourse, suspense) for the same two merchants, same target.
5. the portal's list of receivables, its first page unfiltered as a merchant opens it
   (``receivables_for_merchant`` counted and paged as the view does, the page's verdicts by
   ``receivables_judged``), for the same two merchants: latest due first, the page holds the
   open receivable and then, for the long history, invoices long past due, so the two pages
   differ; no target, the figure shows that the history is counted and paged by the database,
   not read.
6. journal transfers in PROCESSES processes against the same transfers in one.
Each figure is the median of the repetitions; measured and baseline runs alternate inside every
repetition so that noise on a shared machine hits all of them. Every repetition starts with an
``ANALYZE`` (``statistics_gather``), as autovacuum keeps statistics current on a server. The
targets are printed, not asserted; the exit status is non-zero only when ``books_verify`` or
``ledger_verify`` finds a problem at the end (a disbursement run that does not disburse every
advance stops the run).

Adding a figure: write a ``run`` and its baselines, each taking the ``Bench``, a number of
operations and a tag, and returning the seconds the operations took (setup they need goes before
the clock starts), give it a ``Load`` in ``Sizes``, and append a ``Measured`` to FIGURES; the
loop, the medians, the ratios and the table come for free.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
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
    receivable_evidence,
    repayment_event,
    statistics_gather,
    table_print,
    verdict,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django.db.backends.utils import CursorWrapper

    from financing.books.models import Account
    from financing.models import Advance
    from ledger.events import ValidEvent
    from merchants.models import Merchant

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/chainfin_bench_books"
# From issue 8: at least 1,000 transfers/s, and at least 40% of the raw insert rate; from
# issue 13: at least 200 advances disbursed per second (no ratio is set for them).
TARGET_TRANSFER_RATE = 1_000
TARGET_RATIO = 0.40
TARGET_DISBURSEMENT_RATE = 200
# Issue 13: a hot path may not slow down as a merchant's chain grows.
TARGET_LONG_CHAIN_RATIO = 0.90

SOURCE = "chainfin"
REPAYMENT_MINOR = 1234  # 12.34 EUR, the amount in the event's data
MARKETPLACE = "bench"  # the merchants' marketplace: it sends their trade evidence
INVOICE_AMOUNT = "1000.00"  # EUR; at the facility's 80% an advance of 800.00, fee and reserve
FACILITY_TERMS: dict[str, Any] = {
    "limit_minor": 10_000_000_000,  # 100 million EUR: no run comes near it
    "advance_rate_bp": 8000,
    "annual_rate_bp": 1800,
    "max_tenor_days": 120,
    "min_days_to_due": 7,
    "debtor_cap_bp": 10_000,  # every receivable is owed by the one marketplace
    "checker_threshold_minor": 10_000_000_000,  # approval disburses: no second officer
}
_STARTED = perf_counter()  # reading a clock is the only thing importing this module does

# Baseline clones of the tables a transfer or a disbursement writes, named after what they copy.
CLONES = {
    "books_journalentry": "bench_journalentry_baseline",
    "books_posting": "bench_posting_baseline",
    "ledger_entry": "bench_entry_baseline",
    "financing_advance": "bench_advance_baseline",
    "financing_assignment": "bench_assignment_baseline",
    "financing_assignmentnotice": "bench_notice_baseline",
}
POSTING_COLUMNS = ("entry_id", "account_id", "amount_minor", "currency")
# Baseline a: one INSERT per table, the postings in one multi-row INSERT.
_BASELINE_ENTRY = (
    f'INSERT INTO {CLONES["books_journalentry"]} ("key", memo, posted_at, fingerprint)'
    " VALUES (%s, %s, %s, %s) RETURNING id"
)
_BASELINE_POSTINGS = (
    f"INSERT INTO {CLONES['books_posting']} (entry_id, account_id, amount_minor, currency)"
    " VALUES (%s, %s, %s, 'EUR'), (%s, %s, %s, 'EUR')"
)
_BASELINE_CHAIN_ENTRY = (
    f"INSERT INTO {CLONES['ledger_entry']} ({', '.join(ENTRY_COLUMNS)})"
    f" VALUES ({', '.join(['%s'] * len(ENTRY_COLUMNS))})"
)
# Baseline b: the same three INSERTs in one statement, the postings hanging off the entry's id.
_BASELINE_ONE_STATEMENT = f"""
WITH je AS ({_BASELINE_ENTRY}
), postings AS (
    INSERT INTO {CLONES["books_posting"]} (entry_id, account_id, amount_minor, currency)
    SELECT je.id, p.account_id, p.amount_minor, 'EUR'
    FROM je, (VALUES (%s::bigint, %s::bigint), (%s::bigint, %s::bigint))
         AS p (account_id, amount_minor)
)
{_BASELINE_CHAIN_ENTRY}
"""


def _elapsed() -> str:
    return f"(t+{perf_counter() - _STARTED:.0f} s)"


@dataclass(frozen=True)
class Load:
    operations: int  # per repetition, for the figure and for each baseline
    warm_up: int  # once before the first repetition, not measured


@dataclass(frozen=True)
class Sizes:
    merchants: int
    transfers: Load
    # A disbursement is some 40 queries, and its receivable and request take as long again to
    # set up (untimed): fewer of them keep the full run within 3 minutes.
    disbursements: Load
    # Figures 3 to 5: the runs of each, and the events of the long history.
    rechecks: Load
    long_chain: int

    # Figure 6: seconds each process count runs for, per repetition.
    process_seconds: float


FULL = Sizes(
    merchants=200,
    transfers=Load(2_000, 400),
    disbursements=Load(250, 50),
    rechecks=Load(300, 50),
    long_chain=100_000,
    process_seconds=5.0,
)
QUICK = Sizes(
    merchants=20,
    transfers=Load(300, 100),
    disbursements=Load(60, 20),
    rechecks=Load(60, 20),
    long_chain=10_000,
    process_seconds=1.0,
)
# Figure 6: as `make bench-peers` runs Chainfin beside django-hordak (tests/bench/transfers_bench).
PROCESSES = 4
PEER_ACCOUNTS = 50


@dataclass
class Bench:
    """What the figures share: merchants, their accounts, and counters that keep keys unique."""

    merchant_ids: list[int]
    merchants: dict[int, Merchant]
    officer: User
    cash: Account
    receivables: dict[int, Account]
    refs: count[int] = field(default_factory=lambda: count(1))
    # (journal key, chain idempotency key) of every transfer so far, for the baseline to copy.
    written: list[tuple[str, str]] = field(default_factory=list)
    baseline_serial: count[int] = field(default_factory=lambda: count(1))
    invoices: count[int] = field(default_factory=lambda: count(1))
    # Ids of every advance disbursed so far, for the baseline to copy.
    disbursed: list[int] = field(default_factory=list)
    # Figures 3 to 5: (merchant, its one fundable invoice), long history and short.
    long_chain: tuple[Merchant, str] | None = None
    short_chain: tuple[Merchant, str] | None = None


@dataclass(frozen=True)
class Baseline:
    label: str  # "<name>: <what it does>"
    run: Callable[[Bench, int, str], float]

    @property
    def name(self) -> str:
        return self.label.split(":")[0]


@dataclass(frozen=True)
class Measured:
    """One figure: ``run`` and each baseline do ``n`` operations and return the seconds.

    The target ratio is against the first baseline; the others are shown for reference.
    """

    label: str
    unit: str
    load: Callable[[Sizes], Load]
    run: Callable[[Bench, int, str], float]
    baselines: tuple[Baseline, ...]
    target_rate: float | None  # None: no target, the figure is printed and not judged
    target_ratio: float | None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per figure (>= 3)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args(argv)
    if args.repeat < 3:
        parser.error("--repeat must be at least 3: a median of fewer says little")
    sizes = QUICK if args.quick else FULL
    django_bootstrap(bench_database_url(DEFAULT_DATABASE_URL))
    print("Chainfin books benchmark" + (" (--quick: small sizes, figures are rough)" * args.quick))
    for line in machine_context():
        print(line)

    bench = _bench_create(sizes.merchants)
    _clones_create()
    _histories_create(bench, sizes.long_chain)
    for measured in FIGURES:
        warm_up = measured.load(sizes).warm_up
        measured.run(bench, warm_up, "warm")
        for baseline in measured.baselines:
            baseline.run(bench, warm_up, f"warm-{baseline.name}")
    per_figure = ", ".join(
        f"{m.load(sizes).operations:,} for figure {m.label.split()[0]}" for m in FIGURES
    )
    print(
        f"\nsizes       operations per repetition {per_figure}, round-robin over"
        f" {sizes.merchants} merchants, one transaction each; {args.repeat} repetitions,"
        f" measured and baselines alternating {_elapsed()}"
    )

    rows: list[Row] = []
    for measured in FIGURES:
        figure = Figure(measured.label, measured.unit)
        baselines = [Figure(f"  baseline {b.label}", measured.unit) for b in measured.baselines]
        number = measured.load(sizes).operations
        for rep in range(1, args.repeat + 1):
            # As autovacuum would on a server whose tables grow (it is off on this machine):
            # without it, plans made on the warm-up's small tables slowed transfers by a third
            # from one repetition to the third.
            statistics_gather()
            figure.samples.append(number / measured.run(bench, number, f"r{rep}"))
            for baseline, samples in zip(measured.baselines, baselines, strict=True):
                seconds = baseline.run(bench, number, f"r{rep}-{baseline.name}")
                samples.samples.append(number / seconds)
            against = ", ".join(f"{b.samples[-1]:,.0f}" for b in baselines)
            print(
                f"repetition {rep}/{args.repeat}: {measured.label} {figure.samples[-1]:,.0f}"
                f" vs baselines {against} {measured.unit} {_elapsed()}",
                flush=True,
            )
        rows += _rows(measured, figure, baselines)
    rows += _transfers_processes(sizes, args.repeat)

    broken = _verify()
    print()
    table_print(rows)
    print(f"\ntotal run time {perf_counter() - _STARTED:.1f} s")
    if broken:
        print(f"\nFAILED: {broken}", file=sys.stderr)
        return 1
    return 0


def _bench_create(merchants: int) -> Bench:
    from financing.books.services import account_open
    from merchants.models import Merchant

    merchant_ids = merchants_create(merchants, code=MARKETPLACE)
    public_ids = dict(Merchant.objects.filter(pk__in=merchant_ids).values_list("pk", "public_id"))
    cash = account_open(code="cash:EUR", name="Cash at bank", kind="asset", currency="EUR")
    receivables = {
        merchant_id: account_open(
            code=f"advances_receivable:{public_ids[merchant_id]}:EUR",
            name="Advances receivable",
            kind="asset",
            currency="EUR",
            merchant_id=merchant_id,
        )
        for merchant_id in merchant_ids
    }
    officer, by_id = _facilities_open(merchant_ids)
    return Bench(
        merchant_ids=merchant_ids,
        merchants=by_id,
        officer=officer,
        cash=cash,
        receivables=receivables,
    )


def _facilities_open(merchant_ids: list[int]) -> tuple[User, dict[int, Merchant]]:
    """Verify the merchants' KYC, open their EUR facilities and charts; return the officer."""
    from django.contrib.auth.models import User
    from django.utils import timezone

    from financing.accounts import Chart
    from financing.services.facilities import facility_open_propose
    from financing.services.proposals import change_confirm
    from merchants.models import Merchant

    # No service verifies KYC (an officer does it in the admin); the test fixtures set it too.
    Merchant.objects.filter(pk__in=merchant_ids).update(kyc_status=Merchant.KycStatus.VERIFIED)
    officer = User.objects.create_superuser("bench-officer", email="", password=None)
    proposer = User.objects.create_superuser("bench-proposer", email="", password=None)
    now = timezone.now()
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
        # Opened at the first disbursement otherwise, inside the first repetitions' clock.
        chart = Chart(merchant, "EUR")
        for account_open in (
            chart.advances_receivable,
            chart.reserve_payable,
            chart.disbursement_clearing,
            chart.unearned_discount,
            chart.fee_income,
        ):
            account_open()
    return officer, merchants


def _clones_create() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table, clone in CLONES.items():
            # LIKE copies columns, defaults, identity, CHECK and NOT NULL constraints and every
            # index (so the unique ones too), but no triggers and no foreign keys.
            cursor.execute(f"CREATE TABLE {clone} (LIKE {table} INCLUDING ALL)")


# --- 1. journal transfers ---------------------------------------------------------------------


def _transfers(bench: Bench, number: int, tag: str) -> float:
    """``number`` repayments, each one transaction: journal entry, postings, balances, chain."""
    from django.db import transaction
    from django.utils import timezone

    from financing.books.services import Leg, journal_post
    from ledger.services import entry_append

    merchants = len(bench.merchant_ids)
    plan = []
    for index in range(number):
        merchant_id = bench.merchant_ids[index % merchants]
        ref = f"rep_{next(bench.refs):09d}"
        receivable = bench.receivables[merchant_id]
        legs = [Leg(bench.cash, REPAYMENT_MINOR), Leg(receivable, -REPAYMENT_MINOR)]
        plan.append((merchant_id, ref, legs))
    started = perf_counter()
    for merchant_id, ref, legs in plan:
        now = timezone.now()
        event = repayment_event(ref, now, "12.34")
        with transaction.atomic():
            journal_post(key=f"advance.repaid:{ref}", memo="advance repaid", legs=legs, now=now)
            entry_append(source=SOURCE, merchant_id=merchant_id, event=event, now=now)
    seconds = perf_counter() - started
    bench.written += [
        (f"advance.repaid:{ref}", f"{merchant_id}:advance.repaid:{ref}")
        for merchant_id, ref, _ in plan
    ]
    return seconds


def _transfers_raw(bench: Bench, number: int, tag: str) -> float:
    """The rows of the last ``number`` transfers again, one INSERT per table, no checks."""
    from django.db import connection, transaction

    params = [_baseline_params(bench, row, tag) for row in _written(bench.written[-number:])]
    with connection.cursor() as cursor:
        started = perf_counter()
        for values in params:
            with transaction.atomic():
                cursor.execute(_BASELINE_ENTRY, values[:4])
                (entry_id,) = cursor.fetchone()
                debit, debit_minor, credit, credit_minor = values[4:8]
                cursor.execute(
                    _BASELINE_POSTINGS,
                    [entry_id, debit, debit_minor, entry_id, credit, credit_minor],
                )
                cursor.execute(_BASELINE_CHAIN_ENTRY, values[8:])
        return perf_counter() - started


def _transfers_raw_one_statement(bench: Bench, number: int, tag: str) -> float:
    """The rows of the last ``number`` transfers again, in one statement each, no checks."""
    from django.db import connection, transaction

    params = [_baseline_params(bench, row, tag) for row in _written(bench.written[-number:])]
    with connection.cursor() as cursor:
        started = perf_counter()
        for values in params:
            with transaction.atomic():
                cursor.execute(_BASELINE_ONE_STATEMENT, values)
        return perf_counter() - started


def _written(keys: list[tuple[str, str]]) -> list[tuple[Any, ...]]:
    """The journal entry, two postings and chain entry of each (journal key, chain key)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT je."key", je.memo, je.posted_at, je.fingerprint,
                      debit.account_id, debit.amount_minor, credit.account_id, credit.amount_minor
               FROM books_journalentry je
               JOIN books_posting debit ON debit.entry_id = je.id AND debit.amount_minor > 0
               JOIN books_posting credit ON credit.entry_id = je.id AND credit.amount_minor < 0
               WHERE je."key" = ANY(%s)""",
            [[journal_key for journal_key, _ in keys]],
        )
        journal = {row[0]: tuple(row) for row in cursor.fetchall()}
        cursor.execute(
            f"SELECT {', '.join(ENTRY_COLUMNS)} FROM ledger_entry"
            " WHERE source = %s AND idempotency_key = ANY(%s)",
            [SOURCE, [chain_key for _, chain_key in keys]],
        )
        chain = {row[5]: tuple(row) for row in cursor.fetchall()}
    return [journal[journal_key] + chain[chain_key] for journal_key, chain_key in keys]


def _baseline_params(bench: Bench, row: tuple[Any, ...], tag: str) -> list[Any]:
    """``row`` with fresh keys, seqs and hashes, so the clones' unique indexes accept it."""
    key, memo, posted_at, fingerprint, debit, debit_minor, credit, credit_minor = row[:8]
    return [
        *(f"{key}#{tag}", memo, posted_at, fingerprint),
        *(debit, debit_minor, credit, credit_minor),
        *_chain_values(bench, row[8:], tag),
    ]


def _chain_values(bench: Bench, entry: Sequence[Any], tag: str) -> list[Any]:
    """A ledger entry's ENTRY_COLUMNS with a fresh seq, hashes and key, for the entry clone."""
    chain_id, _seq, type_, source, ref, idem, request, occurred, recorded, _, _, body = entry
    n = next(bench.baseline_serial)
    prev = hashlib.sha256(f"prev:{n}".encode()).hexdigest()
    hash_ = hashlib.sha256(f"hash:{n}".encode()).hexdigest()
    seq = n + 1  # above 1, so a non-genesis prev_hash satisfies entry_genesis_iff_first
    return [
        *(chain_id, seq, type_, source, ref, f"{idem}#{tag}", request, occurred, recorded),
        *(prev, hash_, bytes(body)),
    ]


# --- 2. advances disbursed --------------------------------------------------------------------


def _disbursements(bench: Bench, number: int, tag: str) -> float:
    """``number`` advances approved below the checker threshold: each one disbursed in its tx."""
    from django.utils import timezone

    from financing.models import Advance
    from financing.services.decisions import advance_approve

    advances = _advances_request(bench, number)
    with _notices_not_sent() as notices:
        started = perf_counter()
        for advance in advances:
            advance_approve(advance=advance, officer=bench.officer, now=timezone.now())
        seconds = perf_counter() - started
    ids = [advance.pk for advance in advances]
    disbursed = Advance.objects.filter(pk__in=ids, status=Advance.Status.DISBURSED).count()
    if disbursed != number or notices.enqueued != number:
        # Approved-but-not-disbursed advances would make this a figure of something else.
        raise RuntimeError(
            f"{tag}: {disbursed} of {number} advances disbursed and {notices.enqueued} notices"
            " enqueued; the figure would not measure disbursements"
        )
    bench.disbursed += ids
    return seconds


def _advances_request(bench: Bench, number: int) -> list[Advance]:
    """``number`` fundable receivables, one per advance request, round-robin over merchants."""
    from django.utils import timezone

    from financing.services.requests import advance_request
    from ledger.services import NewEntry, entries_append

    now = timezone.now()
    merchants = len(bench.merchant_ids)
    plan = [(bench.merchant_ids[i % merchants], next(bench.invoices)) for i in range(number)]
    evidence: dict[int, list[NewEntry]] = {}
    for merchant_id, serial in plan:
        events = receivable_evidence(serial, INVOICE_AMOUNT, now)
        evidence.setdefault(merchant_id, []).extend(NewEntry(merchant_id, e) for e in events)
    for entries in evidence.values():  # as the marketplace sends it: one batch per merchant
        entries_append(source=MARKETPLACE, entries=entries, now=now)
    return [
        advance_request(
            merchant=bench.merchants[merchant_id],
            refs=[f"INV-{serial}"],
            request_key=f"bench-{serial}",
            now=now,
        )
        for merchant_id, serial in plan
    ]


class _NoticeTaskStandIn:
    """Stands in for ``financing.tasks.notice_send``: ``delay`` counts, sends nothing."""

    def __init__(self) -> None:
        self.enqueued = 0

    def delay(self, notice_id: int, *args: Any, **kwargs: Any) -> None:
        self.enqueued += 1


@contextmanager
def _notices_not_sent() -> Iterator[_NoticeTaskStandIn]:
    """No broker for the run: the disbursement finds the stand-in after each commit."""
    import financing.tasks

    task = financing.tasks.notice_send
    stand_in = _NoticeTaskStandIn()
    financing.tasks.notice_send = stand_in  # type: ignore[assignment]
    try:
        yield stand_in
    finally:
        financing.tasks.notice_send = task


@dataclass(frozen=True)
class _RawDisbursement:
    """One disbursement's statements and parameters for the baseline, built before the clock."""

    advance: list[Any]  # the UPDATE's parameters, the clone row's id last
    advance_id: int
    journal_entry: list[Any]
    postings_sql: str
    postings: list[tuple[Any, ...]]  # (account_id, amount_minor, currency); entry_id comes later
    chain_sql: str
    chain: list[Any]
    notice: list[Any]


# The columns disbursement changes on the advance (``save()`` writes them all; these differ).
_DISBURSED_COLUMNS = (
    "status",
    "approved_by_id",
    "approved_at",
    "approval_hash",
    "decision_note",
    "decided_at",
    "disbursed_at",
)
_BASELINE_ADVANCE = (
    f"UPDATE {CLONES['financing_advance']}"
    f" SET {', '.join(f'{column} = %s' for column in _DISBURSED_COLUMNS)} WHERE id = %s"
)
_BASELINE_ASSIGN = (
    f"UPDATE {CLONES['financing_assignment']} SET status = 'assigned'"
    " WHERE advance_id = %s AND status = 'held'"
)
_NOTICE_COLUMNS = (
    "advance_id",
    "debtor_id",
    "channel",
    "marketplace_id",
    "waiting",
    "payload",
    "status",
    "attempts",
    "last_error",
    "created_at",
    "delivered_at",
)
_BASELINE_NOTICE = (
    f"INSERT INTO {CLONES['financing_assignmentnotice']} ({', '.join(_NOTICE_COLUMNS)})"
    f" VALUES ({', '.join(['%s'] * len(_NOTICE_COLUMNS))})"
)


def _disbursements_raw(bench: Bench, number: int, tag: str) -> float:
    """The rows of the last ``number`` disbursements again, by raw SQL with no checks."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        with transaction.atomic():  # setup: the advances as requested, into the clones
            plans = _raw_disbursements(cursor, bench, bench.disbursed[-number:], tag)
        started = perf_counter()
        for plan in plans:
            with transaction.atomic():
                cursor.execute(_BASELINE_ADVANCE, plan.advance)
                cursor.execute(_BASELINE_ASSIGN, [plan.advance_id])
                cursor.execute(_BASELINE_ENTRY, plan.journal_entry)
                (entry_id,) = cursor.fetchone()
                legs = [value for leg in plan.postings for value in (entry_id, *leg)]
                cursor.execute(plan.postings_sql, legs)
                cursor.execute(plan.chain_sql, plan.chain)
                cursor.execute(_BASELINE_NOTICE, plan.notice)
        return perf_counter() - started


def _raw_disbursements(
    cursor: CursorWrapper, bench: Bench, advance_ids: list[int], tag: str
) -> list[_RawDisbursement]:
    """Read what disbursing ``advance_ids`` wrote, and put each advance back as it was requested.

    The copies get fresh refs, keys, fingerprints, seqs and hashes (suffixed or derived from
    ``tag``), so the clones' unique indexes accept them next to earlier runs' copies.
    """
    from django.conf import settings

    from financing.models import assignment_entry_ref

    advances = _dicts(cursor, "SELECT * FROM financing_advance WHERE id = ANY(%s)", [advance_ids])
    refs = {advance["id"]: advance["ref"] for advance in advances}
    assignments: dict[int, list[dict[str, Any]]] = {}
    for row in _dicts(
        cursor,
        "SELECT * FROM financing_assignment WHERE advance_id = ANY(%s) ORDER BY id",
        [advance_ids],
    ):
        assignments.setdefault(row["advance_id"], []).append(row)
    journal = {
        row["key"]: row
        for row in _dicts(
            cursor,
            'SELECT id, "key", memo, posted_at, fingerprint FROM books_journalentry'
            ' WHERE "key" = ANY(%s)',
            [[f"disburse:{ref}" for ref in refs.values()]],
        )
    }
    postings: dict[int, list[tuple[Any, ...]]] = {}
    cursor.execute(
        "SELECT entry_id, account_id, amount_minor, currency FROM books_posting"
        " WHERE entry_id = ANY(%s) ORDER BY id",
        [[row["id"] for row in journal.values()]],
    )
    for entry_id, *posting in cursor.fetchall():
        postings.setdefault(entry_id, []).append(tuple(posting))
    chain_keys = {  # NewEntry's default idempotency key: "<merchant id>:<type>:<ref>"
        advance["id"]: [
            f"{advance['merchant_id']}:advance.disbursed:{advance['ref']}",
            *(
                f"{advance['merchant_id']}:receivable.assigned:"
                + assignment_entry_ref(invoice_ref=a["invoice_ref"], advance_ref=advance["ref"])
                for a in assignments[advance["id"]]
            ),
        ]
        for advance in advances
    }
    cursor.execute(
        f"SELECT {', '.join(ENTRY_COLUMNS)} FROM ledger_entry"
        " WHERE source = %s AND idempotency_key = ANY(%s)",
        [settings.LEDGER_SYSTEM_SOURCE, [key for keys in chain_keys.values() for key in keys]],
    )
    chain = {row[5]: row for row in cursor.fetchall()}
    notices = {
        row["advance_id"]: row
        for row in _dicts(
            cursor,
            f"SELECT {', '.join(_NOTICE_COLUMNS)} FROM financing_assignmentnotice"
            " WHERE advance_id = ANY(%s)",
            [advance_ids],
        )
    }
    by_id = {advance["id"]: advance for advance in advances}
    plans = []
    for advance_id in advance_ids:
        advance = by_id[advance_id]
        clone_id = _requested_copy(cursor, advance, assignments[advance_id], tag)
        entry = journal[f"disburse:{advance['ref']}"]
        entries = [chain[key] for key in chain_keys[advance_id]]
        notice = notices[advance_id]
        plans.append(
            _RawDisbursement(
                advance=[*(advance[column] for column in _DISBURSED_COLUMNS), clone_id],
                advance_id=clone_id,
                journal_entry=[
                    f"{entry['key']}#{tag}",
                    entry["memo"],
                    entry["posted_at"],
                    entry["fingerprint"],
                ],
                postings_sql=_insert_sql(
                    CLONES["books_posting"], POSTING_COLUMNS, len(postings[entry["id"]])
                ),
                postings=postings[entry["id"]],
                chain_sql=_insert_sql(CLONES["ledger_entry"], ENTRY_COLUMNS, len(entries)),
                chain=[v for row in entries for v in _chain_values(bench, row, tag)],
                notice=[clone_id, *(notice[column] for column in _NOTICE_COLUMNS[1:])],
            )
        )
    return plans


def _requested_copy(
    cursor: CursorWrapper, advance: dict[str, Any], assignments: list[dict[str, Any]], tag: str
) -> int:
    """Insert the advance and its assignments into the clones as they were before approval."""
    requested = {column: value for column, value in advance.items() if column != "id"} | {
        "ref": f"{advance['ref']}#{tag}",
        "request_key": f"{advance['request_key']}#{tag}",
        "status": "requested",
        "approved_by_id": None,
        "approved_at": None,
        "approval_hash": "",
        "decision_note": "",
        "decided_at": None,
        "disbursed_at": None,
    }
    cursor.execute(
        _insert_sql(CLONES["financing_advance"], list(requested), 1) + " RETURNING id",
        list(requested.values()),
    )
    (clone_id,) = cursor.fetchone()
    held = [
        {column: value for column, value in row.items() if column != "id"}
        | {
            "advance_id": clone_id,
            "invoice_ref": f"{row['invoice_ref']}#{tag}",
            "fingerprint": hashlib.sha256(f"{row['fingerprint']}#{tag}".encode()).hexdigest(),
            "status": "held",
        }
        for row in assignments
    ]
    cursor.execute(
        _insert_sql(CLONES["financing_assignment"], list(held[0]), len(held)),
        [value for row in held for value in row.values()],
    )
    return clone_id


def _dicts(cursor: CursorWrapper, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    cursor.execute(sql, params)
    names = [column.name for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _insert_sql(table: str, columns: Sequence[str], rows: int) -> str:
    """A multi-row INSERT of ``rows`` rows into ``table``; columns are ours, never input."""
    one = f"({', '.join(['%s'] * len(columns))})"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([one] * rows)}"


# --- 3 and 4. a long history and a short one ----------------------------------------------


def _histories_create(bench: Bench, history: int) -> None:
    """Two merchants (with their own history, no advances) and a fundable invoice each: the
    first with ``history`` events before it, orders and their invoices long past due, appended
    untimed as the marketplace would."""
    from django.utils import timezone

    from ledger.services import NewEntry, entries_append

    now = timezone.now()
    long_id, short_id = merchant_ids = bench.merchant_ids[:2]
    for start in range(0, history // 2, 500):
        sales = range(start, min(start + 500, history // 2))
        events = [event for n in sales for event in _past_sale(n, now)]
        entries_append(source=MARKETPLACE, entries=[NewEntry(long_id, e) for e in events], now=now)
    refs = {}
    for merchant_id in merchant_ids:
        serial = next(bench.invoices)
        events = receivable_evidence(serial, INVOICE_AMOUNT, now)
        entries_append(
            source=MARKETPLACE, entries=[NewEntry(merchant_id, e) for e in events], now=now
        )
        refs[merchant_id] = f"INV-{serial}"
    bench.long_chain = (bench.merchants[long_id], refs[long_id])
    bench.short_chain = (bench.merchants[short_id], refs[short_id])
    print(f"history     {history:,} events on one merchant's chain, untimed {_elapsed()}")


def _past_sale(n: int, now: datetime) -> list[ValidEvent]:
    """An order of history and its invoice, issued 90 days ago and due 60 days ago."""
    from ledger.events import event_parse, format_timestamp

    order, amount = f"HIST-ORD-{n:09d}", "10.00"
    issued = (now - timedelta(days=90)).date()
    invoice = {
        "currency": "EUR",
        "amount": amount,
        "order_ref": order,
        "issue_date": issued.isoformat(),
        "due_date": (issued + timedelta(days=30)).isoformat(),
        "debtor": {"kind": "marketplace", "name": "Bench Marketplace"},
    }
    occurred = format_timestamp(now - timedelta(days=90))
    return [
        event_parse({"type": type_, "ref": ref, "occurred_at": occurred, "data": data})
        for type_, ref, data in (
            ("order.placed", order, {"currency": "EUR", "amount": amount}),
            ("invoice.issued", f"HIST-INV-{n:09d}", invoice),
        )
    ]


def _for_merchant(
    page: Callable[[Merchant, str, date], None], history: str
) -> Callable[..., float]:
    """A figure's run: ``page`` ``number`` times, for the merchant of ``history`` ("long_chain"
    or "short_chain") and its fundable invoice."""

    def run(bench: Bench, number: int, tag: str) -> float:
        from django.utils import timezone

        chosen = getattr(bench, history)
        assert chosen is not None, "_histories_create runs first"
        merchant, ref = chosen
        today = timezone.now().date()
        started = perf_counter()
        for _ in range(number):
            page(merchant, ref, today)
        return perf_counter() - started

    return run


def _recheck(merchant: Merchant, ref: str, today: date) -> None:
    from financing.eligibility import verdicts

    [verdict] = verdicts(merchant, today, [ref])
    if not verdict.eligible:  # a refusal takes another path: this would measure something else
        raise RuntimeError(f"the bench's receivable {ref} is not fundable: {verdict.codes}")


def _dashboard(merchant: Merchant, ref: str, today: date) -> None:
    from portal.dashboard.selectors import dashboard_figures

    [eur] = dashboard_figures(merchant=merchant, today=today)
    if eur.eligible_count != 1:  # the one fundable receivable: else this measures another page
        raise RuntimeError(f"the dashboard finds {eur.eligible_count} fundable receivables, not 1")


def _receivables_page(merchant: Merchant, ref: str, today: date) -> None:
    from django.core.paginator import Paginator

    from portal.receivables.selectors import (
        ReceivableFilter,
        receivables_for_merchant,
        receivables_judged,
    )
    from portal.receivables.views import PAGE_SIZE

    listed = receivables_for_merchant(merchant=merchant, today=today, filters=ReceivableFilter())
    page = Paginator(listed, PAGE_SIZE).get_page(1)
    shown = receivables_judged(merchant=merchant, today=today, listed=list(page.object_list))
    if not shown or page.paginator.count < len(shown):
        raise RuntimeError(f"the list shows {len(shown)} of {page.paginator.count} receivables")


FIGURES: list[Measured] = [
    Measured(
        label="1 journal transfers (journal_post + entry_append, 1 tx each)",
        unit="transfers/s",
        load=lambda sizes: sizes.transfers,
        run=_transfers,
        baselines=(
            Baseline("a: raw SQL, 1 INSERT per table", _transfers_raw),
            Baseline("b: raw SQL, 1 statement", _transfers_raw_one_statement),
        ),
        target_rate=TARGET_TRANSFER_RATE,
        target_ratio=TARGET_RATIO,
    ),
    Measured(
        label="2 advances disbursed (advance_approve below the checker threshold, 1 tx each)",
        unit="advances/s",
        load=lambda sizes: sizes.disbursements,
        run=_disbursements,
        baselines=(Baseline("a: raw SQL, 2 UPDATEs + 1 INSERT per table", _disbursements_raw),),
        target_rate=TARGET_DISBURSEMENT_RATE,
        target_ratio=None,
    ),
    Measured(
        label="3 evidence re-checks of one receivable (verdicts), merchant with a long chain",
        unit="checks/s",
        load=lambda sizes: sizes.rechecks,
        run=_for_merchant(_recheck, "long_chain"),
        baselines=(
            Baseline(
                "a: the same, a chain of the receivable's evidence",
                _for_merchant(_recheck, "short_chain"),
            ),
        ),
        target_rate=None,
        target_ratio=TARGET_LONG_CHAIN_RATIO,
    ),
    Measured(
        label="4 portal dashboard figures (dashboard_figures), merchant with a long history",
        unit="pages/s",
        load=lambda sizes: sizes.rechecks,
        run=_for_merchant(_dashboard, "long_chain"),
        baselines=(
            Baseline(
                "a: the same, a merchant without history", _for_merchant(_dashboard, "short_chain")
            ),
        ),
        target_rate=None,
        target_ratio=TARGET_LONG_CHAIN_RATIO,
    ),
    Measured(
        label="5 portal receivables list, first page, merchant with a long history",
        unit="pages/s",
        load=lambda sizes: sizes.rechecks,
        run=_for_merchant(_receivables_page, "long_chain"),
        baselines=(
            Baseline(
                "a: the same, a merchant without history",
                _for_merchant(_receivables_page, "short_chain"),
            ),
        ),
        target_rate=None,
        target_ratio=None,
    ),
]


def _rows(measured: Measured, figure: Figure, baselines: list[Figure]) -> list[Row]:
    if measured.target_rate is None:
        rows = [figure_row(figure, target="(no target set)")]
    else:
        rows = [
            figure_row(
                figure,
                target=f">= {measured.target_rate:,.0f} {measured.unit}",
                verdict=verdict(figure.median, measured.target_rate),
            )
        ]
    for index, (meta, baseline) in enumerate(zip(measured.baselines, baselines, strict=True)):
        name = meta.name
        ratio = figure.median / baseline.median
        pairs = zip(figure.samples, baseline.samples, strict=True)
        each = " ".join(f"{m / b:.0%}" for m, b in pairs)
        if index == 0 and measured.target_ratio is not None:  # the target's baseline
            target = f">= {measured.target_ratio:.0%} of baseline {name}"
            judged = verdict(ratio, measured.target_ratio)
        elif index == 0:
            target, judged = "(no target set)", ""
        else:
            target, judged = "(for reference)", ""
        rows += [
            figure_row(baseline),
            Row(f"    measured / baseline {name}", f"{ratio:.0%}", each, target, judged),
        ]
    return rows


# --- 6. journal transfers in several processes ------------------------------------------------


def _transfers_processes(sizes: Sizes, repeat: int) -> list[Row]:
    """Transfers between random pairs of PEER_ACCOUNTS accounts (``transfers_bench``, which
    ``make bench-peers`` runs beside django-hordak), in PROCESSES processes against one.

    The one-process run of the very same transfers is the baseline: the ratio is how far the
    books scale over the cores, with every transfer still locking its chain and two accounts.
    """
    from tests.bench.transfers_bench import ledger_create, transfers_run

    ledger = ledger_create(PEER_ACCOUNTS)
    label = f"random pairs of {PEER_ACCOUNTS} accounts, {sizes.process_seconds:g} s each"
    several = Figure(f"6 journal transfers, {PROCESSES} processes ({label})", "transfers/s")
    one = Figure("  baseline: the same transfers, 1 process", "transfers/s")
    for rep in range(1, repeat + 1):
        for figure, procs in ((several, PROCESSES), (one, 1)):
            total, window, failures = transfers_run(
                ledger, procs=procs, seconds=sizes.process_seconds, seed=rep, tag=f"p{procs}r{rep}"
            )
            if failures:
                raise SystemExit("bench: a transfer worker failed:\n" + "\n".join(failures))
            figure.samples.append(total / window)
        print(
            f"repetition {rep}/{repeat}: {several.label} {several.samples[-1]:,.0f} vs"
            f" 1 process {one.samples[-1]:,.0f} transfers/s {_elapsed()}",
            flush=True,
        )
    ratio = several.median / one.median
    each = " ".join(f"{m / b:.0%}" for m, b in zip(several.samples, one.samples, strict=True))
    return [
        figure_row(several, target="(vs hordak: make bench-peers)"),
        figure_row(one),
        Row(f"    {PROCESSES} processes / 1 process", f"{ratio:.0%}", each, "(for reference)"),
    ]


def _verify() -> str | None:
    """Prove what the run wrote: the books balance and the chains are intact."""
    from financing.books.verification import books_verify
    from ledger.verification import ledger_verify

    started = perf_counter()
    books = books_verify()
    print(
        f"\nverify      books: {books.entries:,} entries, {books.postings:,} postings,"
        f" {books.accounts:,} accounts in {perf_counter() - started:.2f} s: "
        + ("intact" if books.intact else f"BROKEN: {books.first_problem}")
    )
    if not books.intact:
        return f"books_verify: {books.first_problem}"
    chains = ledger_verify()
    if not chains.intact:
        return f"ledger_verify: {chains.first_break}"
    return None


if __name__ == "__main__":
    sys.exit(main())
