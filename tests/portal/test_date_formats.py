"""Dates on the portal's pages cannot be misread: ISO 8601 in English, times with their zone."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.portal.conftest import Scenario, portal_sign_in

# Django's own "en" writes 01/07/2027 and "Jan. 7, 2027, 3:36 p.m.": month first, no zone.
AMERICAN_DATE = re.compile(r"\b\d{2}/\d{2}/\d{4}\b")
TWELVE_HOUR = re.compile(r"\b[ap]\.m\.")


@pytest.mark.django_db
def test_an_advance_page_writes_dates_a_european_reader_cannot_misread(
    scenario: Scenario,
) -> None:
    advance = scenario.advance
    client = portal_sign_in(scenario.user_a)

    page = client.get(reverse("portal:advance", args=[advance.ref])).content.decode()

    due = advance.due_date
    assert f"{due:%Y-%m-%d}" in page  # the invoices' table
    assert f"{due.day} {due:%b %Y}" in page  # the due date in words: "7 Jan 2027"
    disbursed = advance.disbursed_at
    assert f"{disbursed:%Y-%m-%d %H:%M} UTC" in page  # the timeline: 24-hour, zone named
    assert not AMERICAN_DATE.search(page)
    assert not TWELVE_HOUR.search(page)


@pytest.mark.django_db
def test_the_receivables_list_writes_due_dates_as_its_reasons_do(scenario: Scenario) -> None:
    client = portal_sign_in(scenario.user_a)

    response = client.get(reverse("portal:receivables"))

    page = response.content.decode()
    dues = {row.verdict.due_date for row, _words in response.context["rows"]}
    assert dues
    for due in dues:
        assert f'class="nowrap">{due:%Y-%m-%d}</td>' in page
    assert not AMERICAN_DATE.search(page)


@pytest.mark.django_db
def test_chinese_pages_keep_django_s_dates_with_the_zone_named(scenario: Scenario) -> None:
    advance = scenario.advance
    client = portal_sign_in(scenario.user_a)
    client.cookies["django_language"] = "zh-hans"

    page = client.get(reverse("portal:advance", args=[advance.ref])).content.decode()

    disbursed = advance.disbursed_at
    assert f"{disbursed:%Y/%m/%d} {disbursed.hour}:{disbursed:%M} UTC" in page
    assert f"{advance.due_date.year}年{advance.due_date.month}月{advance.due_date.day}日" in page
