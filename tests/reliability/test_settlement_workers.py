"""Settlement exactly once, under real Celery workers on PostgreSQL and Redis (issue 9).

kill -9 of a pool process, and of the whole worker, while 1,000 financed receivables settle;
a poison task retried a bounded number of times, then dead-lettered while the others finish;
the same task and the same payout twice. Each guard is shown holding, and a negative control
shows what happens without it.

The victim of a kill is chosen, not hoped for: the test holds a row lock that one payout's
settlement needs right after it has claimed its work, waits until a worker is blocked on it,
and kills that worker's process. Its claim and everything it wrote die with its transaction;
the figures it records (seconds from the kill to the victim settled) print at the end.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from itertools import zip_longest
from typing import Any

import psycopg
import pytest
import redis
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Sum

from financing.books.models import JournalEntry
from financing.models import (
    Advance,
    Assignment,
    DeadLetter,
    Facility,
    LineAllocation,
    SettlementWork,
)
from financing.tasks import settlement_run
from ledger import writer
from ledger.events import format_timestamp
from ledger.models import Entry
from merchants.models import Marketplace
from tests.api.conftest import seller_id, signed_client
from tests.financing.conftest import TODAY, Trade
from tests.financing.settlement_helpers import (
    assignment,
    books_and_chain_sound,
    disbursed,
    payout,
    settle_pending,
)
from tests.reliability.conftest import (
    FACE_MINOR,
    Fleet,
    QueueSender,
    Worker,
    unacked,
    wait_for,
    worker_pid_of_backend,
)

pytestmark = pytest.mark.postgres

# Three sellers settle around the victim, whose one payout of ten lines is the one killed.
KILL_FLEET = [330, 330, 330, 10]
DONE = SettlementWork.Status.DONE
EVENTS = "/api/v1/events"


class RowHolder:
    """A second database session holding a row lock, as a long report or a stuck job might."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.pid = conn.info.backend_pid

    def blocked(self) -> tuple[int, int] | None:
        """(backend pid, client port) of the session waiting for this lock, if any."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid, client_port FROM pg_stat_activity"
                " WHERE %s = ANY(pg_blocking_pids(pid))",
                [self.pid],
            )
            row = cursor.fetchone()
        return (row[0], row[1]) if row else None


def session() -> psycopg.Connection[Any]:
    """Another session on the test database, apart from Django's and the workers'."""
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"],
        port=db["PORT"],
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
    )


@contextmanager
def row_locked(table: str, column: str, value: int) -> Iterator[RowHolder]:
    with session() as conn:
        conn.execute(f"SELECT 1 FROM {table} WHERE {column} = %s FOR UPDATE", [value])
        try:
            yield RowHolder(conn)
        finally:
            conn.rollback()


def claimed_in_flight(work_id: int) -> bool:
    """True while an open transaction holds the work row: claimed, not committed."""
    with session() as conn:
        try:
            conn.execute(
                "SELECT 1 FROM financing_settlementwork WHERE id = %s FOR UPDATE NOWAIT",
                [work_id],
            )
        except psycopg.errors.LockNotAvailable:
            return True
        return False


def status_of(work_id: int) -> str:
    return SettlementWork.objects.values_list("status", flat=True).get(pk=work_id)


def all_done(count: int) -> bool:
    return SettlementWork.objects.filter(status=DONE).count() == count


def posted(fleet: Fleet, queue: QueueSender) -> tuple[list[int], int]:
    """Post every seller's payouts, holding the enqueues back; return the other sellers' work
    in the order to send it, and the victim's (the last seller's one payout)."""
    queue.held = []
    *others, victim = fleet.sellers
    works = [fleet.payouts_post(seller) for seller in others]
    [victim_work] = fleet.payouts_post(victim)
    queue.held, held = None, queue.held
    # Interleaved, so that the sellers settle side by side, as merchants do.
    interleaved = [w for group in zip_longest(*works) for w in group if w is not None]
    assert sorted(held) == sorted([*interleaved, victim_work])
    return interleaved, victim_work


def victim_row(fleet: Fleet) -> int:
    """An assignment the victim's settlement locks just after claiming its work."""
    return Assignment.objects.filter(merchant=fleet.sellers[-1].merchant).order_by("pk")[0].pk


def exactly_once(fleet: Fleet) -> None:
    """Every line applied once, every receivable paid its face once, books and chains sound."""
    works = SettlementWork.objects.all()
    payouts = sum(len(seller.payouts) for seller in fleet.sellers)
    assert works.count() == payouts
    assert works.exclude(status=DONE).count() == 0
    assert LineAllocation.objects.count() == fleet.lines
    assert LineAllocation.objects.values("payout_entry", "line").distinct().count() == fleet.lines
    assignments = Assignment.objects.annotate(
        lines=Count("allocations"), allocated=Sum("allocations__amount_minor")
    )
    assert assignments.count() == fleet.lines
    assert set(assignments.values_list("lines", "allocated", "paid_minor", "status")) == {
        (1, FACE_MINOR, FACE_MINOR, Assignment.Status.SETTLED)
    }
    keys = list(
        JournalEntry.objects.filter(key__startswith="settle:").values_list("key", flat=True)
    )
    assert len(keys) == len(set(keys)) == payouts
    settled = Entry.objects.filter(type="receivable.settled")
    assert settled.count() == settled.values("chain", "external_ref").distinct().count()
    assert settled.count() == fleet.lines
    advances = sum(len(seller.advances) for seller in fleet.sellers)
    assert Advance.objects.filter(status=Advance.Status.REPAID).count() == advances
    assert Entry.objects.filter(type="advance.repaid").count() == advances
    assert set(Facility.objects.values_list("committed_minor", flat=True)) == {0}
    call_command("verify_books")  # raises SystemExit(1) at the first problem
    call_command("verify_ledger")


def figures(record: Any, scenario: str, measured: dict[str, float | int]) -> None:
    """Print the figures, and record them for the run's summary (and its JUnit XML)."""
    for name, value in measured.items():
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        record(f"{scenario}: {name}", shown)
        print(f"{scenario}: {name} = {shown}")


def delivered_again(
    queue: QueueSender, worker: Worker, redis_url: str, work_ids: list[int]
) -> None:
    """Send every task a second time (what a lost acknowledgement does); wait until done."""
    queue.send(*work_ids)
    broker = redis.Redis.from_url(redis_url)
    wait_for(
        "a second delivery of every task",
        lambda: broker.llen(queue.queue) == 0 and not unacked(broker, queue.queue),
        60,
        worker,
    )


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_kill_9_of_a_pool_process_mid_settlement_redelivers_and_applies_once(
    fleet: Any, queue: QueueSender, workers: Any, redis_url: str, record_property: Any
) -> None:
    fleet = fleet(KILL_FLEET)
    others, victim = posted(fleet, queue)
    half = len(others) // 2
    worker = workers(SETTLEMENT_LOCK_TIMEOUT_MS="60000")

    with row_locked("financing_assignment", "id", victim_row(fleet)) as holder:
        queue.send(*others[:half], victim, *others[half:])
        worker.start()
        _, port = wait_for("the victim waiting for its row", holder.blocked, 60, worker)
        assert claimed_in_flight(victim)  # the claim is written, not committed
        pool_process = worker_pid_of_backend(worker, port)
        done_before = SettlementWork.objects.filter(status=DONE).count()
        killed_at, clock = datetime.now().astimezone(), time.monotonic()
        os.kill(pool_process, signal.SIGKILL)
    wait_for("the victim settled", lambda: status_of(victim) == DONE, 60, worker)
    settled = time.monotonic() - clock
    wait_for("every payout settled", lambda: all_done(len(others) + 1), 90, worker)

    assert 0 < done_before < len(others)  # killed while the others were settling
    assert pool_process not in worker.children()  # the pool replaced the process
    # The same message, rejected back to Redis by the worker once it saw its process lost;
    # Redis puts it at the back of the queue: it comes again after the backlog ahead of it.
    [lost] = worker.logged_at("WorkerLostError(")
    [task_id] = queue.task_ids[victim]
    taken, taken_again = worker.received_at(task_id)
    assert taken < killed_at <= lost + timedelta(milliseconds=1)  # the log rounds down
    assert lost < taken_again
    figures(
        record_property,
        "pool kill",
        {
            "payouts queued behind it": len(others) - done_before,
            "seconds to the message back in Redis": (lost - killed_at).total_seconds(),
            "seconds to the task redelivered": (taken_again - killed_at).total_seconds(),
            "seconds to the victim settled": settled,
        },
    )
    delivered_again(queue, worker, redis_url, [*others, victim])
    exactly_once(fleet)


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_kill_9_of_the_whole_worker_then_a_restart_settles_every_line_once(
    fleet: Any, queue: QueueSender, workers: Any, redis_url: str, record_property: Any
) -> None:
    fleet = fleet(KILL_FLEET)
    others, victim = posted(fleet, queue)
    half = len(others) // 2
    first = workers(SETTLEMENT_LOCK_TIMEOUT_MS="60000")

    with row_locked("financing_assignment", "id", victim_row(fleet)) as holder:
        queue.send(*others[:half], victim, *others[half:])
        first.start()
        wait_for("the victim waiting for its row", holder.blocked, 60, first)
        assert claimed_in_flight(victim)
        done_before = SettlementWork.objects.filter(status=DONE).count()
        sent_at = SettlementWork.objects.get(pk=victim).enqueued_at
        killed_at, clock = datetime.now().astimezone(), time.monotonic()
        first.kill()
    # The dead worker's messages stay unacknowledged in Redis for the visibility timeout (an
    # hour by default): what brings them back sooner is the settlement sweep, run by beat beside
    # the restarted worker, as beat runs beside the workers in production.
    second = workers(SETTLEMENT_SWEEP_SECONDS="1", SETTLEMENT_RESEND_AFTER_SECONDS="2")
    second.start(beat=True)
    wait_for(
        "the sweep re-sending the victim",
        lambda: SettlementWork.objects.get(pk=victim).enqueued_at != sent_at,
        60,
        second,
    )
    resent = time.monotonic() - clock
    wait_for("the victim settled", lambda: status_of(victim) == DONE, 90, second)
    settled = time.monotonic() - clock
    wait_for("every payout settled", lambda: all_done(len(others) + 1), 90, second)

    assert 0 < done_before < len(others)
    [ready] = second.logged_at(" ready.")
    figures(
        record_property,
        "worker kill",
        {
            "payouts left at the kill": len(others) + 1 - done_before,
            "seconds to the restarted worker ready": (ready - killed_at).total_seconds(),
            "seconds to the sweep re-sending the victim": resent,
            "seconds to the victim settled": settled,
        },
    )
    exactly_once(fleet)


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_poison_task_is_retried_a_bounded_number_of_times_then_dead_lettered(
    fleet: Any, queue: QueueSender, workers: Any, officer: User, record_property: Any
) -> None:
    fleet = fleet([40, 40, 10])
    others, poison = posted(fleet, queue)
    poisoned = fleet.sellers[-1].merchant
    retries = 3
    worker = workers(
        SETTLEMENT_LOCK_TIMEOUT_MS="200",
        SETTLEMENT_MAX_RETRIES=str(retries),
        SETTLEMENT_RETRY_BACKOFF_MS="200",
        SETTLEMENT_RETRY_BACKOFF_MAX_MS="1000",
    )

    # Its chain stays locked: every attempt at the poisoned merchant's payout times out.
    with row_locked("ledger_chain", "merchant_id", poisoned.pk):
        started = time.monotonic()
        queue.send(poison, *others)
        worker.start()
        dead = wait_for(
            "the dead letter", lambda: DeadLetter.objects.filter(work=poison).first(), 60, worker
        )
        gave_up = time.monotonic() - started
        wait_for("the other merchants' payouts", lambda: all_done(len(others)), 60, worker)

    assert status_of(poison) == SettlementWork.Status.DEAD
    assert dead.attempts == retries + 1
    assert dead.task_name == "financing.tasks.settlement_run"
    assert "lock timeout" in dead.error
    [task_id] = queue.task_ids[poison]  # a retry is the same task, delivered anew
    assert worker.output().count(f"settlement_run[{task_id}] retry: Retry in") == retries
    assert len(worker.received_at(task_id)) == retries + 1
    assert not LineAllocation.objects.filter(merchant=poisoned).exists()
    figures(record_property, "poison", {"seconds to dead-lettered": gave_up})

    # An officer re-runs it once the lock is gone, as dead_letter_rerun will: pending, resent.
    DeadLetter.objects.filter(pk=dead.pk).update(
        rerun_at=datetime.now().astimezone(), rerun_by=officer
    )
    SettlementWork.objects.filter(pk=poison, status=SettlementWork.Status.DEAD).update(
        status=SettlementWork.Status.PENDING
    )
    queue.send(poison)
    wait_for("the re-run", lambda: status_of(poison) == DONE, 30, worker)
    assert DeadLetter.objects.count() == 1
    exactly_once(fleet)


# --- Twice, one effect: the same task, the same payout, and what holds it ---------------------


@pytest.fixture
def partly_paid(trade: Trade, facility: Facility, officer: User, now: datetime) -> tuple[str, int]:
    """A financed invoice and the work of a payout paying 400.00 of its 1,000.00."""
    [ref] = trade.fundable(1)
    disbursed(trade, [ref], officer, now)
    payout(trade, [(ref, "400.00")])
    [work] = SettlementWork.objects.all()
    return ref, work.pk


def run(work_id: int) -> bool:
    """The task as a worker runs it (retries, dead letters and all), in this process."""
    return bool(settlement_run.apply(kwargs={"work_id": work_id}).get())


@pytest.mark.django_db
def test_the_same_task_run_twice_has_one_effect(partly_paid: tuple[str, int]) -> None:
    ref, work = partly_paid

    assert (run(work), run(work)) == (True, False)  # the second finds the work claimed

    assert LineAllocation.objects.count() == 1
    assert assignment(ref).paid_minor == 40_000
    assert JournalEntry.objects.filter(key__startswith="settle:").count() == 1
    assert not DeadLetter.objects.exists()
    books_and_chain_sound()


# Each guard taken away in turn, the work's claim first: the next one down still holds, and
# the task dead-letters the work instead of applying it again. With all three gone (the
# negative control) the line is applied twice.
GUARDS = {
    "lineallocation_once_per_line": "financing_lineallocation",
    "entry_idempotency_key_unique": "ledger_entry",  # the chain's receivable.settled, per line
}


@pytest.mark.parametrize(
    ("dropped", "held_by"),
    [
        ([], "lineallocation_once_per_line"),
        (["lineallocation_once_per_line"], "IdempotencyKeyReused"),
        (list(GUARDS), None),
    ],
    ids=["unique-key-holds", "chain-key-holds", "negative-control"],
)
@pytest.mark.django_db
def test_with_the_claim_bypassed_the_keys_hold_and_without_them_a_line_pays_twice(
    partly_paid: tuple[str, int],
    dropped: list[str],
    held_by: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ref, work = partly_paid
    with connection.cursor() as cursor:  # rolled back with the test's transaction
        # Deferred checks of the set-up's appends fire first: a table with some pending
        # cannot be altered. (Every deferrable constraint here is initially deferred.)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for name in dropped:
            cursor.execute(f"ALTER TABLE {GUARDS[name]} DROP CONSTRAINT {name}")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    if "entry_idempotency_key_unique" in dropped:
        # The chain's key is checked twice: the append's write looks for an entry holding it
        # (and writes nothing if one does), and the unique index stops what races past that
        # look. Without the index, the look goes too, or the chain still holds.
        looks = writer._earlier_sql
        monkeypatch.setattr(
            writer, "_earlier_sql", lambda one: looks(one).replace(" LIMIT 1", " AND false LIMIT 1")
        )
    assert run(work)

    SettlementWork.objects.filter(pk=work).update(status="pending", done_at=None)  # no claim
    applied_again = run(work)

    if held_by is not None:
        assert not applied_again
        assert held_by in DeadLetter.objects.get(work=work).error
        assert LineAllocation.objects.count() == 1
        assert assignment(ref).paid_minor == 40_000
        books_and_chain_sound()
    else:
        assert applied_again
        assert LineAllocation.objects.count() == 2
        assert assignment(ref).paid_minor == 80_000  # the debtor paid 400.00, credited twice
        assert Entry.objects.filter(type="receivable.settled").count() == 2


@pytest.mark.django_db
def test_the_same_payout_posted_twice_through_the_api_settles_once(
    trade: Trade, facility: Facility, officer: User, marketplace: Marketplace, now: datetime
) -> None:
    [ref] = trade.fundable(1)
    disbursed(trade, [ref], officer, now)
    api = signed_client(marketplace)
    event = {
        "type": "payout.settled",
        "merchant": seller_id(trade.merchant),
        "ref": "PO-API-1",
        "occurred_at": format_timestamp(datetime.now().astimezone()),
        "data": {
            "currency": "EUR",
            "amount": "1000.00",
            "settled_on": TODAY.isoformat(),
            "lines": [{"invoice_ref": ref, "amount": "1000.00"}],
        },
    }
    stamp = int(time.time())

    first = api.post(EVENTS, {"events": [event]}, idempotency_key="po-1", timestamp=stamp)
    again = api.post(EVENTS, {"events": [event]}, idempotency_key="po-1", timestamp=stamp - 1)
    # A new request key, the same payout: the chain knows the event by its ref.
    other_key = api.post(
        EVENTS, {"events": [event]}, idempotency_key="po-1-bis", timestamp=stamp - 2
    )
    event["data"]["amount"] = event["data"]["lines"][0]["amount"] = "999.00"
    changed = api.post(EVENTS, {"events": [event]}, idempotency_key="po-1-ter")

    assert (first.status_code, again.status_code) == (201, 201), first.content
    assert again["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert other_key.status_code == 201, other_key.content
    assert other_key.json()["receipts"] == first.json()["receipts"]
    assert changed.status_code in (409, 422), changed.content  # not a second payout
    assert Entry.objects.filter(type="payout.settled").count() == 1
    assert SettlementWork.objects.count() == 1
    assert settle_pending(now) == 1
    assert settle_pending(now) == 0
    assert LineAllocation.objects.count() == 1
    assert (assignment(ref).paid_minor, assignment(ref).status) == (
        FACE_MINOR,
        Assignment.Status.SETTLED,
    )
    books_and_chain_sound()
