"""Risk assessment from a merchant's own chain: each factor measured from evidence we wrote."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from financing.risk import Assessment, risk_assess
from merchants.models import Merchant
from tests.financing.conftest import TODAY, Trade

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def buyer(n: int) -> dict[str, str]:
    return {"kind": "business", "name": f"Buyer {n} AG", "tax_id": f"DE7000000{n:02d}"}


def history(
    trade: Trade, *, orders: int = 10, debtors: int = 5, returned: int = 0, credited: int = 0
) -> None:
    """``orders`` delivered orders of 1,000.00, each invoiced in full, the first 400 days ago.

    Invoices go round-robin to ``debtors`` buyers; the first ``returned`` orders come back and
    the first ``credited`` invoices get a 100.00 credit note.
    """
    for n in range(orders):
        if n == 0:
            data = {"currency": "EUR", "amount": "1000.00"}
            trade.append("order.placed", "ORD-0", data, days_ago=400)
        else:
            trade.order(f"ORD-{n}")
        trade.invoice(f"INV-{n}", f"ORD-{n}", debtor=buyer(n % debtors))
        trade.delivered(f"ORD-{n}")
        if n < returned:
            trade.returned(f"ORD-{n}")
        if n < credited:
            trade.credited(f"INV-{n}", "100.00")


def by_name(assessment: Assessment) -> dict[str, tuple[str, int]]:
    return {f.name: (f.value, f.points) for f in assessment.factors}


def assert_well_formed(assessment: Assessment) -> None:
    for factor in assessment.factors:
        assert 0 <= factor.points <= factor.max_points, factor
        assert factor.explanation
    assert assessment.score == sum(f.points for f in assessment.factors)
    assert sum(f.max_points for f in assessment.factors) == 100
    assert 0 <= assessment.score <= 100


@pytest.fixture
def new_trade(
    make_merchant: Callable[..., Merchant], trade_for: Callable[..., Trade]
) -> Callable[[], Trade]:
    return lambda: trade_for(make_merchant(kyc_status=Merchant.KycStatus.VERIFIED))


def test_a_clean_history_outscores_returns_credit_notes_and_concentration(
    new_trade: Callable[[], Trade],
) -> None:
    clean, risky = new_trade(), new_trade()
    history(clean, debtors=5)
    history(risky, debtors=1, returned=2, credited=3)

    good = risk_assess(clean.merchant, TODAY)
    bad = risk_assess(risky.merchant, TODAY)

    assert by_name(good) == {
        "history_length": ("400 days", 10),
        "delivery_rate": ("100.0%", 15),
        "return_rate": ("0.0%", 10),
        "credit_note_rate": ("0.0%", 10),
        "dilution": ("0.0%", 10),
        "debtor_concentration": ("20.0%", 10),  # five buyers, 2,000.00 each
        "on_time_repayment": ("no history", 5),
        "overdue_history": ("0", 10),
        "early_warnings": ("0", 10),
        "recourse_owed": ("none", 5),
    }
    assert by_name(bad) == {
        "history_length": ("400 days", 10),
        "delivery_rate": ("100.0%", 15),  # returned goods were delivered first
        "return_rate": ("20.0%", 0),  # 2 of 10 orders came back
        "credit_note_rate": ("30.0%", 0),  # 3 of 10 invoices credited
        "dilution": ("3.0%", 7),  # 300.00 of 10,000.00
        "debtor_concentration": ("100.0%", 0),  # one buyer owes it all
        "on_time_repayment": ("no history", 5),
        "overdue_history": ("0", 10),
        "early_warnings": ("0", 10),
        "recourse_owed": ("none", 5),
    }
    assert (good.score, good.grade) == (95, "A")
    assert (bad.score, bad.grade) == (62, "C")
    explained = {f.name: f.explanation for f in bad.factors}
    assert explained["return_rate"] == "2 of 10 shipped orders came back."
    assert explained["credit_note_rate"] == "3 of 10 invoices were credited in part or whole."
    for assessment in (good, bad):
        assert_well_formed(assessment)


@pytest.mark.parametrize(
    ("returned", "points"),
    # Of 20 orders: 0 %, 5 % (the 3 % band), 10 % (the 8 % band), 15 % (the worst band).
    [(0, 10), (1, 7), (2, 3), (3, 0)],
)
def test_return_rate_bands(new_trade: Callable[[], Trade], returned: int, points: int) -> None:
    trade = new_trade()
    history(trade, orders=20, returned=returned)

    value, scored = by_name(risk_assess(trade.merchant, TODAY))["return_rate"]

    assert value == f"{returned * 5}.0%"  # e.g. 2 of 20 returned: "10.0%"
    assert scored == points


def test_a_merchant_without_evidence_gets_a_score(merchant: Merchant) -> None:
    assessment = risk_assess(merchant, TODAY)

    assert_well_formed(assessment)
    factors = by_name(assessment)
    assert factors["history_length"] == ("0 days", 0)
    assert factors["delivery_rate"][1] == 0  # nothing delivered earns nothing
    assert factors["on_time_repayment"] == ("no history", 5)


def test_a_short_history_earns_less(new_trade: Callable[[], Trade]) -> None:
    trade = new_trade()
    trade.fundable(3)  # the earliest evidence is 30 days old

    assert by_name(risk_assess(trade.merchant, TODAY))["history_length"] == ("30 days", 0)


def test_one_buyer_under_several_spellings_is_one_debtor(new_trade: Callable[[], Trade]) -> None:
    trade = new_trade()
    spellings = ["Big Buyer GmbH", "BIG BUYER GMBH", "Big Buyer G.m.b.H.", "Big-Buyer GmbH"]
    for n, name in enumerate([*spellings, None]):
        trade.order(f"ORD-{n}")
        debtor = buyer(99) if name is None else {"kind": "business", "name": name, "tax_id": "DE1"}
        trade.invoice(f"INV-{n}", f"ORD-{n}", debtor=debtor)
        trade.delivered(f"ORD-{n}")

    assert by_name(risk_assess(trade.merchant, TODAY))["debtor_concentration"][0] == "80.0%"
