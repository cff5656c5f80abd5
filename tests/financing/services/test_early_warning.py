"""Monitoring after funding (issue 9, item 6): the daily early-warning list, from real evidence.

The month measured is the 30 days before ``now``; its baseline the 90 days before that. Every
merchant here has an advance outstanding unless the test says otherwise; the advance's own
receivable adds one order (30 days ago, inside the month) and one delivery to each count.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import count
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction

from financing.models import Advance, EarlyWarning, Facility
from financing.risk import risk_assess
from financing.services.early_warning import early_warnings_run
from ledger.events import event_parse, format_timestamp
from ledger.services import NewEntry, entries_append
from tests.financing.conftest import TODAY, Trade
from tests.financing.settlement_helpers import disbursed, payout, settle_pending

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

_serial = count(1)
Kind = EarlyWarning.Kind


class History:
    """A merchant's trade on given days, appended in one batch through the ledger's service."""

    def __init__(self, trade: Trade) -> None:
        self.trade = trade
        self.raws: list[dict[str, Any]] = []

    def _add(self, type_: str, ref: str, days_ago: float, data: dict[str, Any]) -> None:
        at = self.trade.now - timedelta(days=days_ago)
        self.raws.append(
            {"type": type_, "ref": ref, "occurred_at": format_timestamp(at), "data": data}
        )

    def orders(
        self, n: int, days_ago: int, delivered: int | None = None, returned: int = 0
    ) -> list[str]:
        """``n`` orders placed ``days_ago``; the first ``delivered`` (all by default) delivered
        a day later, the first ``returned`` of those sent back the day after."""
        refs = []
        for i in range(n):
            ref = f"EW-{next(_serial)}"
            self._add("order.placed", ref, days_ago, {"currency": "EUR", "amount": "100.00"})
            if i < (n if delivered is None else delivered):
                shipment = {"order_ref": ref}
                self._add("shipment.dispatched", f"S-{ref}", days_ago - 0.5, shipment)
                self._add("shipment.delivered", f"S-{ref}", days_ago - 1, shipment)
                if i < returned:
                    self._add("shipment.returned", f"S-{ref}", days_ago - 2, shipment)
            refs.append(ref)
        return refs

    def credit_notes(self, n: int, days_ago: int) -> None:
        """``n`` invoices issued ``days_ago`` + 1, each credited 10.00 ``days_ago``."""
        issued = (self.trade.today - timedelta(days=days_ago + 1)).isoformat()
        for ref in self.orders(n, days_ago + 2):
            invoice = f"I-{ref}"
            self._add(
                "invoice.issued",
                invoice,
                days_ago + 1,
                {
                    "currency": "EUR",
                    "amount": "100.00",
                    "order_ref": ref,
                    "issue_date": issued,
                    "due_date": (self.trade.today + timedelta(days=30)).isoformat(),
                    "debtor": {"kind": "marketplace", "name": "Acme Marketplace"},
                },
            )
            self._add(
                "invoice.credited",
                f"CN-{invoice}",
                days_ago,
                {
                    "currency": "EUR",
                    "amount": "10.00",
                    "invoice_ref": invoice,
                    "issue_date": (self.trade.today - timedelta(days=days_ago)).isoformat(),
                },
            )

    def append(self) -> None:
        ordered = sorted(self.raws, key=lambda raw: raw["occurred_at"])  # projectors need order
        merchant_id = self.trade.merchant.pk
        entries = [NewEntry(merchant_id, event_parse(raw)) for raw in ordered]
        entries_append(source=self.trade.source, entries=entries, now=self.trade.now)
        self.raws = []


def steady(history: History) -> None:
    """Ten orders a month, all delivered, over the three months before the last 30 days."""
    for days_ago in (45, 75, 105):
        history.orders(10, days_ago)


@pytest.fixture
def outstanding(trade: Trade, facility: Facility, officer: User, now: datetime) -> Advance:
    [ref] = trade.fundable(1)
    return disbursed(trade, [ref], officer, now)


def warnings(trade: Trade) -> dict[str, dict[str, Any]]:
    rows = EarlyWarning.objects.filter(merchant=trade.merchant)
    return {w.kind: w.evidence for w in rows}


def test_a_merchant_trading_as_before_raises_no_warning(
    trade: Trade, outstanding: Advance, now: datetime
) -> None:
    history = History(trade)
    steady(history)
    history.orders(9, days_ago=10, returned=1)  # with the advance's own: 10 orders this month
    history.credit_notes(1, days_ago=60)
    history.credit_notes(1, days_ago=5)
    history.append()

    assert early_warnings_run(now=now) == 0
    assert not EarlyWarning.objects.exists()


def test_falling_orders_and_deliveries_warn_with_the_figures(
    trade: Trade, outstanding: Advance, now: datetime
) -> None:
    history = History(trade)
    steady(history)
    history.orders(2, days_ago=10)  # 3 this month with the advance's own, against 10 a month
    history.append()

    assert early_warnings_run(now=now) == 2

    found = warnings(trade)
    assert set(found) == {Kind.ORDERS_DROP, Kind.DELIVERIES_DROP}
    assert found[Kind.ORDERS_DROP] == {
        "metric": "orders",
        "last_30_days": 3,
        "prior_90_days": 30,
        "monthly_average": "10.0",
        "change_bp": -7000,
        "threshold_bp": 4000,
        "summary": "3 orders in the last 30 days against a monthly average of 10.0 over the "
        "90 days before: down 70.0 %, more than the 40.0 % that warns.",
    }
    assert found[Kind.DELIVERIES_DROP]["last_30_days"] == 3
    [warning] = EarlyWarning.objects.filter(kind=Kind.ORDERS_DROP)
    assert warning.observed_on == TODAY


def test_deliveries_that_stall_while_orders_keep_coming_warn_alone(
    trade: Trade, outstanding: Advance, now: datetime
) -> None:
    history = History(trade)
    steady(history)
    history.orders(9, days_ago=10, delivered=2)  # orders as usual, 3 of 10 delivered
    history.append()

    early_warnings_run(now=now)

    assert set(warnings(trade)) == {Kind.DELIVERIES_DROP}


@pytest.mark.parametrize(
    ("drop_bp", "warns"),
    # 6 this month against 10 a month is a fall of exactly 40 %: more than 39 %, not than 40 %.
    [(3900, True), (4000, False)],
)
def test_the_share_that_warns_is_a_setting(
    trade: Trade,
    outstanding: Advance,
    now: datetime,
    settings: Any,
    drop_bp: int,
    warns: bool,
) -> None:
    settings.EARLY_WARNING_DROP_BP = drop_bp
    history = History(trade)
    steady(history)
    history.orders(5, days_ago=10)
    history.append()

    early_warnings_run(now=now)

    assert (Kind.ORDERS_DROP in warnings(trade)) is warns


def test_a_quiet_merchant_falling_from_little_is_noise_not_a_warning(
    trade: Trade, outstanding: Advance, now: datetime
) -> None:
    history = History(trade)
    history.orders(6, days_ago=60)  # two a month before, one (the advance's) now
    history.append()

    early_warnings_run(now=now)

    assert not warnings(trade)


def test_a_spike_of_returns_warns(trade: Trade, outstanding: Advance, now: datetime) -> None:
    history = History(trade)
    steady(history)
    history.orders(1, days_ago=100, returned=1)  # one return in three months
    history.orders(9, days_ago=10, returned=4)
    history.append()

    early_warnings_run(now=now)

    found = warnings(trade)
    assert set(found) == {Kind.RETURNS_SPIKE}
    assert (
        found[Kind.RETURNS_SPIKE]["last_30_days"],
        found[Kind.RETURNS_SPIKE]["prior_90_days"],
    ) == (
        4,
        1,
    )
    assert (
        "4 returns in the last 30 days against a monthly average of 0.3"
        in (found[Kind.RETURNS_SPIKE]["summary"])
    )


def test_a_spike_of_credit_notes_warns_even_from_none(
    trade: Trade, outstanding: Advance, now: datetime
) -> None:
    history = History(trade)
    steady(history)
    history.orders(6, days_ago=10)
    history.credit_notes(3, days_ago=5)
    history.append()

    early_warnings_run(now=now)

    found = warnings(trade)
    assert set(found) == {Kind.CREDIT_NOTES_SPIKE}
    assert found[Kind.CREDIT_NOTES_SPIKE]["summary"] == (
        "3 credit notes in the last 30 days against none in the 90 days before."
    )


def test_financed_receivables_past_due_and_unpaid_warn_as_late_payouts(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    late, paid = trade.fundable(2, due_in_days=10)
    advance = disbursed(trade, [late, paid], officer, now)
    payout(trade, [(paid, "1000.00")])  # paid on time: never late
    settle_pending(now)
    later = now + timedelta(days=15)  # five days past due

    early_warnings_run(now=later)

    found = warnings(trade)
    assert set(found) == {Kind.PAYOUTS_LATE}
    assert found[Kind.PAYOUTS_LATE] == {
        "count": 1,
        "oldest_days_past_due": 5,
        "owed": {"EUR": "1000.00"},
        "receivables": [
            {
                "invoice_ref": late,
                "advance_ref": advance.ref,
                "currency": "EUR",
                "due_date": (TODAY + timedelta(days=10)).isoformat(),
                "face": "1000.00",
                "paid": "0.00",
                "diluted": "0.00",
                "owed": "1000.00",
                "days_past_due": 5,
            }
        ],
        "summary": "1 financed receivable(s) past due and unpaid, the oldest by 5 day(s): "
        "1,000.00 EUR still owed by their debtors.",
    }


def test_financed_receivables_paid_short_warn_but_a_credit_note_explains_a_shortfall(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    short, credited = trade.fundable(2)
    disbursed(trade, [short, credited], officer, now)
    trade.credited(credited, "100.00")
    payout(trade, [(short, "600.00"), (credited, "900.00")])
    settle_pending(now)

    early_warnings_run(now=now)

    found = warnings(trade)
    assert set(found) == {Kind.PAYOUTS_SHORT}
    evidence = found[Kind.PAYOUTS_SHORT]
    assert (evidence["count"], evidence["short"]) == (1, {"EUR": "400.00"})
    assert [(r["invoice_ref"], r["paid"], r["owed"]) for r in evidence["receivables"]] == [
        (short, "600.00", "400.00")
    ]


def test_only_merchants_with_money_outstanding_are_watched(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    history = History(trade)
    steady(history)  # and nothing this month: orders fell to the advance's one
    history.append()
    assert early_warnings_run(now=now) == 0  # nothing financed yet

    [ref] = trade.fundable(1)
    advance = disbursed(trade, [ref], officer, now)
    payout(trade, [(ref, "1000.00")])
    settle_pending(now)
    assert Advance.objects.get(pk=advance.pk).status == Advance.Status.REPAID

    assert early_warnings_run(now=now) == 0
    assert not EarlyWarning.objects.exists()


def test_a_rerun_the_same_day_changes_nothing_and_the_next_day_lists_again(
    trade: Trade, outstanding: Advance, now: datetime
) -> None:
    history = History(trade)
    steady(history)
    history.append()
    early_warnings_run(now=now)
    first = list(EarlyWarning.objects.order_by("pk").values())
    assert first[0]["evidence"]["last_30_days"] == 1

    history.orders(1, days_ago=2)  # late news the same day: the morning's list stands
    history.append()
    early_warnings_run(now=now + timedelta(hours=5))

    assert list(EarlyWarning.objects.order_by("pk").values()) == first
    early_warnings_run(now=now + timedelta(days=1))
    next_day = EarlyWarning.objects.filter(observed_on=TODAY + timedelta(days=1))
    # A day on, the advance's order (30 days ago) has left the month; the late news is in it.
    assert {w.kind: w.evidence["last_30_days"] for w in next_day} == {
        Kind.ORDERS_DROP: 1,
        Kind.DELIVERIES_DROP: 2,
    }


def test_without_the_unique_key_a_rerun_would_list_twice(
    trade: Trade, outstanding: Advance, now: datetime
) -> None:
    """Negative control: the once-a-day guarantee is the database's unique key."""
    history = History(trade)
    steady(history)
    history.append()
    [unique] = [c for c in EarlyWarning._meta.constraints if c.name == "earlywarning_once_per_day"]
    with connection.schema_editor() as editor:
        editor.remove_constraint(EarlyWarning, unique)  # rolled back with the test

    early_warnings_run(now=now)
    early_warnings_run(now=now)

    assert EarlyWarning.objects.count() == 2 * len({Kind.ORDERS_DROP, Kind.DELIVERIES_DROP})


def test_the_database_refuses_an_unknown_kind_and_a_second_warning_the_same_day(
    trade: Trade, now: datetime
) -> None:
    row = {"merchant": trade.merchant, "observed_on": TODAY, "created_at": now}
    with pytest.raises(IntegrityError, match="earlywarning_kind_valid"), transaction.atomic():
        EarlyWarning.objects.create(kind="gut_feeling", **row)
    EarlyWarning.objects.create(kind=Kind.PAYOUTS_LATE, **row)
    with pytest.raises(IntegrityError, match="earlywarning_once_per_day"), transaction.atomic():
        EarlyWarning.objects.create(kind=Kind.PAYOUTS_LATE, **row)


def test_an_active_warning_and_recourse_owed_count_in_the_risk_factors(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    [late] = trade.fundable(1, due_in_days=10)
    [credited] = trade.fundable(1)
    disbursed(trade, [late, credited], officer, now)

    def factors(day: int) -> dict[str, tuple[str, int, str]]:
        assessment = risk_assess(trade.merchant, TODAY + timedelta(days=day))
        return {f.name: (f.value, f.points, f.explanation) for f in assessment.factors}

    clean = factors(0)
    assert clean["early_warnings"][:2] == ("0", 10)
    assert clean["recourse_owed"][:2] == ("none", 5)

    trade.credited(credited, "100.00")  # after funding: 100.00 of recourse
    settle_pending(now)
    early_warnings_run(now=now + timedelta(days=15))

    watched = factors(15)
    assert watched["early_warnings"] == (
        "1",
        5,
        "Early warnings in the last 7 days: Financed receivables past due, unpaid. "
        "Each kind costs 5 points.",
    )
    value, points, explanation = watched["recourse_owed"]
    assert (value, points) == ("100.00 EUR", 0)  # 100.00 of 2,000.00 invoiced: 5.0 %
    assert "5.0% of the invoiced amount" in explanation
    assert factors(21)["early_warnings"][:2] == ("1", 5)  # a week after it was seen
    assert factors(22)["early_warnings"][:2] == ("0", 10)  # no longer active
