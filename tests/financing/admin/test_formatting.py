"""Rates, facility term changes and refusals as the financing admin writes them."""

from __future__ import annotations

from financing.admin.formatting import diff_html, percent_of_bp, refusal
from financing.exceptions import AdvanceRefused, WrongState


def test_basis_points_read_as_percent() -> None:
    assert [percent_of_bp(bp) for bp in (0, 5, 1800, 10_000)] == [
        "0.00 %",
        "0.05 %",
        "18.00 %",
        "100.00 %",
    ]


def test_a_diff_names_only_what_changed_with_money_and_rates_readable() -> None:
    before = {"limit_minor": 10_000_000, "annual_rate_bp": 1200, "max_tenor_days": 90}
    after = {"limit_minor": 12_345_000, "annual_rate_bp": 1250, "max_tenor_days": 90}

    shown = str(diff_html(before, after, "EUR"))

    assert "<b>limit_minor</b>: 100,000.00 EUR → 123,450.00 EUR" in shown
    assert "<b>annual_rate_bp</b>: 12.00 % (1200 bp) → 12.50 % (1250 bp)" in shown
    assert "max_tenor_days" not in shown
    assert str(diff_html({}, {"limit_minor": 100}, "EUR")).startswith("opened with")
    assert str(diff_html(after, after, "EUR")) == "no term changed"


def test_a_refusal_reads_the_services_sentence_and_each_invoices_reasons() -> None:
    assert refusal(WrongState("Advance adv_1 is rejected.")) == "Advance adv_1 is rejected."
    refused = AdvanceRefused("Not fundable.", {"INV-1": [("overdue", "Past due.")]})
    assert refusal(refused) == "Not fundable. INV-1: overdue (Past due.)"
