"""Notices of assignment: the signed webhook a marketplace receives once its receivables are ours.

A real HTTP server on 127.0.0.1 stands in for the marketplace and records what arrives; the
delivery itself is the product's own, down to the socket. The last tests run a real Celery
worker over Redis, and prove the notice is enqueued only once the disbursement committed.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connections, transaction
from django.db.models import F

import financing.tasks
from config.api.signing import signature_verify
from financing.models import Advance, AssignmentNotice, Facility, WebhookEndpoint
from financing.notices import DeliveryFailed, notice_deliver, payment_reference
from financing.services.decisions import advance_approve
from financing.services.requests import advance_request
from merchants.models import Marketplace, MarketplaceMerchant
from merchants.services import marketplace_create
from tests.conftest import NOW, celery_worker
from tests.financing.conftest import TODAY, NoticeTaskRecorder, Trade

ROOT = Path(__file__).resolve().parents[2]
HOOK_PATH = "/hooks/chainfin?tenant=acme"  # a query too: the signature covers it
WORKER_DEADLINE_SECONDS = 30


# --- The marketplace's side ------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def signed_by(self, secret: str) -> bool:
        return (
            signature_verify(
                secret,
                self.headers["chainfin-signature"],
                self.headers["chainfin-timestamp"],
                self.method,
                self.path,
                self.body,
            )
            is not None
        )


@dataclass
class Receiver:
    """Records every request; answers with ``statuses`` in turn, then 200."""

    base_url: str = ""
    statuses: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)

    def url(self, path: str = HOOK_PATH) -> str:
        return self.base_url + path


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                receiver.requests.append(
                    Received(
                        method=self.command,
                        path=self.path,
                        headers={k.lower(): v for k, v in self.headers.items()},
                        body=body,
                    )
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(autouse=True)
def _no_proxy_for_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


# --- Chainfin's side -------------------------------------------------------------------------


@pytest.fixture
def endpoint(marketplace: Marketplace, receiver: Receiver) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(marketplace=marketplace, url=receiver.url())


@pytest.fixture
def requested(trade: Trade, open_facility: Callable[..., Facility]) -> tuple[Advance, list[str]]:
    """An advance of 1,600.00 on two invoices the trade's marketplace sent, awaiting approval."""
    open_facility(trade.merchant)
    refs = trade.fundable(2, amount="1000.00")
    advance = advance_request(merchant=trade.merchant, refs=refs, request_key="n1", now=NOW)
    return advance, refs


def disburse(advance: Advance, officer: User) -> AssignmentNotice:
    disbursed = advance_approve(advance=advance, officer=officer, now=NOW)
    assert disbursed.status == Advance.Status.DISBURSED  # under the checker threshold
    return AssignmentNotice.objects.get(advance=advance)


# --- One delivery, called directly ----------------------------------------------------------


@pytest.mark.django_db
def test_a_notice_arrives_signed_with_the_payload(
    trade: Trade,
    marketplace: Marketplace,
    requested: tuple[Advance, list[str]],
    officer: User,
    endpoint: WebhookEndpoint,
    receiver: Receiver,
) -> None:
    advance, refs = requested
    notice = disburse(advance, officer)

    notice_deliver(notice_id=notice.pk, now=NOW)

    [received] = receiver.requests
    assert (received.method, received.path) == ("POST", HOOK_PATH)
    assert received.headers["content-type"] == "application/json"
    payload = json.loads(received.body)
    seller_id = MarketplaceMerchant.objects.get(
        marketplace=marketplace, merchant=trade.merchant
    ).seller_id
    due = (TODAY + timedelta(days=45)).isoformat()
    assert payload == {
        "type": "notice_of_assignment",
        "advance": advance.ref,
        "merchant": seller_id,
        "assignee": settings.CHAINFIN_BANK_NAME,
        "pay_to": {
            "account_holder": settings.CHAINFIN_BANK_NAME,
            "iban": settings.CHAINFIN_COLLECTION_IBAN,
            "bic": settings.CHAINFIN_COLLECTION_BIC,
        },
        "receivables": [
            {
                "ref": a.invoice_ref,
                "currency": "EUR",
                "face": "1000.00",
                "due_date": due,
                # per invoice, not per advance: the debtor pays each invoice under its own
                "payment_reference": payment_reference(a.fingerprint),
            }
            for a in advance.assignments.order_by("id")
        ],
    }
    assert [r["ref"] for r in payload["receivables"]] == refs
    assert payload == notice.payload
    assert abs(int(received.headers["chainfin-timestamp"]) - time.time()) <= 60
    assert received.signed_by(endpoint.secret)
    assert not received.signed_by("another secret")
    assert received.headers["idempotency-key"] == f"notice:{advance.pk}:{marketplace.pk}"
    notice.refresh_from_db()
    assert notice.status == AssignmentNotice.Status.DELIVERED
    assert (notice.attempts, notice.last_error) == (1, "")
    assert notice.delivered_at is not None

    # a redelivered task: the marketplace hears it once
    notice_deliver(notice_id=notice.pk, now=NOW)

    assert len(receiver.requests) == 1
    notice.refresh_from_db()
    assert notice.attempts == 1


@pytest.mark.django_db
def test_each_marketplace_hears_of_its_own_receivables_under_its_own_secret(
    trade: Trade,
    trade_for: Callable[..., Trade],
    marketplace: Marketplace,
    open_facility: Callable[..., Facility],
    officer: User,
    receiver: Receiver,
) -> None:
    other = marketplace_create(code=f"nord{uuid.uuid4().hex[:6]}", name="Nordmarkt")
    MarketplaceMerchant.objects.create(marketplace=other, merchant=trade.merchant, seller_id="NM-1")
    open_facility(trade.merchant)
    ours = trade.fundable(1)
    theirs = trade_for(trade.merchant, other.code).fundable(2)
    hooks = {
        marketplace: WebhookEndpoint.objects.create(
            marketplace=marketplace, url=receiver.url("/acme")
        ),
        other: WebhookEndpoint.objects.create(marketplace=other, url=receiver.url("/nord")),
    }
    advance = advance_request(
        merchant=trade.merchant, refs=ours + theirs, request_key="two", now=NOW
    )
    advance_approve(advance=advance, officer=officer, now=NOW)

    for notice in AssignmentNotice.objects.filter(advance=advance):
        notice_deliver(notice_id=notice.pk, now=NOW)

    by_path = {r.path: r for r in receiver.requests}
    assert set(by_path) == {"/acme", "/nord"}
    for mkt, path, refs in ((marketplace, "/acme", ours), (other, "/nord", theirs)):
        received = by_path[path]
        assert received.signed_by(hooks[mkt].secret)
        body = json.loads(received.body)
        assert [r["ref"] for r in body["receivables"]] == refs
    assert json.loads(by_path["/nord"].body)["merchant"] == "NM-1"
    assert not by_path["/nord"].signed_by(hooks[marketplace].secret)


@pytest.mark.django_db
@pytest.mark.parametrize("status", [500, 503, 408, 429])
def test_a_transient_failure_is_raised_for_a_retry(
    status: int,
    requested: tuple[Advance, list[str]],
    officer: User,
    endpoint: WebhookEndpoint,
    receiver: Receiver,
) -> None:
    notice = disburse(requested[0], officer)
    receiver.statuses = [status]

    with pytest.raises(DeliveryFailed):
        notice_deliver(notice_id=notice.pk, now=NOW)

    assert len(receiver.requests) == 1
    notice.refresh_from_db()
    assert notice.status == AssignmentNotice.Status.PENDING
    assert (notice.attempts, notice.last_error) == (1, f"HTTP {status}")
    assert notice.delivered_at is None


@pytest.mark.django_db
def test_an_unreachable_endpoint_is_raised_for_a_retry(
    requested: tuple[Advance, list[str]], officer: User, marketplace: Marketplace
) -> None:
    url = f"http://127.0.0.1:{unused_port()}/x"
    WebhookEndpoint.objects.create(marketplace=marketplace, url=url)
    notice = disburse(requested[0], officer)

    with pytest.raises(DeliveryFailed):
        notice_deliver(notice_id=notice.pk, now=NOW)

    notice.refresh_from_db()
    assert notice.status == AssignmentNotice.Status.PENDING
    assert notice.attempts == 1
    assert notice.last_error.startswith("ConnectionError")


@pytest.mark.django_db
@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
def test_a_refusal_is_recorded_and_not_retried(
    status: int,
    requested: tuple[Advance, list[str]],
    officer: User,
    endpoint: WebhookEndpoint,
    receiver: Receiver,
) -> None:
    notice = disburse(requested[0], officer)
    receiver.statuses = [status]

    notice_deliver(notice_id=notice.pk, now=NOW)  # returns: nothing for Celery to retry

    assert len(receiver.requests) == 1
    notice.refresh_from_db()
    assert notice.status == AssignmentNotice.Status.FAILED
    assert notice.attempts == 1
    assert notice.last_error == f"HTTP {status}: refused by the marketplace"


@pytest.mark.django_db
@pytest.mark.parametrize("active", [None, False], ids=["no endpoint", "inactive endpoint"])
def test_without_an_active_endpoint_the_notice_says_so(
    active: bool | None,
    requested: tuple[Advance, list[str]],
    officer: User,
    marketplace: Marketplace,
    receiver: Receiver,
) -> None:
    if active is not None:
        WebhookEndpoint.objects.create(marketplace=marketplace, url=receiver.url(), active=active)
    notice = disburse(requested[0], officer)

    notice_deliver(notice_id=notice.pk, now=NOW)

    assert receiver.requests == []
    notice.refresh_from_db()
    assert notice.status == AssignmentNotice.Status.PENDING
    assert notice.attempts == 1
    assert notice.last_error == "The marketplace has no active webhook endpoint."


def unused_port() -> int:
    """A loopback port nothing listens on: bound by the OS, then closed again."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.django_db
def test_attempts_are_counted_in_the_database_so_a_concurrent_attempt_is_kept(
    requested: tuple[Advance, list[str]],
    officer: User,
    endpoint: WebhookEndpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    notice = disburse(requested[0], officer)

    def post(*args: Any, **kwargs: Any) -> SimpleNamespace:
        # A redelivered task's attempt lands while this one waits for the marketplace.
        AssignmentNotice.objects.filter(pk=notice.pk).update(attempts=F("attempts") + 1)
        return SimpleNamespace(status_code=200)

    monkeypatch.setattr("financing.notices.requests.post", post)

    notice_deliver(notice_id=notice.pk, now=NOW)

    notice.refresh_from_db()
    assert (notice.status, notice.attempts) == (AssignmentNotice.Status.DELIVERED, 2)


# --- After commit, and only then ---------------------------------------------------------------


class VisibilityProbe(NoticeTaskRecorder):
    """Records each enqueue and whether another connection could already read the notice,
    as a worker picking the task up at once would."""

    def __init__(self) -> None:
        super().__init__()
        self.visible: list[bool] = []

    def delay(self, notice_id: int, *args: Any, **kwargs: Any) -> None:
        super().delay(notice_id)

        def look() -> None:
            try:
                self.visible.append(AssignmentNotice.objects.filter(pk=notice_id).exists())
            finally:
                connections.close_all()

        worker = threading.Thread(target=look)
        worker.start()
        worker.join(timeout=30)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_notice_is_enqueued_once_the_disbursement_committed(
    requested: tuple[Advance, list[str]], officer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = VisibilityProbe()
    monkeypatch.setattr(financing.tasks, "notice_send", probe)

    notice = disburse(requested[0], officer)

    assert probe.notice_ids == [notice.pk]
    assert probe.visible == [True]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_disbursement_enqueues_nothing(
    requested: tuple[Advance, list[str]],
    officer: User,
    notices_enqueued: NoticeTaskRecorder,
) -> None:
    advance, _ = requested
    inside: dict[str, Any] = {}

    def disburse_then_fail() -> None:
        with transaction.atomic():  # a caller's transaction that fails after the disbursement
            disburse(advance, officer)
            inside["notices"] = AssignmentNotice.objects.filter(advance=advance).count()
            inside["enqueued"] = list(notices_enqueued.notice_ids)
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        disburse_then_fail()

    assert inside == {"notices": 1, "enqueued": []}  # written, but not enqueued while open
    assert notices_enqueued.notice_ids == []
    assert not AssignmentNotice.objects.exists()
    advance.refresh_from_db()
    assert advance.status == Advance.Status.REQUESTED


# --- A real worker -----------------------------------------------------------------------------


class OnQueue:
    """``notice_send`` sent to this test's own queue, so no other worker or test's leftover
    message meets it on the shared broker. Celery's retry republishes to the same queue."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.task = financing.tasks.notice_send

    def delay(self, notice_id: int) -> None:
        self.task.apply_async(kwargs={"notice_id": notice_id}, queue=self.queue)


@pytest.fixture
def worker_queue(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real Celery worker (solo pool, own queue) on the test database; stopped afterwards."""
    queue = f"test-notices-{uuid.uuid4().hex[:8]}"
    worker_env = {
        "FINANCING_WEBHOOK_TIMEOUT_SECONDS": "5",
        "FINANCING_WEBHOOK_MAX_RETRIES": "3",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    with celery_worker(queue, redis_url, **worker_env) as output:
        monkeypatch.setattr(financing.tasks, "notice_send", OnQueue(queue))
        try:
            yield queue
        finally:
            print(output)  # shown by pytest when the test failed


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_delivers_the_notice_after_a_retry(
    requested: tuple[Advance, list[str]],
    officer: User,
    endpoint: WebhookEndpoint,
    receiver: Receiver,
    worker_queue: str,
) -> None:
    receiver.statuses = [500]  # the first attempt fails, the retry lands

    notice = disburse(requested[0], officer)

    deadline = time.monotonic() + WORKER_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        notice.refresh_from_db()
        if notice.status != AssignmentNotice.Status.PENDING:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"not delivered within {WORKER_DEADLINE_SECONDS} s: {notice.last_error!r}")
    assert notice.status == AssignmentNotice.Status.DELIVERED
    assert (notice.attempts, notice.last_error) == (2, "")
    first, second = receiver.requests
    assert first.body == second.body
    assert json.loads(second.body) == notice.payload
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert first.signed_by(endpoint.secret) and second.signed_by(endpoint.secret)
