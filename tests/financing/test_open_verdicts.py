"""Issue 13: the portal's dashboard, its lists of receivables and of fundable invoices judge only
the invoices that may be fundable today (and the page shown), so a merchant's history of paid
invoices does not slow them, and they say what judging every invoice says."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from financing.eligibility import Code, open_invoices, open_verdicts, verdicts
from financing.models import Facility
from portal.advances.selectors import fundable_receivables
from portal.receivables.selectors import (
    ReceivableFilter,
    receivables_for_merchant,
    receivables_judged,
)
from tests.financing.conftest import Trade

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def history(trade: Trade, facility: Facility) -> dict[str, str]:
    """One invoice for each way out of the candidates, and the candidates beside them."""
    [eligible, paid, credited] = trade.fundable(3)
    trade.paid("PO-1", paid, "1000.00")
    trade.credited(credited)
    [past_due] = trade.fundable(1, due_in_days=-1)
    [due_today] = trade.fundable(1, due_in_days=0)
    [due_tomorrow] = trade.fundable(1, due_in_days=1)  # a candidate: too close for the facility
    trade.order("ORD-UNDELIVERED")
    trade.invoice("INV-UNDELIVERED", "ORD-UNDELIVERED")  # a candidate the evidence refuses
    return {
        "eligible": eligible,
        "paid": paid,
        "credited": credited,
        "past_due": past_due,
        "due_today": due_today,
        "due_tomorrow": due_tomorrow,
        "undelivered": "INV-UNDELIVERED",
    }


def test_only_invoices_that_fail_on_their_own_columns_are_left_unjudged(
    trade: Trade, history: dict[str, str], today: date
) -> None:
    every = {v.ref: v for v in verdicts(trade.merchant, today)}
    judged = {v.ref: v for v in open_verdicts(trade.merchant, today)}

    assert judged == {ref: every[ref] for ref in judged}  # the same verdicts, not new ones
    left = {name for name, ref in history.items() if ref not in judged}
    assert left == {"paid", "credited", "past_due", "due_today"}
    own_columns = {Code.PAID, Code.CREDITED, Code.PAST_DUE, Code.TOO_CLOSE_TO_DUE}
    for name in left:
        assert own_columns & {r.code for r in every[history[name]].reasons}, name
    assert [v.ref for v in judged.values() if v.eligible] == [
        v.ref for v in every.values() if v.eligible
    ]


def test_the_list_of_fundable_invoices_still_counts_every_other_one(
    trade: Trade, history: dict[str, str], today: date
) -> None:
    every = verdicts(trade.merchant, today)

    fundable = fundable_receivables(merchant=trade.merchant, today=today)

    assert [v.ref for v in fundable.verdicts] == [history["eligible"]]
    assert fundable.not_fundable == len(every) - 1


def test_the_receivables_list_says_what_judging_every_invoice_says(
    trade: Trade, history: dict[str, str], today: date
) -> None:
    every = {v.ref: v for v in verdicts(trade.merchant, today)}

    listed = receivables_for_merchant(
        merchant=trade.merchant, today=today, filters=ReceivableFilter()
    )
    shown = receivables_judged(merchant=trade.merchant, today=today, listed=listed[2:5])

    # verdicts() go by due date, then ref; the list the other way: latest due first.
    assert [row.ref for row in listed] == list(reversed(every))
    assert {row.ref: row.eligible for row in listed} == {r: v.eligible for r, v in every.items()}
    assert [row.verdict for row in shown] == [every[row.ref] for row in listed[2:5]]
    fundable = receivables_for_merchant(
        merchant=trade.merchant, today=today, filters=ReceivableFilter(eligible=True)
    )
    assert [row.ref for row in fundable] == [history["eligible"]]


@pytest.mark.postgres
def test_the_open_invoices_are_found_by_due_date_not_among_the_whole_history(
    trade: Trade, today: date
) -> None:
    issued = today - timedelta(days=90)
    for n in range(1_000):  # invoices long past due, as a merchant's history piles up
        trade.order(f"ORD-OLD-{n}", "10.00")
        trade.invoice(f"INV-OLD-{n}", f"ORD-OLD-{n}", "10.00", due_in_days=-60, issue_date=issued)
    [fundable] = trade.fundable(1)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE ledger_invoice")

    with CaptureQueriesContext(connection) as queries:
        found = open_invoices(trade.merchant, today)
    [read] = queries.captured_queries
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {read['sql']}")
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "invoice_due_ref_idx" in plan, plan
    assert [i.ref for i in found] == [fundable]
