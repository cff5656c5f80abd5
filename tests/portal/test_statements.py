"""Monthly statements tie to the books: each section runs from its account's balance at the
start of the month to its balance at the end, and the summary agrees with what the services
recorded (advances, fees, recourse, payments to the merchant)."""

# The shared fixture is imported; tests naming it as an argument are not redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from django.urls import reverse
from django.utils import translation

from financing.models import Recourse
from financing.reconciliation.payments import Payment
from merchants.models import Membership, Merchant
from portal.statements.selectors import (
    SECTIONS,
    Statement,
    month_bounds,
    statement_months,
    statements_read,
)
from tests.portal.conftest import portal_sign_in
from tests.portal.statements_scenario import (
    DECEMBER,
    DECEMBER_NOW,
    NOVEMBER,
    Activity,
    activity,  # noqa: F401  (a fixture)
)

pytestmark = pytest.mark.django_db


def _summary(statement: Statement) -> dict[str, int]:
    return {line.kind: line.amount_minor for line in statement.summary}


def _section(statement: Statement, name: str) -> tuple[int, int, int]:
    [section] = [s for s in statement.sections if s.name == name]
    return section.opening_minor, sum(x.amount_minor for x in section.lines), section.closing_minor


def test_the_months_with_activity_newest_first(activity: Activity) -> None:
    months = statement_months(merchant=activity.merchant)
    assert [(m.month, m.currencies) for m in months] == [
        (DECEMBER, ("EUR",)),
        (NOVEMBER, ("EUR",)),
    ]


@pytest.mark.parametrize("month", ["november", "december"])
def test_each_section_is_its_accounts_movement_in_the_month(activity: Activity, month: str) -> None:
    start, end, first = {
        "november": ({}, activity.before_december, NOVEMBER),
        "december": (activity.before_december, activity.after_december, DECEMBER),
    }[month]
    [statement] = statements_read(merchant=activity.merchant, month=first)
    assert statement.currency == "EUR"
    for name, (_, sign) in SECTIONS.items():
        opening, moved, closing = (
            _section(statement, name)
            if any(s.name == name for s in statement.sections)
            else (0, 0, 0)
        )
        assert opening == sign * start.get(name, 0), name
        assert closing == sign * end[name], name
        assert moved == closing - opening, name


def test_the_summary_agrees_with_what_the_services_recorded(activity: Activity) -> None:
    advance = activity.advance
    [november] = statements_read(merchant=activity.merchant, month=NOVEMBER)
    [december] = statements_read(merchant=activity.merchant, month=DECEMBER)
    first, second = _summary(november), _summary(december)
    assert first["advances_disbursed"] == advance.advance_minor > 0
    assert first["discount_fees"] == advance.fee_minor > 0
    assert second["advances_disbursed"] == second["discount_fees"] == 0

    def paid(month_start: object, kind: str) -> int:
        payments = Payment.objects.filter(merchant=activity.merchant, kind=kind)
        if month_start == DECEMBER:
            return sum(p.amount_minor for p in payments if p.created_at >= DECEMBER_NOW)
        return sum(p.amount_minor for p in payments if p.created_at < DECEMBER_NOW)

    assert first["paid_to_you"] == paid(NOVEMBER, Payment.Kind.DISBURSEMENT)
    assert second["paid_to_you"] == paid(DECEMBER, Payment.Kind.RELEASE) > 0
    raised = sum(
        Recourse.objects.filter(merchant=activity.merchant).values_list("amount_minor", flat=True)
    )
    assert second["recourse_raised"] == raised == 10000
    # The second payout's release paid the recourse back first.
    assert second["recourse_recovered"] == raised
    # Two invoices settled: everything their buyers paid, less the credit note's 100.00.
    assert second["repayments"] == 1000_00 + 900_00
    assert second["reserve_releases"] == -_section(december, "reserve")[1] > 0


def test_another_merchants_activity_never_shows(
    activity: Activity, make_merchant: Callable[..., Merchant], make_portal_user
) -> None:
    other = make_merchant()
    assert statement_months(merchant=other) == []
    assert statements_read(merchant=other, month=DECEMBER) == []
    client = portal_sign_in(make_portal_user(other))
    page = client.get(reverse("portal:statements")).content.decode()
    assert "No statements yet" in page
    for name in ("statement", "statement_csv", "statement_pdf"):
        assert client.get(reverse(f"portal:{name}", args=["2026-12"])).status_code == 404


@pytest.mark.parametrize("role", list(Membership.Role))
def test_every_role_reads_statements(activity: Activity, make_portal_user, role: str) -> None:
    client = portal_sign_in(make_portal_user(activity.merchant, role=role))
    listing = client.get(reverse("portal:statements"))
    assert listing.status_code == 200
    assert "December 2026" in listing.content.decode()
    page = client.get(reverse("portal:statement", args=["2026-12"])).content.decode()
    assert "Recourse you owe" in page and "Kept back from money paid to you" in page


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "1999-12", "december", "2027-01"])
def test_a_month_without_a_statement_is_not_found(
    activity: Activity, make_portal_user, month: str
) -> None:
    client = portal_sign_in(make_portal_user(activity.merchant))
    assert client.get(reverse("portal:statement", args=[month])).status_code == 404


def test_the_page_in_chinese_formats_the_month_its_way(
    activity: Activity, make_portal_user
) -> None:
    client = portal_sign_in(make_portal_user(activity.merchant))
    with translation.override("zh-hans"):
        client.cookies["django_language"] = "zh-hans"
        page = client.get(reverse("portal:statement", args=["2026-12"])).content.decode()
    assert "2026年12月" in page and "您应付的追索款" in page


def test_the_csv_holds_minor_units_and_decimals(activity: Activity, make_portal_user) -> None:
    client = portal_sign_in(make_portal_user(activity.merchant))
    response = client.get(reverse("portal:statement_csv", args=["2026-12"]))
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].endswith('-statement-2026-12.csv"')
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    [statement] = statements_read(merchant=activity.merchant, month=DECEMBER)
    closing = {r["section"]: int(r["amount_minor"]) for r in rows if r["item"] == "closing"}
    assert closing == {s.name: s.closing_minor for s in statement.sections}
    repaid = next(r for r in rows if r["item"] == "repayments")
    assert (repaid["amount_minor"], repaid["amount"], repaid["currency"]) == (
        "190000",
        "1900.00",
        "EUR",
    )
    assert {r["merchant_id"] for r in rows} == {activity.merchant.public_id}


def test_each_months_opening_is_the_previous_months_closing(activity: Activity) -> None:
    [november] = statements_read(merchant=activity.merchant, month=NOVEMBER)
    [december] = statements_read(merchant=activity.merchant, month=DECEMBER)
    closed = {s.name: s.closing_minor for s in november.sections}
    assert {s.name: s.opening_minor for s in december.sections} == {
        name: closed.get(name, 0) for name in (s.name for s in december.sections)
    }


def test_months_are_the_banks_business_months(settings) -> None:
    settings.CHAINFIN_BUSINESS_TZ = "Asia/Shanghai"
    start, end = month_bounds(DECEMBER)
    assert (start.astimezone(UTC), end.astimezone(UTC)) == (
        datetime(2026, 11, 30, 16, 0, tzinfo=UTC),
        datetime(2026, 12, 31, 16, 0, tzinfo=UTC),
    )
