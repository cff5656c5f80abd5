"""Getting an advance in the portal: choose fundable invoices, see the live price, accept it.

Covers a refused quote, a changed price, a double submit, the viewer's refusal and CSRF.
"""

# Fixtures imported from the helpers are arguments, not redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from financing.business_day import business_day
from financing.models import Advance, Facility
from financing.services.requests import advance_quote
from ledger.money import Money
from merchants.models import Membership
from tests.conftest import NOW
from tests.portal.advance_helpers import (  # noqa: F401  (fixtures)
    frozen_now,
    member_of_a,
    owner,
    page,
    price_form,
    requested,
    viewer,
)
from tests.portal.conftest import Scenario

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]


def test_the_choice_lists_only_fundable_invoices_and_links_to_the_reasons(
    scenario: Scenario, owner: Client
) -> None:
    body = page(owner.get(reverse("portal:advance_new")))

    for ref in scenario.eligible:
        assert f'value="{ref}"' in body
    assert scenario.ineligible not in body and scenario.financed[1] not in body
    assert scenario.b_invoice not in body
    assert f'href="{reverse("portal:receivables")}?eligible=no"' in body
    assert "cannot be financed now" in body


def test_the_price_is_the_live_quote_in_words(scenario: Scenario, owner: Client) -> None:
    refs = scenario.eligible[:2]
    quote = advance_quote(merchant=scenario.a, refs=refs, today=business_day(NOW))

    response = owner.get(reverse("portal:advance_price"), {"refs": refs})

    body = page(response)
    assert response.status_code == 200
    for minor in (
        quote.total("advance_minor"),
        quote.total("fee_minor"),
        quote.total("reserve_minor"),
        quote.total("net_minor"),
    ):
        assert Money.display(minor, "EUR") in body
    assert f"{quote.apr} %" in body
    assert "Paid to you now" in body and "Reserve, paid to you later" in body
    assert f'name="terms_hash" value="{quote.terms_hash}"' in body
    assert re.search(r'name="request_key" value="portal-[0-9a-f]{32}"', body)
    assert "Accept and request" in body


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({}, "Tick at least one invoice."),
        ({"refs": ["INV-NOPE"]}, "Invoice INV-NOPE is not one of yours"),
    ],
)
def test_a_bad_choice_is_a_400_that_says_which_field(
    owner: Client, query: dict[str, list[str]], message: str
) -> None:
    response = owner.get(reverse("portal:advance_price"), query)

    assert response.status_code == 400
    assert message in page(response)


def test_another_merchants_invoice_cannot_be_priced(scenario: Scenario, owner: Client) -> None:
    response = owner.get(reverse("portal:advance_price"), {"refs": [scenario.b_invoice]})

    assert response.status_code == 400
    assert "is not one of yours" in page(response)


def test_a_request_naming_another_merchants_invoice_is_refused(
    scenario: Scenario, owner: Client
) -> None:
    form = {**price_form(owner, scenario.eligible[:1]), "refs": [scenario.b_invoice]}

    response = owner.post(reverse("portal:advance_create"), form)

    assert response.status_code == 409
    assert f"{scenario.b_invoice}: not one of your invoices." in page(response)
    assert not Advance.objects.filter(request_key=form["request_key"]).exists()


def test_a_refused_quote_says_why_and_requests_nothing(scenario: Scenario, owner: Client) -> None:
    # Room for one of the 400.00 advances, not for two together.
    Facility.objects.filter(pk=scenario.facility.pk).update(
        limit_minor=scenario.facility.committed_minor + 50_000
    )
    before = Advance.objects.count()

    response = owner.get(reverse("portal:advance_price"), {"refs": scenario.eligible[:2]})

    assert response.status_code == 409
    assert "Together these invoices need more than your credit line has left" in page(response)
    assert Advance.objects.count() == before


def test_accepting_requests_the_advance_at_the_price_shown(
    scenario: Scenario, owner: Client
) -> None:
    form = price_form(owner, scenario.eligible[:2])

    response = owner.post(reverse("portal:advance_create"), form)

    advance = Advance.objects.get(merchant=scenario.a, request_key=form["request_key"])
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:advance", args=[advance.ref])
    assert advance.status == Advance.Status.REQUESTED
    assert advance.accepted_hash == advance.price_hash == form["terms_hash"]
    assert sorted(advance.assignments.values_list("invoice_ref", flat=True)) == sorted(
        scenario.eligible[:2]
    )
    shown = page(owner.get(response["Location"]))
    assert f"Advance {advance.ref} requested" in shown


def test_a_double_submit_returns_the_same_advance(scenario: Scenario, owner: Client) -> None:
    form = price_form(owner, scenario.eligible[:1])

    first = owner.post(reverse("portal:advance_create"), form)
    second = owner.post(reverse("portal:advance_create"), form)

    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert Advance.objects.filter(merchant=scenario.a, request_key=form["request_key"]).count() == 1


def test_a_changed_price_is_refused_and_the_new_one_shown(
    scenario: Scenario, owner: Client
) -> None:
    form = price_form(owner, scenario.eligible[:1])
    Facility.objects.filter(pk=scenario.facility.pk).update(annual_rate_bp=2400)
    before = Advance.objects.count()

    response = owner.post(reverse("portal:advance_create"), form)

    body = page(response)
    assert response.status_code == 409
    assert "The price changed since you looked, so nothing was requested" in body
    assert Advance.objects.count() == before
    fresh = advance_quote(merchant=scenario.a, refs=scenario.eligible[:1], today=business_day(NOW))
    assert fresh.terms_hash != form["terms_hash"]
    assert f'value="{fresh.terms_hash}"' in body


def test_invoices_taken_meanwhile_are_refused_in_words(scenario: Scenario, owner: Client) -> None:
    stale = price_form(owner, scenario.eligible[:1])
    requested(owner, scenario.eligible[:1])  # another tab took the invoice

    response = owner.post(
        reverse("portal:advance_create"), {**stale, "request_key": "portal-" + "0" * 32}
    )

    assert response.status_code == 409
    assert "already part of an advance" in page(response)


def test_a_tampered_form_is_a_400(scenario: Scenario, owner: Client) -> None:
    form = {**price_form(owner, scenario.eligible[:1]), "terms_hash": "XYZ", "request_key": "k"}

    response = owner.post(reverse("portal:advance_create"), form)

    body = page(response)
    assert response.status_code == 400
    assert "The price is missing" in body and "The form is damaged" in body


def test_a_finance_member_may_request(scenario: Scenario, member_of_a) -> None:
    finance = member_of_a(Membership.Role.FINANCE)

    advance = requested(finance, scenario.eligible[:1])

    assert advance.merchant == scenario.a


def test_a_viewer_sees_the_price_but_is_refused_the_request(
    scenario: Scenario, owner: Client, viewer: Client
) -> None:
    price = page(viewer.get(reverse("portal:advance_price"), {"refs": scenario.eligible[:1]}))
    assert "Only an owner or a finance member of your team can request an advance." in price
    assert "Accept and request" not in price
    form = price_form(owner, scenario.eligible[:1])

    response = viewer.post(reverse("portal:advance_create"), form)

    assert response.status_code == 403
    assert "only an owner or a finance member of your team can request" in page(response)
    assert not Advance.objects.filter(request_key=form["request_key"]).exists()


def test_the_request_needs_a_csrf_token(scenario: Scenario, owner: Client) -> None:
    form = price_form(owner, scenario.eligible[:1])
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(scenario.user_a)

    refused = strict.post(reverse("portal:advance_create"), form)

    assert refused.status_code == 403
    assert not Advance.objects.filter(request_key=form["request_key"]).exists()
    # The page's own form carries the token: with it, the same post goes through.
    strict.get(reverse("portal:advance_price"), {"refs": scenario.eligible[:1]})
    token = strict.cookies["csrftoken"].value
    accepted = strict.post(reverse("portal:advance_create"), {**form, "csrfmiddlewaretoken": token})
    assert accepted.status_code == 302


def test_a_get_of_the_request_is_not_allowed(owner: Client) -> None:
    assert owner.get(reverse("portal:advance_create")).status_code == 405
