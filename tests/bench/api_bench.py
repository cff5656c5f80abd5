"""API throughput: signed event batches and single events over HTTP, against the service layer.

    .venv/bin/python -m tests.bench.api_bench [--repeat N] [--quick] [--shared-merchants]

Drops and recreates the database named by BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/chainfin_bench_api), migrates it, creates a marketplace, an
API key and its merchants, and starts gunicorn on 127.0.0.1 with the production settings (Redis
at BENCH_CACHE_URL, default redis://127.0.0.1:6379/13, for replay marks and rate counters; the
rate limit raised out of the way). It tries the sync and the gthread worker class briefly, keeps
the faster (by batch rate x single-request rate), and then measures, every repetition in this
order:

1. batch ingest over HTTP: CLIENTS client threads, each posting signed 1,000-event
   ``POST /api/v1/events`` bodies (built and serialised before the clock starts, signed right
   before sending) that mix the merchants that client owns (with --shared-merchants: all
   merchants, so concurrent batches queue on each other's chain locks);
2. the same number of events through the service layer alone: ``event_parse`` and
   ``entries_append`` in CLIENTS long-lived forked processes, one per client, on the same
   batches split the same way: the HTTP path minus HTTP, signature, rate limit, idempotency
   record, JSON and merchant lookup. Processes, not threads: threads would share one CPU
   through the GIL while gunicorn's workers do not, and the ratio would flatter HTTP;
3. single-event signed POSTs from CLIENTS client threads over all merchants: requests/s and
   latency percentiles.

Each figure is the median of the repetitions. CPU seconds of the gunicorn workers, of the bench
database's PostgreSQL backends and of the clients are read from /proc around every timed run,
to show where the time goes. The targets are printed, not asserted; the exit status is non-zero
when any request is not answered 201 with one receipt per event, or the ledger does not hold
exactly the events sent.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import hmac
import http.client
import json
import multiprocessing
import os
import queue
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

from ledger.log.notes import Signer
from tests.bench._setup import (
    BenchRefused,
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
from tests.bench.ledger_bench import EVENT_MIX, EventMaker

if TYPE_CHECKING:
    from multiprocessing import Queue
    from multiprocessing.synchronize import Barrier

# From the issue: batch ingest at least 10,000 events/s; single events p99 under 50 ms at 4 clients.
TARGET_BATCH_RATE = 10_000
TARGET_SINGLE_P99_MS = 50.0

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/chainfin_bench_api"
DEFAULT_CACHE_URL = "redis://127.0.0.1:6379/13"
ROOT = Path(__file__).resolve().parents[2]
EVENTS_PATH = "/api/v1/events"
CLIENTS = 4
WORKER_CLASSES = ("sync", "gthread")
GTHREAD_THREADS = 2
MARKETPLACE = "bench-api"
FORK = multiprocessing.get_context("fork")
_TICKS = os.sysconf("SC_CLK_TCK")
_STARTED = perf_counter()  # reading a clock is the only thing importing this module does


def _elapsed() -> str:
    return f"(t+{perf_counter() - _STARTED:.0f} s)"


@dataclass(frozen=True)
class Sizes:
    merchants: int
    batch_size: int  # events per request and per entries_append call
    batches: int  # batches per repetition, over all clients
    singles: int  # single-event requests per repetition, over all clients
    trial_batches: int  # per worker class, to choose one
    trial_singles: int
    warm_batch_size: int  # warm-up batches are small: enough to run every statement 5+ times


FULL = Sizes(
    merchants=50,
    batch_size=1_000,
    batches=20,
    singles=1_000,
    trial_batches=8,
    trial_singles=400,
    warm_batch_size=50,
)
QUICK = Sizes(
    merchants=50,
    batch_size=1_000,
    batches=8,
    singles=400,
    trial_batches=4,
    trial_singles=200,
    warm_batch_size=50,
)


@dataclass(frozen=True)
class Tenant:
    """The marketplace the clients act for: its key, its secret and its merchants."""

    source: str
    api_key: str
    signing_secret: str
    merchant_ids: dict[str, int]  # by seller id
    client_sellers: list[list[str]]  # the merchants each client's batches mix

    @property
    def sellers(self) -> list[str]:
        return list(self.merchant_ids)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per figure (>= 3)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--shared-merchants",
        action="store_true",
        help="every client's batches mix all merchants, so concurrent batches wait for each"
        " other's chain locks (default: each client has its own merchants)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 3:
        parser.error("--repeat must be at least 3: a median of fewer says little")
    sizes = QUICK if args.quick else FULL
    # SIGTERM would end the process without running ``finally``, leaving gunicorn behind.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)

    url = bench_database_url(DEFAULT_DATABASE_URL)
    cache_url = os.environ.get("BENCH_CACHE_URL") or DEFAULT_CACHE_URL
    _redis_check(cache_url)
    # Signing secrets are sealed with the sealing keys: the server must share them.
    os.environ["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
    os.environ["CHAINFIN_SEALING_KEYS"] = Fernet.generate_key().decode()
    django_bootstrap(url)
    print("Chainfin API benchmark" + (" (--quick: small sizes, figures are rough)" * args.quick))
    for line in machine_context():
        print(line)

    tenant = _tenant_create(sizes.merchants, shared=args.shared_merchants)
    maker = EventMaker()
    outcome = Outcome()
    pool = ServicePool(tenant)
    try:
        server_options = _server_options(url, cache_url)
        worker_class = _worker_class_choose(server_options, tenant, maker, sizes, outcome)
        keep_log = outcome.failed
        with gunicorn_serving(server_options, worker_class, keep_log) as server:
            print(f"server      {server.description}, serving on port {server.port} {_elapsed()}")
            _describe(sizes, args.repeat, shared=args.shared_merchants)
            _http_warm_up(server, tenant, maker, sizes, outcome)
            warm_plans = _service_plans(maker, tenant, 6 * CLIENTS, sizes.warm_batch_size)
            outcome.sent += pool.run(warm_plans).events
            figures = _measure(server, pool, tenant, maker, sizes, args.repeat, outcome)
    finally:
        pool.close()

    print()
    table_print(_report_rows(figures))
    print()
    for line in _cpu_lines(figures):
        print(line)
    outcome.check()
    load = "/".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"\ntotal run time {perf_counter() - _STARTED:.1f} s; load average at the end {load}")
    if outcome.failures:
        print(f"\nFAILED: {outcome.failure_summary()}", file=sys.stderr)
        return 1
    return 0


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _redis_check(cache_url: str) -> None:
    parts = urlsplit(cache_url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 5).close()
    except OSError as exc:
        raise BenchRefused(
            f"cannot reach Redis at {cache_url} ({exc}); production settings need it."
        ) from None


def _tenant_create(merchants: int, *, shared: bool) -> Tenant:
    from django.utils import timezone

    from merchants.models import Marketplace, MarketplaceMerchant
    from merchants.services import api_key_issue

    merchants_create(merchants, code=MARKETPLACE)
    marketplace = Marketplace.objects.get(code=MARKETPLACE)
    issued = api_key_issue(marketplace=marketplace, now=timezone.now(), label="bench")
    links = MarketplaceMerchant.objects.filter(marketplace=marketplace).order_by("merchant_id")
    sellers = [link.seller_id for link in links]
    return Tenant(
        source=marketplace.code,
        api_key=issued.key,
        signing_secret=issued.signing_secret,
        merchant_ids={link.seller_id: link.merchant_id for link in links},
        client_sellers=[sellers if shared else sellers[k::CLIENTS] for k in range(CLIENTS)],
    )


def _describe(sizes: Sizes, repeat: int, *, shared: bool) -> None:
    print(
        f"sizes       per repetition {sizes.batches} batches of {sizes.batch_size:,} events"
        f" ({sizes.batches * sizes.batch_size:,} events) over HTTP and as many through the"
        f" service layer, then {sizes.singles:,} single-event requests; {repeat} repetitions"
    )
    print(
        f"clients     {CLIENTS} threads in this process, one keep-alive http.client connection"
        " each (reopened when a sync worker closes it); every body built and serialised before"
        " the clock starts, signed right before it is sent"
    )
    if shared:
        dealt = (
            f"each batch mixes all {sizes.merchants} merchants, so concurrent batches wait for"
            " each other's chain locks (--shared-merchants)"
        )
    else:
        dealt = (
            f"each batch mixes the merchants of client k (every {CLIENTS}th of"
            f" {sizes.merchants}), so concurrent batches never wait for each other's chain locks"
        )
    print(
        f"batches     client k posts its batches in turn; {dealt}; single events go round-robin"
        " over all merchants"
    )
    print(
        f"service     {CLIENTS} forked processes, each with its own database connection, run"
        " event_parse and entries_append on the same batches split the same way"
    )
    mix = ", ".join(f"{event_type} {share * 10}%" for event_type, share in EVENT_MIX)
    print(f"event mix   {mix}")


# --- events and bodies ------------------------------------------------------------------------


def _events(serials: range, sellers: Sequence[str]) -> list[dict[str, Any]]:
    """Raw API events with refs never used before, dealt round-robin over ``sellers``."""
    # EventMaker._raw is the ledger benchmark's generator; sharing it keeps both benches' events
    # alike (types, sizes) without a second copy.
    return [{"merchant": sellers[n % len(sellers)], **EventMaker._raw(n)} for n in serials]


def _body(events: list[dict[str, Any]]) -> bytes:
    return json.dumps({"events": events}, separators=(",", ":")).encode()


def _batch_serials(maker: EventMaker, batches: int, size: int) -> list[list[range]]:
    """``batches`` fresh serial ranges of ``size``, dealt to the clients in turn."""
    plans: list[list[range]] = [[] for _ in range(CLIENTS)]
    for index in range(batches):
        serials = maker.reserve(size)
        plans[index % CLIENTS].append(serials)
    return plans


@dataclass(frozen=True)
class Request:
    body: bytes
    events: int


def _http_batch_plans(
    maker: EventMaker, tenant: Tenant, batches: int, size: int
) -> list[list[Request]]:
    return [
        [Request(_body(_events(serials, tenant.client_sellers[client])), size) for serials in plan]
        for client, plan in enumerate(_batch_serials(maker, batches, size))
    ]


def _service_plans(
    maker: EventMaker, tenant: Tenant, batches: int, size: int
) -> list[list[tuple[range, list[str]]]]:
    return [
        [(serials, tenant.client_sellers[client]) for serials in plan]
        for client, plan in enumerate(_batch_serials(maker, batches, size))
    ]


def _http_single_plans(maker: EventMaker, tenant: Tenant, requests: int) -> list[list[Request]]:
    plans: list[list[Request]] = [[] for _ in range(CLIENTS)]
    sellers = tenant.sellers
    for index, serial in enumerate(maker.reserve(requests)):
        body = _body(_events(range(serial, serial + 1), sellers))
        plans[index % CLIENTS].append(Request(body, 1))
    return plans


# --- the server -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerOptions:
    env: dict[str, str]
    workers: int


@dataclass(frozen=True)
class Server:
    port: int
    pid: int
    description: str

    def worker_pids(self) -> list[int]:
        return _children(self.pid)


def _server_options(database_url: str, cache_url: str) -> ServerOptions:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        # Fresh secrets of the kind production accepts (it refuses the suite's and the demo's);
        # the secret and sealing keys are this process's (main()), so the server opens its seals.
        CHAINFIN_LOG_SIGNING_KEY=Signer.generate("chainfin.bench/log").encoded,
        METRICS_TOKEN=secrets.token_urlsafe(32),
        DATABASE_URL=database_url,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        CACHE_URL=cache_url,
        CELERY_BROKER_URL=cache_url,  # required by the settings; ingest enqueues nothing
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_DEBUG="false",
        API_RATE_LIMIT_PER_MINUTE=str(10**9),
        PYTHONUNBUFFERED="1",
    )
    return ServerOptions(env=env, workers=2 * (usable or 1))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def gunicorn_serving(
    options: ServerOptions, worker_class: str, keep_log: Callable[[], bool]
) -> Iterator[Server]:
    """Run gunicorn on config.wsgi until the block ends, however it ends.

    Its log is deleted afterwards unless the block failed or ``keep_log()`` says otherwise.
    """
    threads = GTHREAD_THREADS if worker_class == "gthread" else 1
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi:application",
        f"--bind=127.0.0.1:{port}",
        f"--workers={options.workers}",
        f"--worker-class={worker_class}",
        f"--threads={threads}",
        "--timeout=120",
        f"--chdir={ROOT}",
        "--no-control-socket",
    ]
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115  (outlives this frame on failure)
        mode="w+b", prefix="api_bench_gunicorn_", suffix=".log", delete=False
    )
    process = subprocess.Popen(command, env=options.env, stdout=log, stderr=subprocess.STDOUT)
    threading_note = f" x {threads} threads" if worker_class == "gthread" else ""
    description = (
        f"gunicorn config.wsgi, config.settings.production, {options.workers} workers"
        f" (2 x usable CPUs), worker class {worker_class}{threading_note}"
    )
    failed = True
    try:
        _wait_until_answering(port, process, Path(log.name))
        yield Server(port=port, pid=process.pid, description=description)
        failed = False
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        if failed or keep_log():
            print(f"gunicorn log kept at {log.name}", file=sys.stderr)
        else:
            Path(log.name).unlink(missing_ok=True)


def _wait_until_answering(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise SystemExit(f"bench: gunicorn exited with {process.returncode}:\n{tail}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            # Unauthenticated: any HTTP answer (401) means a worker has loaded Django.
            connection.request("GET", "/api/v1/merchants/warm-up/chain")
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
        finally:
            connection.close()
    raise SystemExit(f"bench: gunicorn did not answer on port {port} within 60 s; see {log}")


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and int(stat[1]) == pid:
                children.append(int(entry.name))
    return children


# --- CPU accounting ---------------------------------------------------------------------------


def _stat(pid: int) -> list[bytes] | None:
    """Fields of /proc/<pid>/stat after the command name (state, ppid, ...), or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return raw[raw.rindex(b")") + 2 :].split()


def _cpu_seconds(pid: int) -> float | None:
    stat = _stat(pid)
    return None if stat is None else (int(stat[11]) + int(stat[12])) / _TICKS


def _backend_pids() -> list[int]:
    """PostgreSQL backends connected to the bench database, except this process's own."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [pid for (pid,) in cursor.fetchall()]


class CpuMeter:
    """CPU seconds each group of processes spends between ``start()`` and ``stop()``.

    A process that ends in between loses its share (PostgreSQL backends of connections that a
    worker recycles); one that starts in between counts in full.
    """

    def __init__(self, groups: dict[str, Callable[[], Iterable[int]]]) -> None:
        self._groups = groups
        self._before: dict[str, dict[int, float]] = {}

    def _sample(self, name: str, pids: Iterable[int]) -> dict[int, float]:
        sample = {pid: _cpu_seconds(pid) for pid in pids}
        return {pid: seconds for pid, seconds in sample.items() if seconds is not None}

    def start(self) -> None:
        self._before = {name: self._sample(name, pids()) for name, pids in self._groups.items()}

    def stop(self) -> dict[str, float]:
        spent = {}
        for name, pids in self._groups.items():
            before = self._before[name]
            after = self._sample(name, {*pids(), *before})
            spent[name] = sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())
        return spent


# --- HTTP clients -----------------------------------------------------------------------------


class SignedConnection:
    """One client connection that signs every POST just before sending it, as the README shows."""

    def __init__(self, port: int, tenant: Tenant) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self._api_key = tenant.api_key
        self._secret = tenant.signing_secret.encode()

    def open(self) -> None:
        self._connection.connect()

    def close(self) -> None:
        self._connection.close()

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """Status and body of the response; status 0 with the error when there is none."""
        timestamp = str(int(time.time()))
        message = f"{timestamp}.POST.{path}.{hashlib.sha256(body).hexdigest()}".encode()
        signature = "v1=" + hmac.new(self._secret, message, hashlib.sha256).hexdigest()
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Content-Type": "application/json",
            "Chainfin-Timestamp": timestamp,
            "Chainfin-Signature": signature,
            "Idempotency-Key": uuid.uuid4().hex,
        }
        try:
            self._connection.request("POST", path, body, headers)
            response = self._connection.getresponse()
            return response.status, response.read()
        except (http.client.HTTPException, OSError) as exc:
            self._connection.close()
            return 0, f"{type(exc).__name__}: {exc}".encode()


@dataclass
class HttpRun:
    seconds: float
    requests: int
    events: int
    latencies: list[float]
    cpu: dict[str, float]


def _http_run(
    server: Server, tenant: Tenant, plans: list[list[Request]], outcome: Outcome
) -> HttpRun:
    """Post every client's requests from its own thread; wall clock from the first to the last."""
    connections = [SignedConnection(server.port, tenant) for _ in plans]
    for connection in connections:
        connection.open()  # outside the clock, like a client's warm pool
    answers: list[list[tuple[int, bytes]]] = [[] for _ in plans]
    latencies: list[list[float]] = [[] for _ in plans]
    start = threading.Barrier(len(plans) + 1)

    def client(index: int) -> None:
        connection, answered, timings = connections[index], answers[index], latencies[index]
        start.wait()
        for request in plans[index]:
            sent = perf_counter()
            answered.append(connection.post(EVENTS_PATH, request.body))
            timings.append(perf_counter() - sent)

    threads = [threading.Thread(target=client, args=(index,)) for index in range(len(plans))]
    for thread in threads:
        thread.start()
    meter = CpuMeter(
        {
            "gunicorn": server.worker_pids,
            "postgres": _backend_pids,
            "clients": lambda: [os.getpid()],
        }
    )
    meter.start()
    start.wait()
    started = perf_counter()
    for thread in threads:
        thread.join()
    seconds = perf_counter() - started
    cpu = meter.stop()
    for connection in connections:
        connection.close()
    for plan, answered in zip(plans, answers, strict=True):
        for request, (status, body) in zip(plan, answered, strict=True):
            outcome.answer_check(request, status, body)
    return HttpRun(
        seconds=seconds,
        requests=sum(len(plan) for plan in plans),
        events=sum(request.events for plan in plans for request in plan),
        latencies=[latency for timings in latencies for latency in timings],
        cpu=cpu,
    )


def _http_warm_up(
    server: Server, tenant: Tenant, maker: EventMaker, sizes: Sizes, outcome: Outcome
) -> None:
    """Load Django in every worker and let the driver prepare the append statements."""
    plans = _http_batch_plans(maker, tenant, 12 * CLIENTS, sizes.warm_batch_size)
    _http_run(server, tenant, plans, outcome)
    _http_run(server, tenant, _http_single_plans(maker, tenant, 50 * CLIENTS), outcome)


def _worker_class_choose(
    options: ServerOptions, tenant: Tenant, maker: EventMaker, sizes: Sizes, outcome: Outcome
) -> str:
    """Try each worker class briefly; keep the one with the higher batch rate x request rate."""
    scores = {}
    for worker_class in WORKER_CLASSES:
        with gunicorn_serving(options, worker_class, outcome.failed) as server:
            _http_warm_up(server, tenant, maker, sizes, outcome)
            batch_plans = _http_batch_plans(maker, tenant, sizes.trial_batches, sizes.batch_size)
            batches = _http_run(server, tenant, batch_plans, outcome)
            singles = _http_run(
                server, tenant, _http_single_plans(maker, tenant, sizes.trial_singles), outcome
            )
        batch_rate = batches.events / batches.seconds
        single_rate = singles.requests / singles.seconds
        scores[worker_class] = batch_rate * single_rate
        print(
            f"trial       {worker_class:<8} {batch_rate:,.0f} events/s in batches,"
            f" {single_rate:,.0f} single requests/s, p99 {_percentile(singles.latencies, 99):.1f}"
            f" ms {_elapsed()}",
            flush=True,
        )
    chosen = max(scores, key=lambda name: scores[name])
    print(f"            {chosen} kept: higher product of both rates")
    return chosen


# --- the service layer, in forked processes ---------------------------------------------------


@dataclass(frozen=True)
class ServiceReport:
    started: float
    finished: float
    cpu: float
    error: str | None = None


@dataclass
class ServiceRun:
    seconds: float
    events: int
    cpu: dict[str, float]


ServicePlan = list[tuple[range, list[str]]]


class ServicePool:
    """CLIENTS long-lived processes that append batches through the services, on command.

    Long-lived so that their connections have prepared the append statements, as the gunicorn
    workers' persistent connections have.
    """

    def __init__(self, tenant: Tenant) -> None:
        from django.db import connections

        connections.close_all()  # a forked child must not share the parent's socket
        self._barrier = FORK.Barrier(CLIENTS)
        self._results: Queue[ServiceReport] = FORK.Queue()
        self._inboxes: list[Queue[ServicePlan | None]] = [FORK.Queue() for _ in range(CLIENTS)]
        self._processes = [
            FORK.Process(
                target=_service_worker,
                args=(inbox, self._results, self._barrier, tenant.source, tenant.merchant_ids),
                daemon=True,
            )
            for inbox in self._inboxes
        ]
        for process in self._processes:
            process.start()

    def pids(self) -> list[int]:
        return [process.pid for process in self._processes if process.pid is not None]

    def run(self, plans: list[ServicePlan]) -> ServiceRun:
        meter = CpuMeter({"service": self.pids, "postgres": _backend_pids})
        meter.start()
        for inbox, plan in zip(self._inboxes, plans, strict=True):
            inbox.put(plan)
        reports = self._collect()
        cpu = meter.stop()
        errors = [report.error for report in reports if report.error]
        if errors:
            raise SystemExit("bench: a service-layer worker failed:\n" + "\n".join(errors))
        return ServiceRun(
            seconds=max(r.finished for r in reports) - min(r.started for r in reports),
            events=sum(len(serials) for plan in plans for serials, _ in plan),
            cpu={"service": sum(r.cpu for r in reports), "postgres": cpu["postgres"]},
        )

    def _collect(self) -> list[ServiceReport]:
        reports: list[ServiceReport] = []
        while len(reports) < len(self._processes):
            try:
                reports.append(self._results.get(timeout=5))
            except queue.Empty:
                if not all(process.is_alive() for process in self._processes):
                    raise SystemExit("bench: a service-layer worker died") from None
        return reports

    def close(self) -> None:
        for inbox in self._inboxes:
            inbox.put(None)
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join()


def _service_worker(
    inbox: Queue[ServicePlan | None],
    results: Queue[ServiceReport],
    barrier: Barrier,
    source: str,
    merchant_ids: dict[str, int],
) -> None:
    from django.db import connections
    from django.utils import timezone

    from ledger.events import event_parse
    from ledger.services import NewEntry, entries_append

    # As config.wsgi does in a gunicorn worker: what the process inherited stays out of the
    # collector's walks, so the two paths differ by HTTP alone, not by garbage collection.
    gc.freeze()
    try:
        while (plan := inbox.get()) is not None:
            batches = [_events(serials, sellers) for serials, sellers in plan]
            barrier.wait(timeout=120)
            cpu, started = time.process_time(), perf_counter()
            for raw_events in batches:
                entries = [
                    NewEntry(
                        merchant_id=merchant_ids[raw["merchant"]],
                        event=event_parse({k: v for k, v in raw.items() if k != "merchant"}),
                    )
                    for raw in raw_events
                ]
                entries_append(source=source, entries=entries, now=timezone.now())
            # perf_counter is CLOCK_MONOTONIC, one clock for every process on the machine.
            results.put(ServiceReport(started, perf_counter(), time.process_time() - cpu))
    except BaseException:  # report, so the parent fails with the cause instead of waiting
        results.put(ServiceReport(0.0, 0.0, 0.0, traceback.format_exc()))
        raise
    finally:
        connections.close_all()


# --- measuring --------------------------------------------------------------------------------


@dataclass
class Figures:
    http_batch: Figure
    service_batch: Figure
    single_rate: Figure
    single_p50: Figure
    single_p99: Figure
    # Milliseconds per 1,000 events (batches) or per request (singles): CPU by process group,
    # and the wall clock under "wall".
    cpu_http_batch: list[dict[str, float]] = field(default_factory=list)
    cpu_service_batch: list[dict[str, float]] = field(default_factory=list)
    cpu_single: list[dict[str, float]] = field(default_factory=list)
    batch_body_bytes: int = 0
    single_body_bytes: int = 0


def _measure(
    server: Server,
    pool: ServicePool,
    tenant: Tenant,
    maker: EventMaker,
    sizes: Sizes,
    repeat: int,
    outcome: Outcome,
) -> Figures:
    size = sizes.batch_size
    figures = Figures(
        http_batch=Figure(
            f"1 batch ingest over HTTP ({CLIENTS} clients, {size:,}/request)", "ev/s"
        ),
        service_batch=Figure(
            f"2 same batches, service layer ({CLIENTS} processes, {size:,}/call)", "ev/s"
        ),
        single_rate=Figure(f"3 single-event POSTs ({CLIENTS} clients)", "req/s"),
        single_p50=Figure("  latency p50", "ms"),
        single_p99=Figure("  latency p99", "ms"),
    )
    for rep in range(1, repeat + 1):
        plans = _http_batch_plans(maker, tenant, sizes.batches, size)
        figures.batch_body_bytes = max(len(r.body) for plan in plans for r in plan)
        http = _http_run(server, tenant, plans, outcome)
        figures.http_batch.samples.append(http.events / http.seconds)
        figures.cpu_http_batch.append(_per(http.cpu, http.seconds, http.events / 1000))

        service = pool.run(_service_plans(maker, tenant, sizes.batches, size))
        outcome.sent += service.events
        figures.service_batch.samples.append(service.events / service.seconds)
        figures.cpu_service_batch.append(_per(service.cpu, service.seconds, service.events / 1000))

        single_plans = _http_single_plans(maker, tenant, sizes.singles)
        figures.single_body_bytes = max(len(r.body) for plan in single_plans for r in plan)
        singles = _http_run(server, tenant, single_plans, outcome)
        figures.single_rate.samples.append(singles.requests / singles.seconds)
        figures.single_p50.samples.append(_percentile(singles.latencies, 50))
        figures.single_p99.samples.append(_percentile(singles.latencies, 99))
        figures.cpu_single.append(_per(singles.cpu, singles.seconds, singles.requests))
        print(
            f"repetition {rep}/{repeat}: batches {figures.http_batch.samples[-1]:,.0f} ev/s over"
            f" HTTP vs {figures.service_batch.samples[-1]:,.0f} ev/s service layer; single"
            f" {figures.single_rate.samples[-1]:,.0f} req/s, p50"
            f" {figures.single_p50.samples[-1]:.1f} ms, p99 {figures.single_p99.samples[-1]:.1f}"
            f" ms {_elapsed()}",
            flush=True,
        )
    return figures


def _per(cpu: dict[str, float], wall: float, units: float) -> dict[str, float]:
    """CPU milliseconds per unit by process group, and the wall clock's under "wall"."""
    return {name: 1000 * seconds / units for name, seconds in {**cpu, "wall": wall}.items()}


def _percentile(latencies: Sequence[float], percent: int) -> float:
    """The ``percent``th percentile in milliseconds (linear between the closest ranks)."""
    if len(latencies) < 2:
        return 1000 * latencies[0] if latencies else float("nan")
    return 1000 * statistics.quantiles(latencies, n=100, method="inclusive")[percent - 1]


@dataclass
class Outcome:
    """What was sent, what came back wrong, and whether the ledger holds exactly what was sent."""

    sent: int = 0
    failures: list[str] = field(default_factory=list)

    def answer_check(self, request: Request, status: int, body: bytes) -> None:
        if status == 201:
            try:
                receipts = json.loads(body).get("receipts")
            except (ValueError, AttributeError):
                receipts = None
            if isinstance(receipts, list) and len(receipts) == request.events:
                self.sent += request.events
                return
            counted = len(receipts) if isinstance(receipts, list) else "no"
            problem = f"201 with {counted} receipts for {request.events} events: {body[:200]!r}"
        else:
            problem = f"{status or 'no response'}: {body.decode(errors='replace')[:2000]}"
        self.failures.append(problem)
        if len(self.failures) <= 10:
            print(f"NOT 201    {problem}", file=sys.stderr, flush=True)

    def check(self) -> None:
        from ledger.models import Entry

        held = Entry.objects.count()
        print(f"ledger      {held:,} entries after the run; {self.sent:,} events were accepted")
        if held != self.sent:
            self.failures.append(f"the ledger holds {held:,} entries, {self.sent:,} were sent")

    def failed(self) -> bool:
        return bool(self.failures)

    def failure_summary(self) -> str:
        return f"{len(self.failures)} failure(s); the first: {self.failures[0]}"


# --- reporting --------------------------------------------------------------------------------


def _report_rows(figures: Figures) -> list[Row]:
    http, service = figures.http_batch, figures.service_batch
    each = " ".join(f"{h / s:.0%}" for h, s in zip(http.samples, service.samples, strict=True))
    p99 = figures.single_p99.median
    return [
        figure_row(
            http,
            target=f">= {TARGET_BATCH_RATE:,} ev/s",
            verdict=verdict(http.median, TARGET_BATCH_RATE),
        ),
        figure_row(service),
        Row("  HTTP / service layer", f"{http.median / service.median:.0%}", each),
        figure_row(figures.single_rate),
        figure_row(figures.single_p50),
        figure_row(
            figures.single_p99,
            target=f"< {TARGET_SINGLE_P99_MS:.0f} ms",
            verdict="meets target" if p99 < TARGET_SINGLE_P99_MS else "above target",
        ),
    ]


def _cpu_lines(figures: Figures) -> list[str]:
    """Median CPU per unit of work by process group, against the wall clock's capacity."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    lines = [
        f"CPU time by process group, medians; capacity is wall clock x {usable} usable CPUs"
        " (CPU summing near it means the work waited for CPU, not for the database)"
    ]
    for label, samples, unit in (
        ("1 HTTP batches ", figures.cpu_http_batch, "1,000 events"),
        ("2 service layer", figures.cpu_service_batch, "1,000 events"),
        ("3 single POSTs ", figures.cpu_single, "request"),
    ):
        median = {name: statistics.median(s[name] for s in samples) for name in samples[0]}
        wall = median.pop("wall")
        groups = ", ".join(f"{name} {ms:.1f}" for name, ms in median.items())
        lines.append(
            f"  {label}  per {unit}: {groups} ms CPU (sum {sum(median.values()):.1f});"
            f" wall {wall:.1f} ms, capacity {wall * usable:.1f} ms"
        )
    lines.append(
        f"bodies      batch requests up to {figures.batch_body_bytes:,} bytes, single-event"
        f" requests up to {figures.single_body_bytes:,} bytes"
    )
    return lines


if __name__ == "__main__":
    sys.exit(main())
