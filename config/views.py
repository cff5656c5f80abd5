"""The front door: where a visitor finds the officer admin and what runs behind it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from ledger.models import Entry, LedgerVerification
from merchants.models import Marketplace, Merchant


def home(request: HttpRequest) -> HttpResponse:
    context = {
        "marketplaces": Marketplace.objects.count(),
        "merchants": Merchant.objects.count(),
        "entries": Entry.objects.count(),
        "last_verification": LedgerVerification.objects.order_by("-started_at").first(),
    }
    return render(request, "home.html", context)
