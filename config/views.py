"""The front door: where a visitor finds the officer admin and what runs behind it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from ledger.models import Entry, LedgerVerification
from merchants.models import Marketplace, Merchant


def home(request: HttpRequest) -> HttpResponse:
    # Business figures are for the bank's staff; an anonymous visitor learns nothing about the
    # book (how many merchants, how much evidence) and the page costs no query.
    if not request.user.is_staff:
        return render(request, "home.html", {})
    context = {
        "figures": {
            "marketplaces": Marketplace.objects.count(),
            "merchants": Merchant.objects.count(),
            "entries": Entry.objects.count(),
        },
        "last_verification": LedgerVerification.objects.order_by("-started_at").first(),
    }
    return render(request, "home.html", context)
