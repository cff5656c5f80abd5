"""The officer admin for financing, driven through the real admin login (password and TOTP).

Every decision is a POST to the admin that lands in ``financing.services``; the tests check what
the officer sees (pages, messages, marks) and what the database holds afterwards. The test
client re-raises any exception a view lets escape, so "no 500" is checked on every request.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from financing.models import Advance, Facility
from financing.services.requests import advance_request
from ledger.money import format_minor_units
from merchants.models import Marketplace, Merchant
from tests.financing.conftest import Trade

SignIn = Callable[[User], Client]


@pytest.fixture
def live(verified_merchant: Merchant, marketplace: Marketplace) -> Trade:
    """Evidence dated from the real clock: the admin decides with ``timezone.now()``."""
    now = timezone.now()
    return Trade(verified_merchant, marketplace.code, now=now, today=now.date())


@pytest.fixture
def line(live: Trade, open_facility: Callable[..., Facility]) -> Facility:
    """A EUR line of 100,000.00 whose second-officer threshold is 5,000.00."""
    return open_facility(live.merchant)


@pytest.fixture
def sign_in(officer_client_factory: Callable[..., Client]) -> SignIn:
    return lambda user: officer_client_factory(user)


def _request(trade: Trade, n: int = 1, amount: str = "1000.00") -> Advance:
    refs = trade.fundable(n, amount=amount, due_in_days=30)
    return advance_request(
        merchant=trade.merchant, refs=refs, request_key=f"key-{refs[0]}", now=timezone.now()
    )


def _url(name: str, advance: Advance | None = None) -> str:
    args = [quote(advance.pk)] if advance is not None else []
    return reverse(f"admin:financing_advance_{name}", args=args)


def _cells(row: str) -> list[str]:
    return [
        " ".join(html.unescape(re.sub(r"<[^>]+>", " ", cell)).split())
        for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    ]


def _rows(page: str, css_class: str) -> list[list[str]]:
    return [_cells(row) for row in re.findall(rf'<tr class="{css_class}">(.*?)</tr>', page, re.S)]


def _evidence(page: str) -> dict[int, list[str]]:
    """Evidence rows by seq: [seq, type, ref, occurred, hash, verified]."""
    return {int(cells[0]): cells for cells in _rows(page, "evidence-entry")}


def _messages(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def _snapshot(advance: Advance) -> dict[str, Any]:
    return dict(Advance.objects.filter(pk=advance.pk).values().get())


def _as_superuser(sql: str, params: list[Any]) -> None:
    """Run ``sql`` with ledger_entry's append-only triggers off, as only a superuser can."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE ledger_entry DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE ledger_entry ENABLE TRIGGER USER")


def _facility_form(facility: Facility, **changes: str) -> dict[str, str]:
    data = {
        "limit_minor": format_minor_units(facility.limit_minor, facility.currency),
        "checker_threshold_minor": format_minor_units(
            facility.checker_threshold_minor, facility.currency
        ),
        **{
            name: str(getattr(facility, name))
            for name in (
                "advance_rate_bp",
                "annual_rate_bp",
                "day_count",
                "max_tenor_days",
                "min_days_to_due",
                "debtor_cap_bp",
                "late_fee_rate_bp",
                "late_fee_cap_bp",
                "non_accrual_after_days",
                "blacklist_after_days",
            )
        },
        "active": "on",
        "reason": "",
        "_save": "Save",
    }
    return data | changes
