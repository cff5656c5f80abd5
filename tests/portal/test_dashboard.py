"""The dashboard's figures against a seeded scenario, and its alerts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from financing.accounts import recourse_owed
from financing.models import Assignment, Blacklisting, EarlyWarning, SuspenseItem
from portal.dashboard.selectors import dashboard_alerts, dashboard_figures, funded_vs_repaid
from tests.financing.conftest import TODAY
from tests.financing.settlement_helpers import balance, payout, settle_pending
from tests.portal.conftest import Scenario, portal_sign_in


@pytest.mark.django_db
def test_figures_of_the_seeded_scenario(scenario: Scenario) -> None:
    [eur] = dashboard_figures(merchant=scenario.a, today=TODAY)
    # Three eligible invoices of 500.00 at an 80% advance rate; the line has room for all.
    assert eur.currency == "EUR"
    assert eur.eligible_count == 3
    assert eur.available_minor == 3 * 40_000
    assert eur.room_minor == 10_000_000 - 160_000
    # Two 1,000.00 invoices financed at 800.00 each; the first was paid in full.
    assert eur.outstanding_minor == 80_000
    assert eur.outstanding_advances == 1
    assert eur.due_soon_minor == 80_000  # due in 20 days
    # The second invoice's reserve is still held; the first's was released when it closed.
    assert eur.reserve_minor == 20_000
    assert eur.reserve_minor == -balance("merchant_reserve_payable", scenario.a.public_id)
    assert (eur.recourse_minor, eur.suspense_minor, eur.suspense_count) == (0, 0, 0)
    # B has invoices but no credit line and owes nothing: no figures (the page says why).
    assert dashboard_figures(merchant=scenario.b, today=TODAY) == []


@pytest.mark.django_db
def test_recourse_and_suspense_come_from_the_books(scenario: Scenario, trade, now) -> None:
    # A credit note after funding (recourse) and a payout carrying more than its lines (suspense).
    trade.credited(scenario.financed[1], "300.00")
    payout(trade, [(scenario.financed[1], "100.00")], amount="150.00")
    settle_pending(now)
    [eur] = dashboard_figures(merchant=scenario.a, today=TODAY)
    assert eur.recourse_minor == recourse_owed(scenario.a).get("EUR", 0)
    assert eur.recourse_minor > 0
    open_items = SuspenseItem.objects.filter(merchant=scenario.a, status="open")
    assert eur.suspense_minor == sum(i.amount_minor for i in open_items) == 5_000
    assert eur.suspense_count == 1
    unpaid = Assignment.objects.get(invoice_ref=scenario.financed[1])
    assert eur.outstanding_minor == unpaid.advance_minor - unpaid.principal_repaid_minor
    messages = [a.message for a in dashboard_alerts(merchant=scenario.a, today=TODAY)]
    assert any("could not be matched" in m for m in messages)


@pytest.mark.django_db
def test_a_blacklisted_merchant_can_get_nothing_and_is_told(scenario: Scenario, now) -> None:
    Blacklisting.objects.create(merchant=scenario.a, reason="Overdue", created_at=now)
    [eur] = dashboard_figures(merchant=scenario.a, today=TODAY)
    assert eur.available_minor == 0
    [alert] = dashboard_alerts(merchant=scenario.a, today=TODAY)
    assert alert.level == "danger" and "paused" in alert.message


@pytest.mark.django_db
def test_funded_and_repaid_by_week(scenario: Scenario) -> None:
    chart = funded_vs_repaid(merchant=scenario.a, currency="EUR", today=TODAY)
    assert len(chart.labels) == len(chart.funded_minor) == len(chart.repaid_minor) == 13
    assert sum(chart.funded_minor) == scenario.advance.advance_minor
    assert sum(chart.repaid_minor) == 80_000
    assert chart.labels[-1] <= TODAY.isoformat()


@pytest.mark.django_db
def test_the_page_shows_the_figures_in_english_and_chinese(scenario: Scenario) -> None:
    client = portal_sign_in(scenario.user_a)
    page = client.get(reverse("portal:dashboard")).content.decode()
    assert 'data-figure="available">1,200.00 EUR' in page
    assert "Available to finance now" in page
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/portal/"})
    page = client.get(reverse("portal:dashboard")).content.decode()
    assert "当前可融资" in page
    assert '<html lang="zh-hans">' in page
    # The admin and the API keep English whatever the portal's visitor chose.
    assert client.get("/").content.decode().count("当前") == 0


@pytest.mark.django_db
def test_a_warning_of_invoices_paid_late_or_short_names_them(scenario: Scenario, now) -> None:
    def warn(kind: str, refs: list[str], count: int, days_ago: int = 0) -> None:
        rows = [{"invoice_ref": ref} for ref in refs]
        EarlyWarning.objects.create(
            merchant=scenario.a,
            kind=kind,
            observed_on=TODAY - timedelta(days=days_ago),
            evidence={"count": count, "receivables": rows, "summary": "for officers"},
            created_at=now,
        )

    warn("payouts_short", ["INV-OLD"], 1, days_ago=2)  # an earlier run's: the newest counts
    warn("payouts_short", ["INV-7"], 1)
    warn("payouts_late", [f"INV-{n}" for n in range(20)], 23)
    warn("orders_drop", [], 0)
    messages = [a.message for a in dashboard_alerts(merchant=scenario.a, today=TODAY)]
    assert messages == [
        "Your orders fell sharply this month; the bank may ask why.",
        "Some financed invoices are past due and unpaid. Invoices: "
        + ", ".join(f"INV-{n}" for n in range(20))
        + " and 3 more.",
        "Some financed invoices were paid short. Invoice: INV-7.",
    ]
    assert dashboard_alerts(merchant=scenario.b, today=TODAY) == []
