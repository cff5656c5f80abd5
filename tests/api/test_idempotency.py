"""Idempotency-Key claims die with the request (config/api/idempotency.py).

On PostgreSQL the claim is an advisory lock of the transaction that does the work: a worker
killed in the middle of a request takes it along, and the retry proceeds at once, exactly once.
The crash is real: a gunicorn worker is stopped with SIGKILL while it waits inside the append.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from config.api import idempotency
from config.api.problems import ApiProblem
from config.api.signing import sign
from ledger.models import Entry, IdempotentRequest
from tests.api.conftest import SignedClient, order_event
from tests.conftest import REPO_ROOT

EVENTS = "/api/v1/events"


def _advisory_locks(*, mine: bool = False) -> int:
    """Advisory locks held in this test database (by this connection alone with ``mine``)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()"
            + (" AND l.pid = pg_backend_pid()" if mine else "")
        )
        return int(cursor.fetchone()[0])


def _wait_for(condition: Callable[[], bool], seconds: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"waited {seconds} s for {what}")
        time.sleep(0.02)
    return time.monotonic() - started


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def code(self) -> str | None:
        return json.loads(self.body).get("code") if self.body else None


@dataclass
class Server:
    """gunicorn serving tests.api.holding_wsgi, and the gate its HOLD- orders wait at."""

    port: int
    process: subprocess.Popen[bytes]
    gate: Path

    def post(self, api: SignedClient, body: Any, *, key: str, timestamp: int) -> Answer:
        raw = json.dumps(body).encode()
        stamp = str(timestamp)
        connection_ = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection_.request(
                "POST",
                EVENTS,
                body=raw,
                headers={
                    "Authorization": f"Bearer {api.key}",
                    "Content-Type": "application/json",
                    "Chainfin-Timestamp": stamp,
                    "Chainfin-Signature": sign(api.secret, stamp, "POST", EVENTS, raw),
                    "Idempotency-Key": key,
                },
            )
            response = connection_.getresponse()
            return Answer(response.status, dict(response.getheaders()), response.read())
        finally:
            connection_.close()

    def held(self, *, besides: frozenset[int] = frozenset()) -> int:
        """The pid of a worker waiting at the gate (other than ``besides``), once there is one."""
        found: list[int] = []

        def arrived() -> bool:
            pids = {int(p.name.split(".")[-2]) for p in self.gate.parent.glob("*.held")}
            found[:] = sorted(pids - besides)
            return bool(found)

        _wait_for(arrived, 60, "a worker to reach the gate")
        return found[0]


@contextmanager
def holding_server(tmp_path: Path, *, row_claims: bool = False) -> Iterator[Server]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    db = connection.settings_dict
    gate = tmp_path / "gate"
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "CHAINFIN_TEST_GATE": str(gate),
        "CHAINFIN_TEST_ROW_CLAIMS": "1" if row_claims else "0",
    }
    log = tmp_path / "gunicorn.log"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "tests.api.holding_wsgi:application",
        f"--bind=127.0.0.1:{port}",
        "--workers=2",
        "--timeout=120",
        "--no-control-socket",
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )

    def answering() -> bool:
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
        except OSError:
            return False
        return True

    try:
        _wait_for(answering, 60, "gunicorn to listen")
        yield Server(port, process, gate)
    finally:
        gate.unlink(missing_ok=True)
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _crash_mid_request(server: Server, api: SignedClient, body: Any, key: str) -> int:
    """Send ``body``, kill the worker while it is inside the work; return the dead worker's pid."""
    server.gate.touch()
    with ThreadPoolExecutor(1) as pool:
        doomed = pool.submit(server.post, api, body, key=key, timestamp=int(time.time()) - 20)
        worker = server.held()
        os.kill(worker, signal.SIGKILL)
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            doomed.result(timeout=60)  # the connection dies with the worker: no answer at all
    return worker


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_retry_after_the_worker_was_killed_proceeds_at_once_and_once(
    api, merchant, tmp_path
) -> None:
    body = {"events": [order_event(merchant, "HOLD-1")]}
    with holding_server(tmp_path) as server:
        dead = _crash_mid_request(server, api, body, "crash-1")
        # The server ends the dead connection's transaction as soon as it reads EOF: seconds at
        # most, where the row claim made every retry wait out five minutes.
        waited = _wait_for(lambda: _advisory_locks() == 0, 10, "the dead worker's lock to end")
        assert waited < 5
        assert not IdempotentRequest.objects.filter(key="crash-1").exists()

        # Two retries race: one proceeds (and is held at the gate), the other is told 409.
        stamp = int(time.time()) - 10  # each retry signed anew
        barrier = threading.Barrier(2)

        def retry(n: int) -> Answer:
            barrier.wait()
            return server.post(api, body, key="crash-1", timestamp=stamp + n)

        with ThreadPoolExecutor(2) as pool:
            racing = [pool.submit(retry, n) for n in range(2)]
            server.held(besides=frozenset({dead}))
            _wait_for(lambda: any(f.done() for f in racing), 60, "the losing retry's answer")
            assert _advisory_locks() == 1  # the winner's claim, held while it works
            server.gate.unlink()
            answers = sorted((f.result(timeout=60) for f in racing), key=lambda a: a.status)
        assert [a.status for a in answers] == [201, 409], [a.body for a in answers]
        assert answers[1].code == "request_in_flight"
        assert "Idempotent-Replayed" not in answers[0].headers

        replay = server.post(api, body, key="crash-1", timestamp=stamp + 5)
        assert (replay.status, replay.body) == (201, answers[0].body)
        assert replay.headers["Idempotent-Replayed"] == "true"
    assert Entry.objects.filter(external_ref="HOLD-1").count() == 1
    assert IdempotentRequest.objects.get(key="crash-1").state == "done"
    assert _advisory_locks() == 0


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_negative_control_a_row_claim_outlives_the_killed_worker(api, merchant, tmp_path) -> None:
    """With the in-flight row as the only claim (the SQLite fallback), the same crash leaves the
    key refused for STALE_CLAIM: what the advisory lock fixes, and what the test above sees."""
    body = {"events": [order_event(merchant, "HOLD-2")]}
    with holding_server(tmp_path, row_claims=True) as server:
        _crash_mid_request(server, api, body, "crash-2")
        server.gate.unlink()
        time.sleep(1)
        retry = server.post(api, body, key="crash-2", timestamp=int(time.time()) - 10)
    assert (retry.status, retry.code) == (409, "request_in_flight")
    assert retry.headers["Retry-After"] == "1"
    assert IdempotentRequest.objects.get(key="crash-2").state == "in_flight"
    assert Entry.objects.filter(external_ref="HOLD-2").count() == 0


# --- The lock on a reused connection: taken while working, gone on every path -----------------


def _request(key: str, body: bytes = b"{}") -> Request:
    return Request(
        APIRequestFactory().post(
            EVENTS, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key
        )
    )


def _work(seen: list[int], outcome: Callable[[], HttpResponse]) -> Callable[[], HttpResponse]:
    def work() -> HttpResponse:
        seen.append(_advisory_locks(mine=True))
        return outcome()

    return work


def _raise(exc: BaseException) -> Callable[[], HttpResponse]:
    def outcome() -> HttpResponse:
        raise exc

    return outcome


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "outcome",
    [
        lambda: HttpResponse(b"{}", status=201, content_type="application/json"),
        _raise(ValueError("the work failed")),
        _raise(KeyboardInterrupt()),
    ],
    ids=["success", "exception", "base-exception"],
)
def test_the_claim_is_held_while_working_and_released_on_every_path(outcome) -> None:
    seen: list[int] = []
    with suppress(ValueError, KeyboardInterrupt):
        idempotency.idempotent(_request("k"), "marketplace:1", _work(seen, outcome))
    assert seen == [1]  # the lock was taken, on this connection
    assert connection.connection is not None and not connection.in_atomic_block
    assert _advisory_locks(mine=True) == 0  # the same, reused connection holds nothing after
    assert IdempotentRequest.objects.filter(key="k", state="in_flight").count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_twin_of_a_running_request_is_409_and_runs_nothing() -> None:
    """While another connection holds the claim, the twin is refused and writes no row."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(%s)", [idempotency._lock_id("marketplace:1", "k")]
                )
                taken.set()
                release.wait(30)
                cursor.execute("ROLLBACK")
        finally:
            connection.close()

    ran: list[int] = []
    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert taken.wait(30)
        with pytest.raises(ApiProblem) as refused:
            idempotency.idempotent(_request("k"), "marketplace:1", _work(ran, HttpResponse))
    finally:
        release.set()
        holder.join()
    assert refused.value.status == 409 and refused.value.code == "request_in_flight"
    assert ran == [] and not IdempotentRequest.objects.exists()


# --- One behaviour, two claims: the lock (PostgreSQL) and the row (SQLite) -------------------


def _script(run: Callable[..., HttpResponse]) -> list[tuple[int, str | None, str | None]]:
    """The same sequence of calls; what each answered (status, problem code, replayed?)."""
    ok = lambda: HttpResponse(b'{"n": 1}', status=201, content_type="application/json")  # noqa: E731
    steps = [
        ("a", b"{}", ok),  # new: runs
        ("a", b"{}", ok),  # exact repeat: replayed
        ("a", b"[]", ok),  # same key, another body: 422
        ("b", b"{}", _raise(ApiProblem(422, "bad", "Refused."))),  # fails: key freed
        ("b", b"{}", ok),  # the corrected retry runs
    ]
    answers = []
    for key, body, outcome in steps:
        try:
            response = run(_request(key, body), "marketplace:1", outcome)
            answers.append((response.status_code, None, response.get("Idempotent-Replayed")))
        except ApiProblem as exc:
            answers.append((exc.status, exc.code, None))
    return answers


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_lock_and_the_row_claim_answer_alike(monkeypatch) -> None:
    locked = _script(idempotency.idempotent)
    rows_locked = list(IdempotentRequest.objects.values_list("key", "state", "response_status"))
    IdempotentRequest.objects.all().delete()
    monkeypatch.setattr(idempotency, "_run_locked", idempotency._run_claimed)
    claimed = _script(idempotency.idempotent)
    rows_claimed = list(IdempotentRequest.objects.values_list("key", "state", "response_status"))
    assert (
        locked
        == claimed
        == [
            (201, None, None),
            (201, None, "true"),
            (422, "idempotency_key_reused", None),
            (422, "bad", None),
            (201, None, None),
        ]
    )
    assert sorted(rows_locked) == sorted(rows_claimed) == [("a", "done", 201), ("b", "done", 201)]
