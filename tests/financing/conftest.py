"""Financing fixtures: real trade evidence on real chains, facilities, and officers by role."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection, connections, transaction

from financing.models import Blacklisting, Facility, RiskChange
from financing.roles import AUDITOR, OFFICER, SENIOR_OFFICER, officer_groups_sync
from financing.services.blacklist import blacklist_lift_propose
from financing.services.debtor_limits import debtor_limit_propose
from financing.services.facilities import facility_change_propose, facility_open_propose
from financing.services.proposals import change_confirm
from ledger.events import event_parse, format_timestamp
from ledger.services import NewEntry, entries_append
from merchants.models import Marketplace, Merchant

TODAY = date(2026, 11, 1)
_serial = count(1)


@dataclass
class Trade:
    """Writes a merchant's evidence through the same services the API uses."""

    merchant: Merchant
    source: str
    now: datetime
    today: date = TODAY  # due dates are written relative to this day
    written: list[str] = field(default_factory=list)

    def append(self, type_: str, ref: str, data: dict[str, Any], days_ago: int = 20) -> None:
        raw = {
            "type": type_,
            "ref": ref,
            "occurred_at": format_timestamp(self.now - timedelta(days=days_ago)),
            "data": data,
        }
        entries_append(
            source=self.source,
            entries=[NewEntry(self.merchant.pk, event_parse(raw))],
            now=self.now,
        )
        self.written.append(ref)

    def order(self, ref: str, amount: str = "1000.00", currency: str = "EUR") -> None:
        self.append("order.placed", ref, {"currency": currency, "amount": amount}, days_ago=30)

    def invoice(
        self,
        ref: str,
        order_ref: str | None,
        amount: str = "1000.00",
        currency: str = "EUR",
        due_in_days: int = 45,
        issue_date: date | None = None,
        debtor: dict[str, str] | None = None,
        payee: dict[str, str] | None = None,
    ) -> None:
        """An invoice of ``order_ref`` (None: naming no order); ``payee``: a third party's."""
        issued = issue_date or self.today - timedelta(days=15)
        data: dict[str, Any] = {
            "currency": currency,
            "amount": amount,
            "issue_date": issued.isoformat(),
            "due_date": (self.today + timedelta(days=due_in_days)).isoformat(),
            "debtor": debtor or {"kind": "marketplace", "name": "Acme Marketplace"},
        }
        if order_ref is not None:
            data["order_ref"] = order_ref
        if payee is not None:
            data["payee"] = payee
        self.append("invoice.issued", ref, data, days_ago=15)

    def linked(self, invoice_ref: str, order_ref: str) -> None:
        data = {"invoice_ref": invoice_ref, "order_ref": order_ref}
        self.append("invoice.linked", f"LINK-{invoice_ref}-{next(_serial)}", data, days_ago=2)

    def dispatched(self, order_ref: str, shipment_ref: str) -> None:
        self.append("shipment.dispatched", shipment_ref, {"order_ref": order_ref}, days_ago=25)

    def delivered(self, order_ref: str, shipment_ref: str | None = None) -> None:
        ref = shipment_ref or f"SHP-{order_ref}"
        self.append("shipment.dispatched", ref, {"order_ref": order_ref}, days_ago=25)
        self.append("shipment.delivered", ref, {"order_ref": order_ref}, days_ago=22)

    def returned(self, order_ref: str, shipment_ref: str | None = None) -> None:
        ref = shipment_ref or f"SHP-{order_ref}"
        self.append("shipment.returned", ref, {"order_ref": order_ref}, days_ago=10)

    def credited(self, invoice_ref: str, amount: str = "10.00", currency: str = "EUR") -> None:
        self.append(
            "invoice.credited",
            f"CN-{invoice_ref}-{next(_serial)}",
            {
                "currency": currency,
                "amount": amount,
                "invoice_ref": invoice_ref,
                "issue_date": (self.today - timedelta(days=5)).isoformat(),
            },
            days_ago=5,
        )

    def cancelled(self, order_ref: str) -> None:
        self.append("order.cancelled", order_ref, {}, days_ago=8)

    def paid(self, payout_ref: str, invoice_ref: str, amount: str) -> None:
        """A payout settled 2026-11-01, arriving now, of one line paying ``invoice_ref``."""
        self.append(
            "payout.settled",
            payout_ref,
            {
                "currency": "EUR",
                "amount": amount,
                "settled_on": "2026-11-01",
                "lines": [{"invoice_ref": invoice_ref, "amount": amount}],
            },
            days_ago=0,
        )

    def fundable(self, n: int, amount: str = "1000.00", due_in_days: int = 45) -> list[str]:
        """``n`` invoices with order, invoice and delivery in the ledger: eligible receivables."""
        refs = []
        for _ in range(n):
            k = next(_serial)
            self.order(f"ORD-{k}", amount)
            self.invoice(f"INV-{k}", f"ORD-{k}", amount, due_in_days=due_in_days)
            self.delivered(f"ORD-{k}")
            refs.append(f"INV-{k}")
        return refs


@pytest.fixture
def today() -> date:
    return TODAY


@pytest.fixture
def trade_for(marketplace: Marketplace, now: datetime) -> Callable[[Merchant], Trade]:
    def make(merchant: Merchant, source: str | None = None) -> Trade:
        return Trade(merchant=merchant, source=source or marketplace.code, now=now)

    return make


@pytest.fixture
def verified_merchant(make_merchant: Callable[..., Merchant]) -> Merchant:
    merchant = make_merchant()
    merchant.kyc_status = Merchant.KycStatus.VERIFIED
    merchant.save(update_fields=["kyc_status"])
    return merchant


@pytest.fixture
def trade(verified_merchant: Merchant, trade_for: Callable[[Merchant], Trade]) -> Trade:
    return trade_for(verified_merchant)


def staff(username: str, *groups: str) -> User:
    officer_groups_sync()
    user = User.objects.create_user(username=username, password="x", is_staff=True)
    user.groups.set(Group.objects.filter(name__in=groups))
    return User.objects.get(pk=user.pk)  # a fresh object: permission caches start empty


@pytest.fixture
def officer(db: None) -> User:
    return staff(f"officer{next(_serial)}", OFFICER)


@pytest.fixture
def senior(db: None) -> User:
    return staff(f"senior{next(_serial)}", SENIOR_OFFICER)


@pytest.fixture
def senior_two(db: None) -> User:
    return staff(f"senior{next(_serial)}", SENIOR_OFFICER)


@pytest.fixture
def auditor(db: None) -> User:
    return staff(f"auditor{next(_serial)}", AUDITOR)


DEFAULT_TERMS: dict[str, Any] = {
    "limit_minor": 10_000_000,
    "advance_rate_bp": 8000,
    "annual_rate_bp": 1800,
    "max_tenor_days": 120,
    "min_days_to_due": 7,
    "debtor_cap_bp": 10_000,
    "checker_threshold_minor": 500_000,
}


def four_eyes(change: RiskChange, now: datetime) -> RiskChange:
    """Confirm ``change`` as a senior officer other than its proposer."""
    return change_confirm(
        change=change, officer=staff(f"senior{next(_serial)}", SENIOR_OFFICER), now=now
    )


def facility_terms_set(
    facility: Facility, now: datetime, reason: str = "Review", **changes: Any
) -> Facility:
    """Change ``facility``'s terms the only way there is: proposed, then confirmed."""
    proposer = staff(f"officer{next(_serial)}", OFFICER)
    four_eyes(
        facility_change_propose(
            facility=facility, officer=proposer, reason=reason, now=now, changes=changes
        ),
        now,
    )
    return Facility.objects.get(pk=facility.pk)


def debtor_limit_set(
    debtor_key: str, limit_minor: int, now: datetime, currency: str = "EUR"
) -> None:
    """Set a bank-wide debtor limit the only way there is: proposed, then confirmed."""
    change = debtor_limit_propose(
        currency=currency,
        debtor_key=debtor_key,
        debtor_name=debtor_key.split(":")[-1],
        limit_minor=limit_minor,
        officer=staff(f"officer{next(_serial)}", OFFICER),
        reason="Concentration",
        now=now,
    )
    four_eyes(change, now)


def blacklist_lifted(
    blacklisting: Blacklisting, officer: User, reason: str, now: datetime
) -> Blacklisting:
    """Lift a blacklisting the only way there is: ``officer`` proposes, a senior confirms."""
    change = blacklist_lift_propose(
        blacklisting=blacklisting, officer=officer, reason=reason, now=now
    )
    four_eyes(change, now)
    return Blacklisting.objects.get(pk=blacklisting.pk)


@pytest.fixture
def open_facility(senior: User, now: datetime) -> Callable[..., Facility]:
    """Open a line: proposed by an officer, confirmed by ``senior``."""

    def make(merchant: Merchant, currency: str = "EUR", **terms: Any) -> Facility:
        change = facility_open_propose(
            merchant=merchant,
            currency=currency,
            officer=staff(f"officer{next(_serial)}", OFFICER),
            reason="Onboarding",
            now=now,
            terms=DEFAULT_TERMS | terms,
        )
        change_confirm(change=change, officer=senior, now=now)
        return Facility.objects.get(merchant=merchant, currency=currency, active=True)

    return make


@pytest.fixture
def facility(trade: Trade, open_facility: Callable[..., Facility]) -> Facility:
    return open_facility(trade.merchant)


# --- Helpers for the refusal tests: what the database holds, and which constraint refused -----


def db_counts() -> dict[str, int]:
    """Row counts of everything a financing action may write, to prove a refusal wrote nothing."""
    from financing.books.models import JournalEntry, Posting
    from financing.models import (
        Advance,
        Assignment,
        AssignmentNotice,
        Blacklisting,
        FacilityChange,
    )
    from ledger.models import Entry

    models = (
        Advance,
        Assignment,
        AssignmentNotice,
        Blacklisting,
        Facility,
        FacilityChange,
        Entry,
        JournalEntry,
        Posting,
    )
    return {model.__name__: model.objects.count() for model in models}


def constraint_of(exc: BaseException) -> str | None:
    """The name of the PostgreSQL constraint behind an IntegrityError, as psycopg reports it."""
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None)


# --- Notices enqueued after commit, recorded instead of sent to a broker -----------------------


class NoticeTaskRecorder:
    """Stands in for ``financing.tasks.notice_send``: ``delay`` records, sends nothing.

    The disbursement looks the task up when its ``on_commit`` callback runs, so the
    product's own after-commit path calls this; transactional tests then leave no stray
    messages on the shared broker for some later worker to pick up.
    """

    def __init__(self) -> None:
        self.notice_ids: list[int] = []

    def delay(self, notice_id: int, *args: Any, **kwargs: Any) -> None:
        self.notice_ids.append(notice_id)


@pytest.fixture
def notices_enqueued(monkeypatch: pytest.MonkeyPatch) -> NoticeTaskRecorder:
    import financing.tasks

    recorder = NoticeTaskRecorder()
    monkeypatch.setattr(financing.tasks, "notice_send", recorder)
    return recorder


def waiting_for_a_lock(pid: int) -> bool:
    """Whether the backend ``pid`` waits for a lock now (pg_locks is read live; pg_stat_activity
    would be one snapshot per transaction)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = %s AND NOT granted)", [pid]
        )
        return bool(cursor.fetchone()[0])


RACE_WAIT_SECONDS = 30


def staged_race(holder: Callable[[], Any], waiter: Callable[[], Any]) -> tuple[Any, Any]:
    """Run ``holder`` in a transaction, then ``waiter`` on a connection of its own, and commit
    the holder's transaction the moment the waiter waits for a lock: the race is staged, not
    hoped for. Returns what each returned, or the exception it raised."""
    holding = threading.Event()
    waiter_pid: list[int] = []
    outcome: dict[str, Any] = {}

    def hold() -> None:
        try:
            with transaction.atomic():
                outcome["holder"] = holder()
                holding.set()
                deadline = time.monotonic() + RACE_WAIT_SECONDS
                while not (waiter_pid and waiting_for_a_lock(waiter_pid[0])):
                    assert time.monotonic() < deadline, "the waiter never waited for a lock"
                    time.sleep(0.01)
        except Exception as exc:  # the test judges it
            outcome["holder"] = exc
        finally:
            holding.set()
            connections.close_all()

    def wait() -> None:
        try:
            assert holding.wait(RACE_WAIT_SECONDS)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                waiter_pid.append(cursor.fetchone()[0])
            outcome["waiter"] = waiter()
        except Exception as exc:  # the test judges it
            outcome["waiter"] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=f, daemon=True) for f in (hold, wait)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(RACE_WAIT_SECONDS * 2)
    assert not any(thread.is_alive() for thread in threads), "deadlock"
    return outcome["holder"], outcome["waiter"]
