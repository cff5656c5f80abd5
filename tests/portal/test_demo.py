"""The logins `make demo` prints lead into the portal, on the demo's data (SQLite too)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.portal.conftest import REAL_LOCALDATE


@pytest.mark.sqlite_smoke
@pytest.mark.django_db
def test_the_printed_merchant_logins_open_the_portal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timezone, "localdate", REAL_LOCALDATE)  # the demo is seeded for today
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_financing_demo", stdout=StringIO())
    for username in ("merchant1", "merchant2", "merchant3"):
        client = Client()
        response = client.post(
            reverse("portal:login"), {"username": username, "password": "chainfin-demo"}
        )
        assert response.status_code == 302, username
        assert client.get(reverse("portal:dashboard")).status_code == 200
        listing = client.get(reverse("portal:receivables"))
        assert listing.status_code == 200
        row = listing.context["rows"][0][0]
        detail = client.get(reverse("portal:receivable", args=[row.ref]))
        assert detail.status_code == 200
        assert detail.context["detail"].verified, username
