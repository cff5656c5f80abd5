"""Who may open which portal URL: every pattern in portal/urls.py, every kind of visitor.

Anonymous visitors go to the sign-in page; staff are refused (403); a merchant's user sees its
own receivables and gets a 404 for another merchant's; a user of two merchants sees only the
one chosen. The last test fails when a URL pattern is added without being classified here.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern, reverse
from django.utils import timezone

from financing.models import Advance
from merchants.models import ApiKey, Membership
from merchants.services import api_key_issue
from portal.urls import urlpatterns
from tests.portal.advance_helpers import frozen_now  # noqa: F401  (a fixture)
from tests.portal.conftest import Scenario, portal_sign_in

# The way in: open to anyone (the access tests for these live in test_sign_in.py).
OPEN = {
    "login",
    "logout",
    "otp",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
}
# Pages of the merchant acted for, without an object id.
MERCHANT_PAGES = {
    "dashboard",
    "switch",
    "security",
    "receivables",
    "statements",
    "chain_export",
    "verifier_download",
    "advances",
    "advance_new",
    "settings_team",
    "settings_bank_account",
    "settings_api_keys",
}
# Pages of one receivable: the id is an invoice ref, which must be the merchant's own.
RECEIVABLE_PAGES = {"receivable", "receivable_receipt"}
# Pages of one month's statement: the id is a month in which the merchant's own books moved.
MONTH_PAGES = {"statement", "statement_csv", "statement_pdf"}
# The merchant's chain as a bundle: only its own entries (tests/portal/test_chain_export.py).
CHAIN_PAGES = {"chain_export_download"}
SCENARIO_MONTH = "2026-11"  # the scenario's advance and payout are posted on NOW
# The price of the invoices named in the query: another merchant's are not the merchant's (400).
PRICE_PAGES = {"advance_price"}
# Pages of one advance: the id is an advance ref, which must be the merchant's own.
ADVANCE_PAGES = {"advance"}
# POSTs on one advance (its ref must be the merchant's own), and the request (no id).
ADVANCE_ACTIONS = {"advance_accept", "advance_withdraw"}
REQUEST_ACTIONS = {"advance_create"}
# Settings actions (POST only) on one object of the merchant: a membership id, an API key id.
MEMBER_ACTIONS = {"settings_member_role", "settings_member_remove"}
API_KEY_ACTIONS = {"settings_api_key_revoke"}


def _names() -> set[str]:
    return {p.name for p in urlpatterns if isinstance(p, URLPattern) and p.name}


def test_every_portal_url_is_covered_by_this_matrix() -> None:
    unclassified = (
        _names()
        - OPEN
        - MERCHANT_PAGES
        - RECEIVABLE_PAGES
        - MONTH_PAGES
        - CHAIN_PAGES
        - PRICE_PAGES
        - ADVANCE_PAGES
        - ADVANCE_ACTIONS
        - REQUEST_ACTIONS
        - MEMBER_ACTIONS
        - API_KEY_ACTIONS
    )
    assert not unclassified, f"add these portal URLs to the access matrix: {unclassified}"


def _urls(ref: str) -> list[str]:
    return (
        [reverse(f"portal:{name}") for name in sorted(MERCHANT_PAGES)]
        + [reverse(f"portal:{name}", args=[ref]) for name in sorted(RECEIVABLE_PAGES)]
        + [reverse(f"portal:{name}", args=[SCENARIO_MONTH]) for name in sorted(MONTH_PAGES)]
    )


def _chain_urls() -> list[str]:
    return [reverse(f"portal:{name}") for name in sorted(CHAIN_PAGES)]


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_sign_in(scenario: Scenario, client: Client) -> None:
    for url in _urls(scenario.financed[0]) + _chain_urls():
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("portal:login")), url


@pytest.mark.django_db
def test_staff_never_act_as_merchants(scenario: Scenario, staff_client: Client) -> None:
    for url in _urls(scenario.financed[0]) + _chain_urls():
        assert staff_client.get(url).status_code == 403, url


@pytest.mark.django_db
def test_staff_with_a_membership_are_still_refused(scenario: Scenario, django_user_model) -> None:
    scenario.user_a.is_staff = True
    scenario.user_a.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(scenario.user_a)
    for url in _urls(scenario.financed[0]):
        assert client.get(url).status_code == 403, url


@pytest.mark.django_db
def test_a_merchant_sees_its_own_receivables(scenario: Scenario) -> None:
    client = portal_sign_in(scenario.user_a)
    for url in _urls(scenario.financed[0]):
        assert client.get(url).status_code == 200, url


@pytest.mark.django_db
def test_another_merchants_receivable_is_not_found(scenario: Scenario) -> None:
    client = portal_sign_in(scenario.user_b)
    for name in sorted(RECEIVABLE_PAGES):
        assert client.get(reverse(f"portal:{name}", args=[scenario.financed[0]])).status_code == 404
        assert client.get(reverse(f"portal:{name}", args=[scenario.b_invoice])).status_code == 200
    listing = client.get(reverse("portal:receivables")).content.decode()
    assert scenario.b_invoice in listing
    assert scenario.financed[0] not in listing and scenario.eligible[0] not in listing


@pytest.mark.django_db
def test_another_merchants_month_is_not_found(scenario: Scenario) -> None:
    client = portal_sign_in(scenario.user_b)  # B's books never moved: A's month is not B's
    for name in sorted(MONTH_PAGES):
        assert client.get(reverse(f"portal:{name}", args=[SCENARIO_MONTH])).status_code == 404
    assert SCENARIO_MONTH not in client.get(reverse("portal:statements")).content.decode()


@pytest.mark.django_db
def test_a_user_without_a_merchant_is_refused(scenario: Scenario, django_user_model) -> None:
    loner = django_user_model.objects.create_user("loner", password="a-long-portal-password")
    client = Client()
    client.force_login(loner)
    for url in _urls(scenario.financed[0]):
        if url == reverse("portal:switch"):
            assert client.get(url).status_code == 200  # an empty choice, nothing to see
            continue
        assert client.get(url).status_code == 403, url


@pytest.mark.django_db
def test_a_user_of_two_merchants_chooses_and_sees_one_at_a_time(scenario: Scenario) -> None:
    client = portal_sign_in(scenario.user_both)
    response = client.get(reverse("portal:dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:switch"))

    response = client.post(reverse("portal:switch"), {"merchant": scenario.b.public_id})
    assert response.status_code == 302
    assert client.get(reverse("portal:receivable", args=[scenario.b_invoice])).status_code == 200
    assert client.get(reverse("portal:receivable", args=[scenario.financed[0]])).status_code == 404

    client.post(reverse("portal:switch"), {"merchant": scenario.a.public_id})
    assert client.get(reverse("portal:receivable", args=[scenario.financed[0]])).status_code == 200
    assert client.get(reverse("portal:receivable", args=[scenario.b_invoice])).status_code == 404


@pytest.mark.django_db
def test_switching_to_a_merchant_not_ones_own_is_refused(scenario: Scenario) -> None:
    client = portal_sign_in(scenario.user_a)
    response = client.post(reverse("portal:switch"), {"merchant": scenario.b.public_id})
    assert response.status_code == 403
    # And the merchant acted for did not change.
    assert client.get(reverse("portal:receivable", args=[scenario.b_invoice])).status_code == 404


@pytest.mark.django_db
def test_a_revoked_membership_takes_effect_at_once(scenario: Scenario) -> None:
    client = portal_sign_in(scenario.user_both)
    client.post(reverse("portal:switch"), {"merchant": scenario.b.public_id})
    scenario.user_both.memberships.filter(merchant=scenario.b).delete()
    # Only A is left: the session's B is dropped and A, the one membership, is taken.
    assert client.get(reverse("portal:receivable", args=[scenario.b_invoice])).status_code == 404
    assert client.get(reverse("portal:receivable", args=[scenario.financed[0]])).status_code == 200


def _advance_urls(scenario: Scenario) -> tuple[list[str], list[str]]:
    """The advances' URLs with merchant A's ids: those read with GET, those sent a POST."""
    price = reverse("portal:advance_price") + f"?refs={scenario.eligible[0]}"
    pages = [price] + [reverse(f"portal:{n}", args=[scenario.advance.ref]) for n in ADVANCE_PAGES]
    posts = [reverse(f"portal:{n}") for n in sorted(REQUEST_ACTIONS)] + [
        reverse(f"portal:{n}", args=[scenario.advance.ref]) for n in sorted(ADVANCE_ACTIONS)
    ]
    return pages, posts


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_now")
def test_the_advances_urls_keep_out_the_anonymous_and_staff(
    scenario: Scenario, client: Client, staff_client: Client
) -> None:
    pages, posts = _advance_urls(scenario)
    for url in pages:
        assert client.get(url)["Location"].startswith(reverse("portal:login")), url
        assert staff_client.get(url).status_code == 403, url
    for url in posts:
        assert client.post(url)["Location"].startswith(reverse("portal:login")), url
        assert staff_client.post(url).status_code == 403, url
    owner = portal_sign_in(scenario.user_a)
    for url in pages:
        assert owner.get(url).status_code == 200, url
    for url in posts:
        assert owner.get(url).status_code == 405, url


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_now")
def test_another_merchants_advance_and_invoices_are_not_found(scenario: Scenario) -> None:
    client = portal_sign_in(scenario.user_b)
    for name in sorted(ADVANCE_PAGES):
        assert client.get(reverse(f"portal:{name}", args=[scenario.advance.ref])).status_code == 404
    for name in sorted(ADVANCE_ACTIONS):
        url = reverse(f"portal:{name}", args=[scenario.advance.ref])
        assert client.post(url, {"terms_hash": scenario.advance.price_hash}).status_code == 404
    scenario.advance.refresh_from_db()
    assert scenario.advance.status == Advance.Status.DISBURSED
    for name in sorted(PRICE_PAGES):
        response = client.get(reverse(f"portal:{name}"), {"refs": [scenario.eligible[0]]})
        assert response.status_code == 400
    listing = client.get(reverse("portal:advances")).content.decode()
    assert scenario.advance.ref not in listing


def _actions(scenario: Scenario) -> list[str]:
    """Each settings action on one of merchant A's objects: a finance member, a key."""
    member = Membership.objects.get(user=scenario.user_both, merchant=scenario.a)
    key = api_key_issue(merchant=scenario.a, now=timezone.now()).api_key
    # The role change before the removal, so both find the member.
    members = sorted(MEMBER_ACTIONS, reverse=True)
    return [reverse(f"portal:{name}", args=[member.pk]) for name in members] + [
        reverse(f"portal:{name}", args=[key.prefix]) for name in sorted(API_KEY_ACTIONS)
    ]


@pytest.mark.django_db
def test_settings_actions_ask_who_it_is_and_refuse_staff(
    scenario: Scenario, client: Client, staff_client: Client
) -> None:
    for url in _actions(scenario):
        response = client.post(url, {"role": "viewer"})
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("portal:login")), url
        assert staff_client.post(url, {"role": "viewer"}).status_code == 403, url


@pytest.mark.django_db
def test_settings_actions_on_another_merchants_ids_are_not_found(scenario: Scenario) -> None:
    urls = _actions(scenario)
    client = portal_sign_in(scenario.user_b)  # an owner, of merchant B
    for url in urls:
        assert client.post(url, {"role": "viewer"}).status_code == 404, url
    owner_a = portal_sign_in(scenario.user_a)
    for url in urls:
        assert owner_a.post(url, {"role": "viewer"}).status_code == 302, url
    assert not Membership.objects.filter(user=scenario.user_both, merchant=scenario.a).exists()
    assert ApiKey.objects.get(merchant=scenario.a).revoked_at is not None
