"""Reliability fixtures: many financed receivables set up fast, and real Celery workers
(prefork, on the test database and the test broker) that a test may kill -9 and restart.

Figures a test records with ``record_property`` (seconds to redelivery, ...) are printed at the
end of the run (tests/conftest.py), so ``make test`` shows them without ``-s``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from django.contrib.auth.models import User
from django.db import connection

import financing.tasks
from financing.models import Advance, Facility, SettlementWork
from financing.services.decisions import advance_approve
from financing.services.requests import MAX_RECEIVABLES_PER_ADVANCE, advance_request
from ledger.events import event_parse, format_timestamp
from ledger.services import NewEntry, entries_append
from merchants.models import Marketplace, Merchant
from tests.conftest import REPO_ROOT
from tests.financing.conftest import (  # noqa: F401  (fixtures used here and by the tests)
    TODAY,
    facility,
    notices_enqueued,
    officer,
    open_facility,
    senior,
    trade,
    trade_for,
    verified_merchant,
)

FACE = "1000.00"
FACE_MINOR = 100_000
# Wide enough for every advance of the fleet, and no second officer for any of them.
ROOMY_TERMS = {"limit_minor": 10**11, "checker_threshold_minor": 10**11}


# --- A fleet of financed receivables -----------------------------------------------------------


def _event(type_: str, ref: str, data: dict[str, Any], now: datetime, days_ago: int) -> Any:
    occurred = format_timestamp(now - timedelta(days=days_ago))
    return event_parse({"type": type_, "ref": ref, "occurred_at": occurred, "data": data})


@dataclass
class Seller:
    """A merchant of the fleet: its financed invoices, and the payouts that will pay them."""

    merchant: Merchant
    refs: list[str]
    advances: list[Advance] = field(default_factory=list)
    payouts: list[list[str]] = field(default_factory=list)


@dataclass
class Fleet:
    """Sellers with disbursed advances; ``payouts_post`` makes their marketplace pay them."""

    source: str
    now: datetime
    sellers: list[Seller]

    @property
    def lines(self) -> int:
        return sum(len(p) for s in self.sellers for p in s.payouts)

    def payouts_post(self, seller: Seller) -> list[int]:
        """Append ``seller``'s payouts (one batch); return the settlement work they created."""
        events = [
            _event(
                "payout.settled",
                f"PO-{n}",
                {
                    "currency": "EUR",
                    "amount": f"{len(refs) * FACE_MINOR // 100}.00",
                    "settled_on": TODAY.isoformat(),
                    "lines": [{"invoice_ref": ref, "amount": FACE} for ref in refs],
                },
                self.now,
                0,
            )
            for n, refs in enumerate(seller.payouts)
        ]
        entries_append(
            source=self.source,
            entries=[NewEntry(seller.merchant.pk, e) for e in events],
            now=self.now,
        )
        works = SettlementWork.objects.filter(merchant=seller.merchant).order_by("pk")
        return list(works.values_list("pk", flat=True))


def _receivables_written(merchant: Merchant, source: str, n: int, now: datetime) -> list[str]:
    """``n`` fundable invoices (order, invoice, delivery), appended in batches.

    No dispatch scan: carriers may report a delivery without one, and it saves an entry each.
    """
    events = []
    for k in range(n):
        order, shipment = f"ORD-{k}", f"SHP-{k}"
        invoice = {
            "currency": "EUR",
            "amount": FACE,
            "order_ref": order,
            "issue_date": (TODAY - timedelta(days=15)).isoformat(),
            "due_date": (TODAY + timedelta(days=45)).isoformat(),
            "debtor": {"kind": "marketplace", "name": "Acme Marketplace"},
        }
        events += [
            _event("order.placed", order, {"currency": "EUR", "amount": FACE}, now, 30),
            _event("invoice.issued", f"INV-{k}", invoice, now, 15),
            _event("shipment.delivered", shipment, {"order_ref": order}, now, 22),
        ]
    for start in range(0, len(events), 1000):
        batch = events[start : start + 1000]
        entries_append(source=source, entries=[NewEntry(merchant.pk, e) for e in batch], now=now)
    return [f"INV-{k}" for k in range(n)]


@pytest.fixture
def fleet(
    make_merchant: Callable[..., Merchant],
    marketplace: Marketplace,
    open_facility: Callable[..., Facility],  # noqa: F811
    officer: User,  # noqa: F811
    notices_enqueued: Any,  # noqa: F811  (notices of assignment recorded, not sent)
    now: datetime,
) -> Callable[..., Fleet]:
    """``fleet([330, 330, 330, 10], lines_per_payout=10)``: one seller per count, each with that
    many invoices financed (advances of at most 100) and paid in full by payouts of
    ``lines_per_payout`` lines, which are not posted yet."""

    def make(counts: list[int], lines_per_payout: int = 10) -> Fleet:
        sellers = []
        for count in counts:
            merchant = make_merchant()
            merchant.kyc_status = Merchant.KycStatus.VERIFIED
            merchant.save(update_fields=["kyc_status"])
            open_facility(merchant, **ROOMY_TERMS)
            seller = Seller(merchant, _receivables_written(merchant, marketplace.code, count, now))
            for start in range(0, count, MAX_RECEIVABLES_PER_ADVANCE):
                refs = seller.refs[start : start + MAX_RECEIVABLES_PER_ADVANCE]
                key = f"rel-{merchant.pk}-{start}"
                advance = advance_request(merchant=merchant, refs=refs, request_key=key, now=now)
                advance = advance_approve(advance=advance, officer=officer, now=now)
                assert advance.status == Advance.Status.DISBURSED
                seller.advances.append(advance)
            seller.payouts = [
                seller.refs[i : i + lines_per_payout] for i in range(0, count, lines_per_payout)
            ]
            sellers.append(seller)
        return Fleet(marketplace.code, now, sellers)

    return make


# --- Settlement work sent to a queue of the test's own --------------------------------------


_LOG_STAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z ")


class QueueSender:
    """Stands in for ``financing.tasks.settlement_run`` in the test process: the product's own
    after-commit enqueue sends the real task, to this test's queue (or holds it back)."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.held: list[int] | None = None
        self.task = financing.tasks.settlement_run
        self.task_ids: dict[int, list[str]] = {}

    def delay(self, *, work_id: int) -> None:
        if self.held is not None:
            self.held.append(work_id)
        else:
            self.send(work_id)

    def send(self, *work_ids: int) -> None:
        for work_id in work_ids:
            sent = self.task.apply_async(kwargs={"work_id": work_id}, queue=self.queue)
            self.task_ids.setdefault(work_id, []).append(sent.id)


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch) -> QueueSender:
    sender = QueueSender(f"settle-{uuid.uuid4().hex[:10]}")
    monkeypatch.setattr(financing.tasks, "settlement_run", sender)
    return sender


# --- Real workers ----------------------------------------------------------------------------


class Worker:
    """A real ``celery worker`` (prefork) on the test database and broker, consuming ``queue``
    only; its output goes to a file, shown when a test fails."""

    def __init__(self, queue: str, broker_url: str, log: Path, env: dict[str, str]) -> None:
        db = connection.settings_dict
        login = f"{db['USER']}:{db['PASSWORD']}" if db["PASSWORD"] else db["USER"]
        self.log = log
        self.environment = (
            os.environ
            | env
            | {
                "DJANGO_SETTINGS_MODULE": "config.settings.test",
                "DATABASE_URL": f"postgres://{login}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
                "CELERY_BROKER_URL": broker_url,
                "CELERY_TASK_DEFAULT_QUEUE": queue,
                "PYTHONUNBUFFERED": "1",  # the log is read while the worker runs
            }
        )
        self.queue = queue
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, concurrency: int = 2, beat: bool = False) -> None:
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=prefork"]
        command += [f"--concurrency={concurrency}", "-Q", self.queue, "--loglevel=INFO"]
        command += ["-n", f"{self.queue}-{uuid.uuid4().hex[:6]}@%h"]
        command += ["--without-heartbeat", "--without-mingle", "--without-gossip"]
        if beat:
            command += ["-B", "-s", str(self.log.with_suffix(".beat"))]
        with self.log.open("ab") as out:
            # Its own session, so the whole worker (parent and pool) is one process group.
            self.process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=self.environment,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def children(self) -> list[int]:
        """The pool processes (and the embedded beat, if any)."""
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return [int(p) for p in path.read_text().split()]

    def kill(self) -> None:
        """kill -9 the whole worker: parent and pool at once, nothing shuts down cleanly."""
        os.killpg(self.pid, signal.SIGKILL)
        assert self.process is not None
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # warm shutdown: tasks in hand finish and are acknowledged
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        with suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)  # a pool process the parent left behind

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def logged_at(self, marker: str) -> list[datetime]:
        """When the worker logged a line holding ``marker``, each time."""
        # Workers log through the project's structlog config: "<ISO time>Z [level] message".
        return [
            datetime.fromisoformat(stamp.group(1) + "+00:00")
            for line in self.output().splitlines()
            if marker in line and (stamp := _LOG_STAMP.match(line))
        ]

    def received_at(self, task_id: str) -> list[datetime]:
        """When the worker took the task from the broker, each time."""
        return self.logged_at(f"settlement_run[{task_id}] received")


@pytest.fixture
def workers(queue: QueueSender, redis_url: str, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """``workers(SETTLEMENT_MAX_RETRIES="2", ...)``: a worker (not started) with that
    environment; all are stopped, and their queue emptied, when the test ends."""
    made: list[Worker] = []

    def make(**env: str) -> Worker:
        worker = Worker(queue.queue, redis_url, tmp_path / f"worker-{len(made)}.log", env)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.stop()
    _queue_forget(queue.queue, redis_url)


def unacked(broker: redis.Redis, queue: str) -> list[bytes]:
    """Tags of the messages of ``queue`` a worker took and has not acknowledged yet."""
    return [
        tag
        for tag, raw in broker.hgetall("unacked").items()
        if json.loads(raw)[2] == queue  # [message, exchange, routing key]
    ]


def _queue_forget(name: str, redis_url: str) -> None:
    """Drop what a killed worker left behind: messages queued, and taken but never
    acknowledged (Redis would hand those back to the queue after the visibility timeout)."""
    broker = redis.Redis.from_url(redis_url)
    broker.delete(name)
    for tag in unacked(broker, name):
        broker.hdel("unacked", tag)
        broker.zrem("unacked_index", tag)


def worker_pid_of_backend(worker: Worker, backend_client_port: int) -> int:
    """The pool process whose database connection has the client port PostgreSQL reports."""
    ports = _tcp_ports_by_inode()
    for child in worker.children():
        for fd in Path(f"/proc/{child}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and ports.get(target[8:-1]) == backend_client_port:
                return child
    raise AssertionError(f"No pool process of {worker.pid} holds port {backend_client_port}")


def _tcp_ports_by_inode() -> dict[str, int]:
    ports = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            ports[fields[9]] = int(fields[1].rsplit(":", 1)[1], 16)
    return ports


def wait_for(what: str, check: Callable[[], Any], timeout: float, worker: Worker) -> Any:
    """Poll ``check`` until it returns something truthy; fail with the worker's output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    pytest.fail(f"{what} did not happen within {timeout:.0f} s\n{worker.output()[-6000:]}")
