"""The dashboard: what the merchant can get now, what it owes, and what needs its attention."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from ledger.money import currency_exponent
from portal.access import merchant_required, portal_context
from portal.dashboard.selectors import dashboard_read


@merchant_required
def dashboard(request: HttpRequest) -> HttpResponse:
    portal = portal_context(request)
    board = dashboard_read(merchant=portal.merchant, today=timezone.localdate())
    charts = [
        {
            "id": f"chart-{chart.currency}",
            "currency": chart.currency,
            "labels": chart.labels,
            # Major units for the axis only; every figure on the page is exact minor units.
            "funded": [m / 10 ** currency_exponent(chart.currency) for m in chart.funded_minor],
            "repaid": [m / 10 ** currency_exponent(chart.currency) for m in chart.repaid_minor],
        }
        for chart in board.charts
    ]
    return render(
        request,
        "portal/dashboard/dashboard.html",
        {"portal": portal, "board": board, "charts": charts, "nav": "dashboard"},
    )
