"""Many requests and officers at once on one merchant's receivables and one facility.

Threads, each with its own PostgreSQL connection (Django's connections are per thread), released
together by a barrier. With the facility lock, requests queue and the eligibility checks explain
every refusal; with the lock switched off (the negative controls), the partial unique index and
the facility's CHECK must still refuse, and the test proves the checks really ran blind.
"""

from __future__ import annotations

import io
import random
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import IntegrityError, OperationalError, connection, connections
from django.db.models import F, Sum

from financing import fingerprint, locks
from financing.books.models import JournalEntry
from financing.exceptions import AdvanceRefused, ApprovalVoid, WrongState
from financing.models import Advance, Assignment, AssignmentNotice, Facility
from financing.roles import SENIOR_OFFICER
from financing.services import requests
from financing.services.decisions import advance_approve, advance_authorize
from financing.services.requests import advance_request
from ledger.models import Entry
from merchants.models import MarketplaceMerchant, Merchant
from merchants.services import marketplace_create
from tests.conftest import NOW
from tests.financing.conftest import NoticeTaskRecorder, Trade, constraint_of, staff

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

JOIN_SECONDS = 120
BARRIER_SECONDS = 60


# --- Running calls at once ----------------------------------------------------------------------


def run_together(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run each call in its own thread, all released at once; return its result or exception."""
    start = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            _connect_patiently()  # before the barrier: the calls start together, connected
            start.wait(timeout=BARRIER_SECONDS)
            results[index] = call()
        except BaseException as exc:  # the test judges every outcome, expected or not
            results[index] = exc
        finally:
            connections.close_all()  # this thread's connection; teardown truncates after us

    threads = [
        threading.Thread(target=run, args=(i, call), daemon=True) for i, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=JOIN_SECONDS)
    assert not any(t.is_alive() for t in threads), "a thread still runs: a deadlock?"
    return results


def _connect_patiently() -> None:
    """Open this thread's connection, waiting while the server has no slot left.

    Fifty threads at once come near PostgreSQL's max_connections when other test processes
    share the server; a refused connection is the environment, not the race under test.
    """
    deadline = time.monotonic() + BARRIER_SECONDS
    while True:
        try:
            connection.ensure_connection()
            return
        except OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def assert_only(results: Sequence[Any], *allowed: type) -> None:
    """Every outcome is one of ``allowed``; anything else fails with its traceback."""
    others = [r for r in results if not isinstance(r, allowed)]
    if others:
        first = others[0]
        detail = (
            "".join(traceback.format_exception(first))
            if isinstance(first, BaseException)
            else repr(first)
        )
        names = Counter(type(r).__name__ for r in others)
        raise AssertionError(f"{len(others)} unexpected outcomes {dict(names)}; first:\n{detail}")


class QuoteSpy:
    """Wraps ``requests._quote`` for new requests: counts the threads inside it at once, counts
    the requests that passed every check, and, given a barrier, holds each request after its
    checks until all have checked, so no request can see another's hold (the lock must be off
    for that barrier ever to open: with it, the second request waits for the first's commit).
    """

    def __init__(self, real: Callable[..., Any], barrier: threading.Barrier | None = None) -> None:
        self.real = real
        self.barrier = barrier
        self.inside = 0
        self.most_inside = 0
        self.passed = 0
        self._mutex = threading.Lock()

    def __call__(
        self, merchant: Merchant, refs: Sequence[str], today: Any, holder: Any, invoices: Any = None
    ) -> Any:
        if holder is not None:  # an approval's re-check, not a request
            return self.real(merchant, refs, today, holder=holder, invoices=invoices)
        with self._mutex:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            time.sleep(0.002)  # widen the window a missing lock would show in
            quote = self.real(merchant, refs, today, holder=None)
            with self._mutex:
                self.passed += 1
            return quote
        finally:
            with self._mutex:
                self.inside -= 1
            if self.barrier is not None:
                self.barrier.wait()


def spy_on_quotes(
    monkeypatch: pytest.MonkeyPatch, barrier: threading.Barrier | None = None
) -> QuoteSpy:
    spy = QuoteSpy(requests._quote, barrier)
    monkeypatch.setattr(requests, "_quote", spy)
    return spy


def spy_on_races(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """Record the constraint behind every refusal that came from the database, not the checks."""
    constraints: list[str | None] = []
    real = requests._race_refusal

    def race_refusal(exc: IntegrityError) -> AdvanceRefused:
        constraints.append(constraint_of(exc))
        return real(exc)

    monkeypatch.setattr(requests, "_race_refusal", race_refusal)
    return constraints


def lock_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """The negative control: requests no longer queue on the facility row."""
    monkeypatch.setattr(locks, "facility_lock", lambda merchant, currency: None)


def request_call(merchant: Merchant, refs: Sequence[str], key: str) -> Callable[[], Advance]:
    def call() -> Advance:
        own = Merchant.objects.get(pk=merchant.pk)  # no model instance shared between threads
        return advance_request(merchant=own, refs=list(refs), request_key=key, now=NOW)

    return call


def decision_call(
    decide: Callable[..., Advance], advance: Advance, officer: User, now: datetime = NOW
) -> Callable[[], Advance]:
    def call() -> Advance:
        return decide(
            advance=Advance.objects.get(pk=advance.pk),
            officer=User.objects.get(pk=officer.pk),  # fresh permission caches per thread
            now=now,
        )

    return call


# --- What the database holds --------------------------------------------------------------------


def live_holds(merchant: Merchant) -> Counter[str]:
    live = Assignment.objects.filter(merchant=merchant, status__in=Assignment.LIVE)
    return Counter(live.values_list("invoice_ref", flat=True))


def committed_by_advances(facility: Facility) -> int:
    live = Advance.objects.filter(facility=facility).exclude(status=Advance.Status.REJECTED)
    return live.aggregate(total=Sum("advance_minor"))["total"] or 0


def assert_books_and_chains_intact() -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command("verify_books", stdout=out, stderr=err)  # SystemExit(1) on any problem
    call_command("verify_ledger", stdout=out, stderr=err)
    assert out.getvalue().count("OK:") == 2, out.getvalue() + err.getvalue()


def constraint_validated(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT convalidated FROM pg_constraint WHERE conname = %s", [name])
        row = cursor.fetchone()
    return bool(row and row[0])


def codes(refusal: AdvanceRefused) -> set[str]:
    return {code for pairs in refusal.reasons.values() for code, _ in pairs}


# --- a. Overlapping requests with the lock ------------------------------------------------------


def test_overlapping_requests_hold_each_receivable_once(
    trade: Trade,
    open_facility: Callable[..., Facility],
    officer: User,
    notices_enqueued: NoticeTaskRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # All under the checker threshold together too (it counts the merchant's 24 hours).
    facility = open_facility(trade.merchant, checker_threshold_minor=10_000_000)
    refs = trade.fundable(20)
    rng = random.Random(20261101)
    picks = [rng.sample(refs, rng.randint(1, 3)) for _ in range(50)]
    spy = spy_on_quotes(monkeypatch)
    races = spy_on_races(monkeypatch)

    results = run_together(
        [request_call(trade.merchant, picked, f"req-{i}") for i, picked in enumerate(picks)]
    )

    assert_only(results, Advance, AdvanceRefused)
    outcomes = list(zip(picks, results, strict=True))
    granted = [(picked, r) for picked, r in outcomes if isinstance(r, Advance)]
    refused = [(picked, r) for picked, r in outcomes if isinstance(r, AdvanceRefused)]
    assert granted and refused
    # The lock was taken: one request's checks at a time, so the checks explain every refusal
    # and no race ever reached the database's indexes.
    assert spy.most_inside == 1
    assert races == []
    holds = live_holds(trade.merchant)
    assert max(holds.values()) == 1
    for picked, advance in granted:
        assignments = advance.assignments.all()
        assert sorted(a.invoice_ref for a in assignments) == sorted(picked)
        assert {a.status for a in assignments} == {Assignment.Status.HELD}
    for picked, refusal in refused:
        assert "ALREADY_ASSIGNED" in codes(refusal)
        assert set(picked) & set(holds), "refused although none of its invoices was held"
    assert sum(holds.values()) == sum(len(picked) for picked, _ in granted)
    facility.refresh_from_db()
    assert facility.committed_minor == sum(a.advance_minor for _, a in granted)
    assert facility.committed_minor == committed_by_advances(facility)

    approvals = run_together([decision_call(advance_approve, a, officer) for _, a in granted])

    assert_only(approvals, Advance)
    assert {a.status for a in approvals} == {Advance.Status.DISBURSED}
    assert set(live_holds(trade.merchant)) == set(holds)
    assert set(
        Assignment.objects.filter(merchant=trade.merchant).values_list("status", flat=True)
    ) == {Assignment.Status.ASSIGNED}
    assert JournalEntry.objects.filter(key__startswith="disburse:").count() == len(granted)
    assert len(notices_enqueued.notice_ids) == len(granted)  # one notice each, after commit
    facility.refresh_from_db()
    assert facility.committed_minor == committed_by_advances(facility)
    assert_books_and_chains_intact()


# --- b. Negative control: no lock, and the unique index still decides ----------------------------


def test_without_the_lock_the_unique_index_refuses_a_second_hold(
    trade: Trade,
    open_facility: Callable[..., Facility],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    facility = open_facility(trade.merchant)
    refs = sorted(trade.fundable(4))
    n = 8  # 8 requests of 1 to 3 invoices among 4: some must overlap
    rng = random.Random(8)
    # Each request names its invoices in one global order, so racing inserts queue on the
    # index and never deadlock; the race is what is under test, not lock ordering.
    picks = [sorted(rng.sample(refs, rng.randint(1, 3))) for _ in range(n)]
    lock_off(monkeypatch)
    spy = spy_on_quotes(monkeypatch, threading.Barrier(n, timeout=BARRIER_SECONDS))
    races = spy_on_races(monkeypatch)

    results = run_together(
        [request_call(trade.merchant, picked, f"race-{i}") for i, picked in enumerate(picks)]
    )

    assert_only(results, Advance, AdvanceRefused)
    # The control is real: every request passed every check before any of them held anything.
    assert spy.passed == n
    assert spy.most_inside > 1
    refused = [r for r in results if isinstance(r, AdvanceRefused)]
    assert refused, "the race never reached the database; the control proves nothing"
    assert races == ["assignment_one_live_per_receivable"] * len(refused)
    assert all(r.reasons == {} for r in refused)  # the database refused, not the checks
    holds = live_holds(trade.merchant)
    assert max(holds.values()) == 1
    granted = [r for r in results if isinstance(r, Advance)]
    assert sum(holds.values()) == sum(a.assignments.count() for a in granted)
    facility.refresh_from_db()
    assert facility.committed_minor == sum(a.advance_minor for a in granted)


def test_without_the_lock_two_requests_for_one_invoice_hold_it_once(
    trade: Trade,
    open_facility: Callable[..., Facility],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    open_facility(trade.merchant)
    [ref] = trade.fundable(1)
    lock_off(monkeypatch)
    spy = spy_on_quotes(monkeypatch, threading.Barrier(2, timeout=BARRIER_SECONDS))
    races = spy_on_races(monkeypatch)

    first, second = run_together(
        [request_call(trade.merchant, [ref], "a"), request_call(trade.merchant, [ref], "b")]
    )

    assert spy.passed == 2  # both found the invoice free
    outcomes = sorted([type(first).__name__, type(second).__name__])
    assert outcomes == ["Advance", "AdvanceRefused"], (first, second)
    assert races == ["assignment_one_live_per_receivable"]
    assert live_holds(trade.merchant) == Counter({ref: 1})
    assert Advance.objects.count() == 1  # the loser's advance row went with its transaction


def test_with_the_lock_the_checks_never_run_side_by_side(
    trade: Trade,
    open_facility: Callable[..., Facility],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The positive side of the barrier: with the lock, the second request cannot reach its
    checks while the first waits in its own, so the barrier breaks instead of opening."""
    open_facility(trade.merchant)
    refs = trade.fundable(2)
    spy = spy_on_quotes(monkeypatch, threading.Barrier(2, timeout=2))

    results = run_together([request_call(trade.merchant, [ref], f"k-{ref}") for ref in refs])

    assert spy.most_inside == 1
    assert any(isinstance(r, threading.BrokenBarrierError) for r in results), results


# --- c. The facility limit under a burst ------------------------------------------------------


@pytest.mark.parametrize("lock", ["on", "off"])
def test_a_burst_stops_at_the_facility_limit(
    lock: str,
    trade: Trade,
    open_facility: Callable[..., Facility],
    officer: User,
    notices_enqueued: NoticeTaskRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    facility = open_facility(
        trade.merchant,
        limit_minor=10_000,  # 100.00
        advance_rate_bp=10_000,  # 100 %: each 10.00 invoice takes 10.00 of the limit
        checker_threshold_minor=100_000,  # approval disburses
    )
    refs = trade.fundable(50, amount="10.00")
    races = spy_on_races(monkeypatch)
    if lock == "off":
        lock_off(monkeypatch)
        spy = spy_on_quotes(monkeypatch, threading.Barrier(len(refs), timeout=BARRIER_SECONDS))
    else:
        spy = spy_on_quotes(monkeypatch)

    results = run_together([request_call(trade.merchant, [ref], f"burst-{ref}") for ref in refs])

    assert_only(results, Advance, AdvanceRefused)
    granted = [r for r in results if isinstance(r, Advance)]
    refused = [r for r in results if isinstance(r, AdvanceRefused)]
    assert (len(granted), len(refused)) == (10, 40)
    if lock == "on":
        assert spy.most_inside == 1
        assert races == []
        assert all("FACILITY_LIMIT" in codes(r) for r in refused)
    else:
        assert spy.passed == 50  # all fifty saw room for themselves: only the CHECK stood
        assert races == ["facility_commitments_within_limit"] * 40
        assert all(r.reasons == {} for r in refused)
    facility.refresh_from_db()
    assert facility.committed_minor == 10_000 == committed_by_advances(facility)

    for advance in granted:  # one by one: the approvals' own race is test a's and d's
        advance_approve(advance=advance, officer=officer, now=NOW)

    assert Advance.objects.filter(status=Advance.Status.DISBURSED).count() == 10
    assert JournalEntry.objects.filter(key__startswith="disburse:").count() == 10
    assert len(notices_enqueued.notice_ids) == 10
    facility.refresh_from_db()
    assert facility.committed_minor == 10_000
    assert not Facility.objects.filter(committed_minor__gt=F("limit_minor")).exists()
    assert constraint_validated("facility_commitments_within_limit")
    assert_books_and_chains_intact()


# --- d. Twenty checkers, one disbursement ----------------------------------------------------


def test_twenty_checkers_disburse_once(
    trade: Trade,
    open_facility: Callable[..., Facility],
    officer: User,
    notices_enqueued: NoticeTaskRecorder,
) -> None:
    open_facility(trade.merchant, checker_threshold_minor=100_000)
    refs = trade.fundable(2, amount="5000.00")
    advance = advance_request(merchant=trade.merchant, refs=refs, request_key="big", now=NOW)
    advance = advance_approve(advance=advance, officer=officer, now=NOW)
    assert advance.status == Advance.Status.APPROVED  # 8,000.00 needs a checker
    checkers = [staff(f"checker-{i}", SENIOR_OFFICER) for i in range(20)]

    results = run_together([decision_call(advance_authorize, advance, c) for c in checkers])

    assert_only(results, Advance, WrongState, ApprovalVoid)
    disbursed = [r for r in results if isinstance(r, Advance)]
    assert len(disbursed) == 1
    assert sum(isinstance(r, WrongState) for r in results) == 19
    advance.refresh_from_db()
    assert advance.status == Advance.Status.DISBURSED
    assert advance.authorized_by_id == disbursed[0].authorized_by_id
    assert advance.authorized_by_id in {c.pk for c in checkers}
    assert JournalEntry.objects.filter(key=f"disburse:{advance.ref}").count() == 1
    assert JournalEntry.objects.count() == 1
    chain = Entry.objects.filter(chain_id=trade.merchant.pk, source="chainfin")
    assert chain.filter(type="advance.disbursed").count() == 1
    assert chain.filter(type="receivable.assigned").count() == 2
    assert AssignmentNotice.objects.filter(advance=advance).count() == 1
    assert len(notices_enqueued.notice_ids) == 1
    assert_books_and_chains_intact()


# --- e. One idempotency key, sixteen senders -------------------------------------------------


def test_one_request_key_sent_sixteen_times_makes_one_advance(
    trade: Trade,
    open_facility: Callable[..., Facility],
) -> None:
    facility = open_facility(trade.merchant)
    refs = trade.fundable(3)

    results = run_together([request_call(trade.merchant, refs, "same-key") for _ in range(16)])

    assert_only(results, Advance)
    assert Advance.objects.count() == 1
    assert {r.ref for r in results} == {Advance.objects.get().ref}
    assert live_holds(trade.merchant) == Counter(dict.fromkeys(refs, 1))
    facility.refresh_from_db()
    assert facility.committed_minor == Advance.objects.get().advance_minor


# --- f. One invoice, two marketplaces, fifty requests ----------------------------------------


def _one_invoice_through_two_marketplaces(
    shape: str, make_merchant: Callable[..., Merchant], open_facility: Callable[..., Facility]
) -> tuple[Trade, Trade]:
    """Issue 8's case: "inv 77" from marketplace A, "INV-77" naming the supplier by its bare
    national tax id through marketplace B; the supplier as one merchant linked to both, or as
    two merchant rows (two chains, two facilities: nothing but the database serializes them)."""
    first = make_merchant(tax_id="DE300000001", kyc_status=Merchant.KycStatus.VERIFIED)
    second_marketplace = marketplace_create(code="second-mkt", name="Second Marketplace")
    if shape == "one-merchant":
        MarketplaceMerchant.objects.create(
            marketplace=second_marketplace, merchant=first, seller_id="same-supplier"
        )
        second = first
    else:
        second = make_merchant(
            tax_id="300000001",
            marketplace=second_marketplace,
            kyc_status=Merchant.KycStatus.VERIFIED,
        )
    for merchant in {first.pk: first, second.pk: second}.values():
        open_facility(merchant)
    via_a = Trade(merchant=first, source=first.links.first().marketplace.code, now=NOW)
    via_b = Trade(merchant=second, source=second_marketplace.code, now=NOW)
    via_a.order("ORD-A77")
    via_a.invoice("inv 77", "ORD-A77")
    via_a.delivered("ORD-A77")
    via_b.order("ORD-B77")
    via_b.append(
        "invoice.issued",
        "INV-77",
        {
            "currency": "EUR",
            "amount": "990.00",  # another amount: still the same invoice
            "order_ref": "ORD-B77",
            "issue_date": "2026-10-17",
            "due_date": "2026-12-16",
            "debtor": {"kind": "marketplace", "name": "Second Marketplace"},
            "supplier_tax_id": "300000001",
        },
        days_ago=15,
    )
    via_b.delivered("ORD-B77")
    return via_a, via_b


@pytest.mark.parametrize("shape", ["one-merchant", "two-merchant-rows"])
@pytest.mark.parametrize("identity_rule", ["on", "off"])
def test_fifty_requests_across_two_marketplaces_finance_one_invoice_once(
    shape: str,
    identity_rule: str,
    make_merchant: Callable[..., Merchant],
    open_facility: Callable[..., Facility],
    officer: User,
    notices_enqueued: NoticeTaskRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 8: at most one live assignment of the invoice, however many ask at once; the
    negative control (the number's normalisation off when the invoices arrive) shows the two
    spellings would otherwise both be financed."""
    if identity_rule == "off":
        monkeypatch.setattr(fingerprint, "invoice_number_normalise", lambda number: number)
    via_a, via_b = _one_invoice_through_two_marketplaces(shape, make_merchant, open_facility)

    def request_and_approve(trade: Trade, ref: str, key: str) -> Callable[[], Advance]:
        def call() -> Advance:
            advance = advance_request(merchant=trade.merchant, refs=[ref], request_key=key, now=NOW)
            return advance_approve(advance=advance, officer=officer, now=NOW)

        return call

    calls = [
        request_and_approve(*((via_a, "inv 77") if i % 2 else (via_b, "INV-77")), f"k{i}")
        for i in range(50)
    ]
    results = run_together(calls)

    assert_only(results, Advance, AdvanceRefused)
    disbursed = [r for r in results if isinstance(r, Advance)]
    assert all(r.status == Advance.Status.DISBURSED for r in disbursed)
    live = Assignment.objects.filter(
        invoice_ref__in=["inv 77", "INV-77"], status__in=Assignment.LIVE
    )
    if identity_rule == "off":  # blind to the identity, both spellings are financed
        assert len(disbursed) == live.count() == 2
        return
    assert len(disbursed) == live.count() == 1
    assert live.get().invoice_ref == "inv 77"  # the first arrival is the receivable
    refused = [r for r in results if isinstance(r, AdvanceRefused)]
    assert all(
        "DUPLICATE_INVOICE" in dict(r.reasons["INV-77"]) for r in refused if "INV-77" in r.reasons
    )
    assert_books_and_chains_intact()
