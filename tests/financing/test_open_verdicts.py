"""Issue 13: the portal's dashboard and its list of fundable invoices judge only the invoices
that may be fundable today, so a merchant's history of paid invoices does not slow them."""

from __future__ import annotations

from datetime import date

import pytest

from financing.eligibility import Code, open_verdicts, verdicts
from financing.models import Facility
from portal.advances.selectors import fundable_receivables
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
