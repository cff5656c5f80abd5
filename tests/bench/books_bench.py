"""Books throughput: journal transfers with their chain entry, against raw-SQL baselines.

    .venv/bin/python -m tests.bench.books_bench [--repeat N] [--quick]

Drops and recreates the database named by BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/chainfin_bench_books), migrates it, creates merchants, the
bank's cash account and one advances-receivable account per merchant, then measures in one
process, for every figure in FIGURES, the figure and its baselines:

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

Each figure is the median of the repetitions; measured and baseline runs alternate inside every
repetition so that noise on a shared machine hits all of them. The targets are printed, not
asserted; the exit status is non-zero only when ``books_verify`` or ``ledger_verify`` finds a
problem at the end.

Adding a figure (say "advances disbursed/s"): write a ``run`` and its baselines, each taking the
``Bench``, a number of operations and a tag, and returning the seconds the operations took, and
append a ``Measured`` to FIGURES; the loop, the medians, the ratios and the table come for free.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import count
from time import perf_counter
from typing import TYPE_CHECKING, Any

from tests.bench._setup import (
    Figure,
    Row,
    bench_database_url,
    django_bootstrap,
    figure_row,
    machine_context,
    merchants_create,
    table_print,
    verdict,
)

if TYPE_CHECKING:
    from financing.books.models import Account

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/chainfin_bench_books"
# From the issue: at least 1,000 transfers/s, and at least 40% of the raw insert rate.
TARGET_TRANSFER_RATE = 1_000
TARGET_RATIO = 0.40

SOURCE = "chainfin"
REPAYMENT_MINOR = 1234  # 12.34 EUR, the amount in the event's data
_STARTED = perf_counter()  # reading a clock is the only thing importing this module does

ENTRY_COLUMNS = (
    "chain_id",
    "seq",
    "type",
    "source",
    "external_ref",
    "idempotency_key",
    "request_hash",
    "occurred_at",
    "recorded_at",
    "prev_hash",
    "hash",
    "body",
)
# Baseline clones of the tables a transfer writes, named after the tables they copy.
CLONES = {
    "books_journalentry": "bench_journalentry_baseline",
    "books_posting": "bench_posting_baseline",
    "ledger_entry": "bench_entry_baseline",
}
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
class Sizes:
    merchants: int
    transfers: int  # per repetition and figure
    warm_up: int


FULL = Sizes(merchants=200, transfers=2_000, warm_up=400)
QUICK = Sizes(merchants=20, transfers=300, warm_up=100)


@dataclass
class Bench:
    """What the figures share: merchants, their accounts, and counters that keep keys unique."""

    merchant_ids: list[int]
    cash: Account
    receivables: dict[int, Account]
    refs: count[int] = field(default_factory=lambda: count(1))
    # (journal key, chain idempotency key) of every transfer so far, for the baseline to copy.
    written: list[tuple[str, str]] = field(default_factory=list)
    baseline_serial: count[int] = field(default_factory=lambda: count(1))


@dataclass(frozen=True)
class Baseline:
    label: str
    run: Callable[[Bench, int, str], float]


@dataclass(frozen=True)
class Measured:
    """One figure: ``run`` and each baseline do ``n`` operations and return the seconds.

    The target ratio is against the first baseline; the others are shown for reference.
    """

    label: str
    unit: str
    run: Callable[[Bench, int, str], float]
    baselines: tuple[Baseline, ...]
    target_rate: float
    target_ratio: float


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
    for measured in FIGURES:
        measured.run(bench, sizes.warm_up, "warm")
        for baseline in measured.baselines:
            baseline.run(bench, sizes.warm_up, f"warm-{baseline.label}")
    print(
        f"\nsizes       per repetition and figure {sizes.transfers:,} operations, round-robin over"
        f" {sizes.merchants} merchants, one transaction each; {args.repeat} repetitions,"
        " measured and baselines alternating"
    )

    rows: list[Row] = []
    for measured in FIGURES:
        figure = Figure(measured.label, measured.unit)
        baselines = [Figure(f"  baseline {b.label}", measured.unit) for b in measured.baselines]
        for rep in range(1, args.repeat + 1):
            figure.samples.append(sizes.transfers / measured.run(bench, sizes.transfers, f"r{rep}"))
            for baseline, samples in zip(measured.baselines, baselines, strict=True):
                seconds = baseline.run(bench, sizes.transfers, f"r{rep}-{baseline.label}")
                samples.samples.append(sizes.transfers / seconds)
            against = ", ".join(f"{b.samples[-1]:,.0f}" for b in baselines)
            print(
                f"repetition {rep}/{args.repeat}: {measured.label} {figure.samples[-1]:,.0f}"
                f" vs baselines {against} {measured.unit} {_elapsed()}",
                flush=True,
            )
        rows += _rows(measured, figure, baselines)

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

    merchant_ids = merchants_create(merchants)
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
    return Bench(merchant_ids, cash, receivables)


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
    from ledger.events import system_event
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
        event = system_event(
            "advance.repaid",
            ref,
            now,
            {"advance_ref": f"adv_{ref}", "currency": "EUR", "amount": "12.34"},
        )
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
    chain_id, _seq, type_, source, ref, idem, request, occurred, recorded, _, _, body = row[8:]
    n = next(bench.baseline_serial)
    prev = hashlib.sha256(f"prev:{n}".encode()).hexdigest()
    hash_ = hashlib.sha256(f"hash:{n}".encode()).hexdigest()
    seq = n + 1  # above 1, so a non-genesis prev_hash satisfies entry_genesis_iff_first
    return [
        *(f"{key}#{tag}", memo, posted_at, fingerprint),
        *(debit, debit_minor, credit, credit_minor),
        *(chain_id, seq, type_, source, ref, f"{idem}#{tag}", request, occurred, recorded),
        *(prev, hash_, bytes(body)),
    ]


FIGURES: list[Measured] = [
    Measured(
        label="1 journal transfers (journal_post + entry_append, 1 tx each)",
        unit="transfers/s",
        run=_transfers,
        baselines=(
            Baseline("a: raw SQL, 1 INSERT per table", _transfers_raw),
            Baseline("b: raw SQL, 1 statement", _transfers_raw_one_statement),
        ),
        target_rate=TARGET_TRANSFER_RATE,
        target_ratio=TARGET_RATIO,
    ),
]


def _rows(measured: Measured, figure: Figure, baselines: list[Figure]) -> list[Row]:
    rows = [
        figure_row(
            figure,
            target=f">= {measured.target_rate:,.0f} {measured.unit}",
            verdict=verdict(figure.median, measured.target_rate),
        )
    ]
    for index, (meta, baseline) in enumerate(zip(measured.baselines, baselines, strict=True)):
        name = meta.label.split(":")[0]
        ratio = figure.median / baseline.median
        pairs = zip(figure.samples, baseline.samples, strict=True)
        each = " ".join(f"{m / b:.0%}" for m, b in pairs)
        if index == 0:  # the target's baseline
            target = f">= {measured.target_ratio:.0%} of baseline {name}"
            judged = verdict(ratio, measured.target_ratio)
        else:
            target, judged = "(for reference)", ""
        rows += [
            figure_row(baseline),
            Row(f"    measured / baseline {name}", f"{ratio:.0%}", each, target, judged),
        ]
    return rows


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
