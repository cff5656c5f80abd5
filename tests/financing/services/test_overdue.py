"""The overdue sweep: late fees by the day, on the books and on the chain, then the blacklist.

One 4,000.00 advance (5,000.00 face at 80 %) is disbursed on 2026-11-01 and due 2026-11-11.
The facility charges 24 % a year late, ACT/360, and blacklists after 30 days past due.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from financing import tasks
from financing.books.models import Account, JournalEntry
from financing.exceptions import AdvanceRefused, NotPermitted, WrongState
from financing.models import Advance, Blacklisting, Facility
from financing.pricing import DayCount, late_fee
from financing.risk import risk_assess
from financing.services.blacklist import blacklist_lift_propose
from financing.services.decisions import advance_approve
from financing.services.overdue import overdue_sweep
from financing.services.requests import advance_request
from ledger.models import Entry
from tests.financing.conftest import TODAY, Trade, blacklist_lifted, db_counts, facility_terms_set

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

DUE = TODAY + timedelta(days=10)
ADVANCE = 400_000


def at(day: date) -> datetime:
    """Noon UTC on ``day``: when the daily sweep runs."""
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def past_due(days: int) -> datetime:
    return at(DUE + timedelta(days=days))


@pytest.fixture
def advance(trade: Trade, facility: Facility, officer: User, now: datetime) -> Advance:
    refs = trade.fundable(1, amount="5000.00", due_in_days=10)
    requested = advance_request(merchant=trade.merchant, refs=refs, request_key="k", now=now)
    disbursed = advance_approve(advance=requested, officer=officer, now=now)
    assert (disbursed.status, disbursed.advance_minor, disbursed.due_date) == (
        Advance.Status.DISBURSED,
        ADVANCE,
        DUE,
    )
    return disbursed


def fresh(advance: Advance) -> Advance:
    return Advance.objects.get(pk=advance.pk)


def overdue_entries(advance: Advance) -> list[dict[str, Any]]:
    """The data of the advance's ``advance.overdue`` chain entries, oldest first."""
    entries = Entry.objects.filter(
        chain_id=advance.merchant_id, type="advance.overdue", source="chainfin"
    ).order_by("seq")
    return [json.loads(bytes(e.body))["data"] | {"ref": e.external_ref} for e in entries]


def late_postings(advance: Advance, day: date) -> dict[str, int]:
    entry = JournalEntry.objects.get(key=f"late:{advance.ref}:{day.isoformat()}")
    return {p.account.code: p.amount_minor for p in entry.postings.select_related("account")}


def chain_length(advance: Advance) -> int:
    return Entry.objects.filter(chain_id=advance.merchant_id).count()


def new_request(trade: Trade, key: str, now: datetime) -> Advance:
    """A fresh, fundable invoice as of ``now`` (due 45 days after it) requested at ``now``."""
    due_in_days = (now.date() - TODAY).days + 45
    refs = trade.fundable(1, amount="100.00", due_in_days=due_in_days)
    return advance_request(merchant=trade.merchant, refs=refs, request_key=key, now=now)


# Late fees ---------------------------------------------------------------------------------------


def test_an_advance_is_not_overdue_on_its_due_date(advance: Advance) -> None:
    before = db_counts()

    assert overdue_sweep(now=at(DUE)) == 0

    assert fresh(advance).status == Advance.Status.DISBURSED
    assert db_counts() == before


def test_a_day_past_due_the_advance_is_overdue_with_a_late_fee_on_books_and_chain(
    advance: Advance,
) -> None:
    day = DUE + timedelta(days=1)

    assert overdue_sweep(now=at(day)) == 1

    fee = late_fee(ADVANCE, 2400, 1, DayCount.ACT_360)
    assert fee == 267  # 4,000.00 * 24 % * 1 / 360 = 2.666... -> 2.67
    overdue = fresh(advance)
    assert (overdue.status, overdue.late_fee_minor, overdue.late_fee_accrued_to) == (
        Advance.Status.OVERDUE,
        fee,
        day,
    )
    public_id = advance.merchant.public_id
    assert late_postings(advance, day) == {
        f"advances_receivable:{public_id}:EUR": fee,
        "late_fee_income:EUR": -fee,
    }
    receivable = Account.objects.get(code=f"advances_receivable:{public_id}:EUR")
    assert receivable.balance_minor == advance.face_minor + fee
    assert overdue_entries(advance) == [
        {
            "ref": f"{advance.ref}:overdue:{day.isoformat()}",
            "currency": "EUR",
            "amount": "2.67",
            "advance_ref": advance.ref,
            "days_past_due": 1,
        }
    ]


def test_the_sweep_twice_a_day_changes_nothing_the_second_time(advance: Advance) -> None:
    overdue_sweep(now=past_due(1))
    after_first = (db_counts(), chain_length(advance), fresh(advance).late_fee_minor)
    keys = set(JournalEntry.objects.values_list("key", flat=True))

    assert overdue_sweep(now=past_due(1) + timedelta(hours=6)) == 0

    assert (db_counts(), chain_length(advance), fresh(advance).late_fee_minor) == after_first
    assert set(JournalEntry.objects.values_list("key", flat=True)) == keys


def test_each_day_accrues_one_more_day_and_a_missed_day_is_caught_up(advance: Advance) -> None:
    one_day = late_fee(ADVANCE, 2400, 1, DayCount.ACT_360)
    three_days = late_fee(ADVANCE, 2400, 3, DayCount.ACT_360)
    assert (one_day, three_days) == (267, 800)

    overdue_sweep(now=past_due(1))
    overdue_sweep(now=past_due(2))
    assert fresh(advance).late_fee_minor == 2 * one_day
    overdue_sweep(now=past_due(5))  # the sweep did not run on days 3 and 4

    assert fresh(advance).late_fee_minor == 2 * one_day + three_days
    assert fresh(advance).late_fee_accrued_to == DUE + timedelta(days=5)
    assert [(e["days_past_due"], e["amount"]) for e in overdue_entries(advance)] == [
        (1, "2.67"),
        (2, "2.67"),
        (5, "8.00"),
    ]
    assert JournalEntry.objects.filter(key__startswith=f"late:{advance.ref}:").count() == 3


def test_an_advance_without_a_late_fee_still_turns_overdue(
    trade: Trade, open_facility: Callable[..., Facility], officer: User, now: datetime
) -> None:
    open_facility(trade.merchant, late_fee_rate_bp=0)
    refs = trade.fundable(1, amount="5000.00", due_in_days=10)
    requested = advance_request(merchant=trade.merchant, refs=refs, request_key="k", now=now)
    advance = advance_approve(advance=requested, officer=officer, now=now)

    assert overdue_sweep(now=past_due(1)) == 1

    overdue = fresh(advance)
    assert (overdue.status, overdue.late_fee_minor) == (Advance.Status.OVERDUE, 0)
    assert not JournalEntry.objects.filter(key__startswith="late:").exists()
    assert [e["days_past_due"] for e in overdue_entries(advance)] == [1]


# Blacklisting ----------------------------------------------------------------------------------


def test_long_overdue_blacklists_the_merchant_and_refuses_new_requests(
    advance: Advance, trade: Trade
) -> None:
    overdue_sweep(now=past_due(29))
    assert not Blacklisting.objects.exists()

    overdue_sweep(now=past_due(30))

    blacklisting = Blacklisting.objects.get()
    assert (blacklisting.merchant_id, blacklisting.advance_id) == (trade.merchant.pk, advance.pk)
    assert blacklisting.created_by is None  # the system, not an officer
    assert blacklisting.lifted_at is None
    assert "30 days past due" in blacklisting.reason
    with pytest.raises(AdvanceRefused) as refused:
        new_request(trade, "after", past_due(30))
    [pairs] = refused.value.reasons.values()
    assert [code for code, _ in pairs] == ["BLACKLISTED"]
    overdue_sweep(now=past_due(31))
    assert Blacklisting.objects.count() == 1


def test_lifting_needs_the_permission_and_a_reason_and_then_requests_work(
    advance: Advance, trade: Trade, officer: User, auditor: User
) -> None:
    overdue_sweep(now=past_due(30))
    blacklisting = Blacklisting.objects.get()
    later = past_due(30) + timedelta(hours=1)

    with pytest.raises(NotPermitted):
        blacklist_lift_propose(blacklisting=blacklisting, officer=auditor, reason="Paid", now=later)
    for blank in ("", "  "):
        with pytest.raises(WrongState, match="reason"):
            blacklist_lift_propose(
                blacklisting=blacklisting, officer=officer, reason=blank, now=later
            )
    assert Blacklisting.objects.get().lifted_at is None

    lifted = blacklist_lifted(blacklisting, officer, "Payment plan agreed", later)

    assert (lifted.lifted_at, lifted.lifted_by, lifted.lift_reason) == (
        later,
        officer,
        "Payment plan agreed",
    )
    assert new_request(trade, "after-lift", later).status == Advance.Status.REQUESTED
    with pytest.raises(WrongState, match="already lifted"):
        blacklist_lift_propose(
            blacklisting=blacklisting, officer=officer, reason="Again", now=later
        )


def test_a_lifted_blacklisting_is_not_reimposed_by_the_next_sweep(
    advance: Advance, trade: Trade, officer: User
) -> None:
    overdue_sweep(now=past_due(30))
    blacklist_lifted(Blacklisting.objects.get(), officer, "Payment plan agreed", past_due(30))

    overdue_sweep(now=past_due(31))

    assert not Blacklisting.objects.filter(lifted_at__isnull=True).exists()


# The whole story, verified ---------------------------------------------------------------------


def test_books_and_chains_verify_after_disbursement_late_fees_and_blacklisting(
    advance: Advance, trade: Trade, officer: User, capsys: pytest.CaptureFixture[str]
) -> None:
    for days in (1, 1, 2, 5, 30, 31):
        overdue_sweep(now=past_due(days))
    blacklist_lifted(
        Blacklisting.objects.get(lifted_at__isnull=True),
        officer,
        "Payment plan agreed",
        past_due(31),
    )
    assert JournalEntry.objects.filter(key__startswith=f"late:{advance.ref}:").count() == 5
    factors = {f.name: f for f in risk_assess(trade.merchant, DUE).factors}
    assert factors["overdue_history"].value == "1"  # one advance went overdue

    call_command("verify_books")
    call_command("verify_ledger")

    out = capsys.readouterr().out
    assert "OK: " in out and "journal entries" in out and "entries intact" in out


def test_the_celery_task_runs_the_sweep_as_of_now(
    advance: Advance, facility: Facility, senior: User
) -> None:
    # Far from a blacklisting, whatever day the suite runs on.
    facility_terms_set(
        facility, timezone.now(), reason="Test: no blacklisting", blacklist_after_days=100_000
    )
    today = timezone.now().date()
    if today <= DUE:
        pytest.skip(f"the real clock ({today}) is before the advance's due date {DUE}")

    touched = tasks.overdue_sweep_run()

    days = (timezone.now().date() - DUE).days
    overdue = fresh(advance)
    assert touched == 1
    assert overdue.status == Advance.Status.OVERDUE
    assert overdue.late_fee_minor == late_fee(ADVANCE, 2400, days, DayCount.ACT_360)
    assert overdue.late_fee_accrued_to == timezone.now().date()
    assert tasks.overdue_sweep_run() == 0  # the same day again: nothing


# Per receivable, capped, then non-accrual (issue 8, item 11) ----------------------------------


def _two_receivables(
    trade: Trade, open_facility: Callable[..., Facility], officer: User, now: datetime, **terms: Any
) -> Advance:
    """One advance against a 5,000.00 invoice due on DUE and another due 30 days later."""
    open_facility(trade.merchant, checker_threshold_minor=10_000_000, **terms)
    refs = trade.fundable(1, amount="5000.00", due_in_days=10)
    refs += trade.fundable(1, amount="5000.00", due_in_days=40)
    requested = advance_request(merchant=trade.merchant, refs=refs, request_key="k", now=now)
    return advance_approve(advance=requested, officer=officer, now=now)


def test_a_receivable_is_overdue_by_its_own_due_date_and_only_its_part_accrues(
    trade: Trade, open_facility: Callable[..., Facility], officer: User, now: datetime
) -> None:
    advance = _two_receivables(trade, open_facility, officer, now)
    assert advance.due_date == DUE + timedelta(days=30)  # the advance's last due date

    assert overdue_sweep(now=past_due(1)) == 1

    overdue = fresh(advance)
    first, second = overdue.assignments.order_by("id")
    one_day = late_fee(ADVANCE, 2400, 1, DayCount.ACT_360)  # on the first 4,000.00 only
    assert overdue.status == Advance.Status.OVERDUE
    assert (first.late_fee_minor, second.late_fee_minor) == (one_day, 0)
    assert overdue.late_fee_minor == one_day
    assert sum(late_postings(advance, DUE + timedelta(days=1)).values()) == 0
    assert overdue_entries(advance)[-1]["days_past_due"] == 1

    overdue_sweep(now=past_due(31))  # the second is a day past due now

    first, second = fresh(advance).assignments.order_by("id")
    assert second.late_fee_minor == one_day
    assert first.late_fee_minor == one_day + late_fee(ADVANCE, 2400, 30, DayCount.ACT_360)


def test_late_fees_stop_at_the_facilitys_cap_of_the_principal(
    advance: Advance, facility: Facility
) -> None:
    Facility.objects.filter(pk=facility.pk).update(late_fee_cap_bp=10)  # 4.00 on 4,000.00

    overdue_sweep(now=past_due(1))
    overdue_sweep(now=past_due(2))
    overdue_sweep(now=past_due(3))

    assert fresh(advance).late_fee_minor == 400  # 2.67 + 1.33 (capped) + 0
    [assignment] = fresh(advance).assignments.all()
    assert assignment.late_fee_minor == 400
    assert JournalEntry.objects.filter(key__startswith=f"late:{advance.ref}:").count() == 2


def test_past_the_non_accrual_horizon_no_fee_accrues_and_it_is_flagged(
    advance: Advance, facility: Facility
) -> None:
    Facility.objects.filter(pk=facility.pk).update(non_accrual_after_days=3)

    overdue_sweep(now=past_due(2))
    assert fresh(advance).non_accrual_on is None
    overdue_sweep(now=past_due(5))

    accrued = fresh(advance)
    assert accrued.late_fee_minor == late_fee(ADVANCE, 2400, 2, DayCount.ACT_360) + late_fee(
        ADVANCE, 2400, 1, DayCount.ACT_360
    )
    assert accrued.non_accrual_on == DUE + timedelta(days=3)
    overdue_sweep(now=past_due(9))
    assert fresh(advance).late_fee_minor == accrued.late_fee_minor
    assert [e["amount"] for e in overdue_entries(advance)][-1] == "0.00"
