"""Many processes posting between the same few accounts at once: exact balances, no deadlock.

Processes, not threads: each has its own interpreter and connection, as web workers do. Every
worker posts transfers in random directions between three hot accounts (so two transfers often
touch the same accounts in opposite leg order) and retries a set of keys the other workers
post too, with the same legs: those must land once each.
"""

from __future__ import annotations

import multiprocessing
import random
import traceback
from collections import Counter
from typing import Any

import pytest
from django.db import OperationalError, connections

from financing.books import services
from financing.books.models import Account, JournalEntry, Posting
from financing.books.services import Leg, account_open, journal_post
from tests.financing.books.conftest import verify_books

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WORKERS = 8
TRANSFERS_EACH = 60  # 50 of its own, and the 10 shared keys
SHARED_KEYS = 10  # posted by every worker, with the same legs
FORK = multiprocessing.get_context("fork")
NOW = None  # set per test before forking; children inherit it


def _shared_legs(n: int, accounts: list[Account]) -> list[Leg]:
    debit, credit = accounts[n % 3], accounts[(n + 1) % 3]
    return [Leg(debit, 1_000 + n), Leg(credit, -(1_000 + n))]


def _worker(worker: int, account_ids: list[int], lock: bool, start: Any, results: Any) -> None:
    if not lock:  # the negative control: no ordered lock, as a careless post would do it
        services._POST = services._POST.replace("ORDER BY id FOR UPDATE", "")
        assert "FOR UPDATE" not in services._POST
    rng = random.Random(worker)
    moved: Counter[int] = Counter()
    deadlocks = 0
    try:
        accounts = list(Account.objects.filter(pk__in=account_ids).order_by("pk"))
        start.wait()
        shared_at = set(rng.sample(range(TRANSFERS_EACH), SHARED_KEYS))
        shared = iter(range(SHARED_KEYS))
        for n in range(TRANSFERS_EACH):
            if n in shared_at:
                key_n = next(shared)
                key, legs = f"shared-{key_n}", _shared_legs(key_n, accounts)
            else:
                debit, credit = rng.sample(accounts, 2)
                amount = rng.randint(1, 10**9)
                key, legs = f"w{worker}-{n}", [Leg(debit, amount), Leg(credit, -amount)]
                if rng.random() < 0.3:  # a three-leg entry now and then
                    third = next(a for a in accounts if a not in (debit, credit))
                    legs = [Leg(debit, amount), Leg(credit, -amount + 7), Leg(third, -7)]
                rng.shuffle(legs)
            try:
                journal_post(key=key, memo=f"worker {worker}", legs=legs, now=NOW)
            except OperationalError as exc:
                if "deadlock" not in str(exc):
                    raise
                deadlocks += 1
                break  # one is all the negative control needs; each costs deadlock_timeout
            if not key.startswith("shared-"):
                for leg in legs:
                    moved[leg.account.pk] += leg.amount_minor
    except Exception:  # report, so the parent fails with the cause instead of a timeout
        results.put(traceback.format_exc())
        raise
    finally:
        connections.close_all()
    results.put((dict(moved), deadlocks))


def _run_workers(account_ids: list[int], *, lock: bool) -> tuple[Counter[int], int]:
    connections.close_all()  # children must open their own connections, not share ours
    start = FORK.Barrier(WORKERS)
    results = FORK.Queue()
    processes = [
        FORK.Process(target=_worker, args=(w, account_ids, lock, start, results))
        for w in range(WORKERS)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=180) for _ in processes]
    crashes = [outcome for outcome in outcomes if isinstance(outcome, str)]
    assert not crashes, crashes[0]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    moved: Counter[int] = Counter()
    for worker_moved, _ in outcomes:
        moved.update(worker_moved)
    return moved, sum(deadlocks for _, deadlocks in outcomes)


@pytest.fixture
def hot_accounts(now) -> list[Account]:
    global NOW
    NOW = now
    return [
        account_open(code=f"hot:{n}:EUR", name=f"Hot account {n}", kind="asset", currency="EUR")
        for n in range(3)
    ]


def test_parallel_postings_keep_balances_exact(hot_accounts, capsys) -> None:
    ids = [a.pk for a in hot_accounts]

    moved, deadlocks = _run_workers(ids, lock=True)

    assert deadlocks == 0
    for n in range(SHARED_KEYS):  # each shared key landed once, whoever won the race
        for leg in _shared_legs(n, hot_accounts):
            moved[leg.account.pk] += leg.amount_minor
    stored = dict(Account.objects.filter(pk__in=ids).values_list("pk", "balance_minor"))
    assert stored == {pk: moved[pk] for pk in ids}  # not one update lost
    assert sum(stored.values()) == 0
    own_transfers = WORKERS * (TRANSFERS_EACH - SHARED_KEYS)
    assert JournalEntry.objects.count() == own_transfers + SHARED_KEYS
    assert JournalEntry.objects.filter(key__startswith="shared-").count() == SHARED_KEYS
    assert Posting.objects.count() >= 2 * JournalEntry.objects.count()
    code, output = verify_books(capsys)
    assert code == 0, output
    assert f"{own_transfers + SHARED_KEYS:,} journal entries" in output


@pytest.mark.slow
def test_without_the_ordered_lock_postings_deadlock(hot_accounts) -> None:
    """The negative control: the ordered lock is what keeps opposite leg orders from deadlocking.

    Committed balances stay exact even then (the increment is atomic, a deadlock rolls back the
    whole entry); what the lock buys is that no posting fails.
    """
    ids = [a.pk for a in hot_accounts]

    moved, deadlocks = _run_workers(ids, lock=False)

    assert deadlocks > 0, "no deadlock happened; the control proves nothing"
    for entry in JournalEntry.objects.filter(key__startswith="shared-"):
        for leg in _shared_legs(int(entry.key.removeprefix("shared-")), hot_accounts):
            moved[leg.account.pk] += leg.amount_minor
    stored = dict(Account.objects.filter(pk__in=ids).values_list("pk", "balance_minor"))
    assert stored == {pk: moved[pk] for pk in ids}
