"""Journal transfers in P processes for D seconds: Chainfin's side of the django-hordak comparison.

    .venv/bin/python -m tests.bench.transfers_bench [--procs P] [--seconds D] [--accounts N]
                                                     [--preload N] [--seed S]

Built to be run beside ``../shared/peers/hordak`` (``make bench-peers`` runs both), so it
measures the way that harness does: a ledger of N (default 50) EUR asset accounts of the bank,
and N merchants; P worker processes (default 4), each with its own connection, start together
and repeatedly pick two distinct accounts at random and move an amount drawn from 0.01 to
1000.00 EUR between them until D seconds (default 15) have passed. Account i is paired with
merchant i: a transfer debiting it is merchant i's, as every Chainfin journal entry is one
merchant's (financing/books/models.py), so it moves merchant i's shards of the two accounts.
The figure is the transfers committed by all workers divided by the window from the first start
to the last finish; setup is not counted. Before the run, ``--preload`` (default 20,000)
transfers give the books and the chains history, then the tables are VACUUM ANALYZEd, as the
harness does.

A Chainfin transfer is more than hordak's: in one transaction, the ``advance.repaid`` system
event is appended to the debited account's merchant's chain (the chain lock first, as
financing/books/locks.py orders them), then ``journal_post`` writes the balanced two-posting
entry of that merchant under an idempotency key and moves both balances (its shards of them).
Afterwards ``books_verify`` and ``ledger_verify`` must find everything intact and the books must
hold exactly the preloaded and counted entries. The last line printed is the figure:

    chainfin_transfers_per_s=<number> procs=<P> seconds=<D> total=<N>

Drops and recreates the database named by BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/chainfin_bench_transfers).
"""

from __future__ import annotations

import argparse
import multiprocessing
import queue
import random
import sys
import traceback
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from time import monotonic
from typing import TYPE_CHECKING, Any

from tests.bench._setup import (
    bench_database_url,
    django_bootstrap,
    merchants_create,
    repayment_event,
)

if TYPE_CHECKING:
    from multiprocessing import Queue
    from multiprocessing.synchronize import Barrier

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/chainfin_bench_transfers"
SOURCE = "chainfin"
MIN_CENTS, MAX_CENTS = 1, 100_000  # 0.01 .. 1000.00 EUR, as the hordak harness draws them
PRELOAD_BATCH = 500
SETUP_TIMEOUT_S = 120.0
FORK = multiprocessing.get_context("fork")


@dataclass(frozen=True)
class Ledger:
    """The accounts transfers move money between, each with the merchant whose transfer debits
    it: (account id, merchant id) pairs."""

    accounts: list[tuple[int, int]]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--preload", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.procs < 1 or args.seconds <= 0 or args.accounts < 2 or args.preload < 0:
        parser.error("--procs >= 1, --seconds > 0, --accounts >= 2 and --preload >= 0")
    django_bootstrap(bench_database_url(DEFAULT_DATABASE_URL))
    import django

    print(f"peer=chainfin django={django.get_version()} accounts={args.accounts} currency=EUR")
    ledger = ledger_create(args.accounts)
    preloaded = preload(ledger, args.preload, args.seed)
    print(f"preloaded_transfers={preloaded}", flush=True)
    total, window, failures = transfers_run(
        ledger, procs=args.procs, seconds=args.seconds, seed=args.seed
    )
    problem = ledger_check(expected=preloaded + total)
    print(f"check: {problem or 'books and chains intact, counts match'}")
    rate = total / window if window > 0 else 0.0
    print(
        f"chainfin_transfers_per_s={rate:.1f} procs={args.procs} seconds={args.seconds:g}"
        f" total={total}"
    )
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures or problem else 0


def ledger_create(accounts: int) -> Ledger:
    """``accounts`` EUR asset accounts of the bank, each paired with a new merchant."""
    from financing.books.services import account_open

    merchant_ids = merchants_create(accounts, code="transfers")
    return Ledger(
        [
            (
                account_open(
                    code=f"bench_transfers:{n}:EUR",
                    name="Transfer bench account",
                    kind="asset",
                    currency="EUR",
                ).pk,
                merchant_id,
            )
            for n, merchant_id in enumerate(merchant_ids)
        ]
    )


def preload(ledger: Ledger, count: int, seed: int) -> int:
    """Write ``count`` transfers in bulk (entries, postings, shards, chain entries), untimed.

    The journal rows and the merchants' shards of the accounts go in by ``bulk_create``, as
    hordak's harness bulk-creates its preload; the chain entries go through ``entries_append``
    in batches, the only way onto a chain.
    """
    from django.db import connection, transaction
    from django.utils import timezone

    from financing.books.models import AccountShard, JournalEntry, Posting
    from ledger.services import NewEntry, entries_append

    rng = random.Random(seed)
    now = timezone.now()
    moved: dict[tuple[int, int], int] = defaultdict(int)  # (account, merchant) -> its shard
    for start in range(0, count, PRELOAD_BATCH):
        size = min(PRELOAD_BATCH, count - start)
        plan = [_pick(rng, ledger, f"pre_{start + n:09d}") for n in range(size)]
        with transaction.atomic():
            entries = JournalEntry.objects.bulk_create(
                # No fingerprint: it only tells a repeated key's legs apart, and none repeats.
                JournalEntry(
                    key=key,
                    merchant_id=merchant_id,
                    memo="bench preload",
                    posted_at=now,
                    fingerprint="0" * 64,
                )
                for _, _, merchant_id, _, key, _ in plan
            )
            postings = []
            for entry, (debit, credit, merchant_id, minor, _, _) in zip(entries, plan, strict=True):
                postings += [
                    Posting(
                        entry=entry,
                        merchant_id=merchant_id,
                        account_id=account_id,
                        amount_minor=amount,
                        currency="EUR",
                    )
                    for account_id, amount in ((debit, minor), (credit, -minor))
                ]
                moved[debit, merchant_id] += minor
                moved[credit, merchant_id] -= minor
            Posting.objects.bulk_create(postings)
            by_merchant: dict[int, list[NewEntry]] = {}
            for _, _, merchant_id, _, _, event in plan:
                by_merchant.setdefault(merchant_id, []).append(
                    NewEntry(merchant_id=merchant_id, event=event)
                )
            for batch in by_merchant.values():
                entries_append(source=SOURCE, entries=batch, now=now)
    AccountShard.objects.bulk_create(
        AccountShard(account_id=account_id, merchant_id=merchant_id, balance_minor=balance)
        for (account_id, merchant_id), balance in sorted(moved.items())
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "VACUUM ANALYZE books_account, books_accountshard, books_journalentry, books_posting"
        )
        cursor.execute("VACUUM ANALYZE ledger_chain, ledger_entry")
    return count


def _pick(rng: random.Random, ledger: Ledger, ref: str) -> tuple[int, int, int, int, str, Any]:
    """(debit account, credit account, debited merchant, minor units, journal key, event)."""
    from django.utils import timezone

    (debit, merchant_id), (credit, _) = rng.sample(ledger.accounts, 2)
    minor = rng.randint(MIN_CENTS, MAX_CENTS)
    event = repayment_event(ref, timezone.now(), f"{minor // 100}.{minor % 100:02d}")
    return debit, credit, merchant_id, minor, f"advance.repaid:{ref}", event


def transfer(ledger: Ledger, rng: random.Random, ref: str) -> None:
    """One transfer, one transaction: the chain entry (its lock first), then the journal."""
    from django.db import transaction
    from django.utils import timezone

    from financing.books.services import Leg, journal_post
    from ledger.services import entry_append

    debit, credit, merchant_id, minor, key, event = _pick(rng, ledger, ref)
    legs = [
        Leg(_account(debit), minor),
        Leg(_account(credit), -minor),
    ]
    now = timezone.now()
    with transaction.atomic():
        entry_append(source=SOURCE, merchant_id=merchant_id, event=event, now=now)
        journal_post(key=key, memo="transfer", legs=legs, now=now, merchant_id=merchant_id)


_ACCOUNTS: dict[int, Any] = {}


def _account(account_id: int) -> Any:
    """Accounts are read once per process: a caller holds them as hordak's workers do."""
    from financing.books.models import Account

    if account_id not in _ACCOUNTS:
        _ACCOUNTS[account_id] = Account.objects.get(pk=account_id)
    return _ACCOUNTS[account_id]


def transfers_run(
    ledger: Ledger, *, procs: int, seconds: float, seed: int, tag: str = "run"
) -> tuple[int, float, list[str]]:
    """Run ``procs`` forked workers for ``seconds``; return (transfers, window, failures).

    ``tag`` starts every transfer's ref (so its keys): it must differ between runs on one
    database.
    """
    from django.db import connections

    connections.close_all()  # a forked child must not share the parent's socket
    barrier = FORK.Barrier(procs + 1)
    results: Queue[dict[str, Any]] = FORK.Queue()
    processes = [
        FORK.Process(target=_worker, args=(index, ledger, seconds, seed, tag, barrier, results))
        for index in range(procs)
    ]
    for process in processes:
        process.start()
    barrier.wait(timeout=SETUP_TIMEOUT_S)
    reports: list[dict[str, Any]] = []
    while len(reports) < procs:
        try:
            reports.append(results.get(timeout=5))
        except queue.Empty:
            if not any(process.is_alive() for process in processes) and results.empty():
                break
    for process in processes:
        process.join()
    failures = [str(r["error"]) for r in reports if r["error"]]
    if len(reports) < procs:
        failures.append(f"only {len(reports)} of {procs} workers reported")
    for report in sorted(reports, key=lambda r: r["index"]):
        print(
            f"worker {report['index']}: transfers={report['transfers']}"
            f" elapsed_s={report['end'] - report['start']:.2f}"
        )
    total = sum(r["transfers"] for r in reports)
    window = max((r["end"] for r in reports), default=0.0) - min(
        (r["start"] for r in reports), default=0.0
    )
    return total, window, failures


def _worker(
    index: int,
    ledger: Ledger,
    seconds: float,
    seed: int,
    tag: str,
    barrier: Barrier,
    results: Queue[dict[str, Any]],
) -> None:
    from django.db import connections

    transfers, start, error = 0, monotonic(), ""
    try:
        rng = random.Random(seed * 1000 + index)
        for account_id, _ in ledger.accounts:
            _account(account_id)
        barrier.wait(timeout=SETUP_TIMEOUT_S)
        start = monotonic()
        deadline = start + seconds
        while monotonic() < deadline:
            transfer(ledger, rng, f"{tag}_w{index}_{transfers:09d}")
            transfers += 1
    except BaseException:  # report, so the parent fails with the cause instead of hanging
        error = traceback.format_exc()
        barrier.abort()
    finally:
        connections.close_all()
        results.put(
            {
                "index": index,
                "transfers": transfers,
                "start": start,
                "end": monotonic(),
                "error": error,
            }
        )


def ledger_check(*, expected: int) -> str | None:
    """What is wrong with the books or the chains after a run, or None."""
    from financing.books.models import JournalEntry
    from financing.books.verification import books_verify
    from ledger.verification import ledger_verify

    books = books_verify()
    if not books.intact:
        return f"books_verify: {books.first_problem}"
    chains = ledger_verify()
    if not chains.intact:
        return f"ledger_verify: {chains.first_break}"
    entries = JournalEntry.objects.count()
    if entries != expected:
        return f"the books hold {entries} journal entries, {expected} expected"
    return None


if __name__ == "__main__":
    sys.exit(main())
