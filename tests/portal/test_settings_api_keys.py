"""Settings, API keys: an owner issues one (its secret shown once), lists and revokes them."""

# The team fixture is imported to be shared; tests naming it as an argument are not redefinitions.
# ruff: noqa: F811

from __future__ import annotations

from datetime import datetime

import pytest
from django.test import Client
from django.urls import reverse

from merchants.credentials import key_matches, secret_open
from merchants.models import ApiKey, Merchant
from merchants.services import api_key_issue
from tests.api.conftest import SignedClient
from tests.portal.conftest import portal_sign_in
from tests.portal.settings_helpers import Team, team  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db
PAGE = reverse("portal:settings_api_keys")


def _revoke(prefix: str) -> str:
    return reverse("portal:settings_api_key_revoke", args=[prefix])


def test_an_owner_issues_a_key_whose_secret_is_shown_this_once(team: Team) -> None:
    client = portal_sign_in(team.owner)
    response = client.post(PAGE, {"label": "ERP"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    key = ApiKey.objects.get(merchant=team.a)
    shown_key = html.split('data-secret="key">')[1].split("<")[0]
    shown_secret = html.split('data-secret="signing">')[1].split("<")[0]
    assert key_matches(shown_key, key.key_hash)
    assert secret_open(bytes(key.signing_secret_sealed)) == shown_secret
    # Never again: the list shows the public key id only.
    listing = client.get(PAGE).content.decode()
    assert key.prefix in listing and "ERP" in listing
    assert shown_key not in listing and shown_secret not in listing


def test_an_owner_revokes_a_key_and_the_list_says_so(team: Team, now: datetime) -> None:
    issued = api_key_issue(merchant=team.a, label="old", now=now)
    client = portal_sign_in(team.owner)
    assert client.post(_revoke(issued.api_key.prefix)).status_code == 302
    issued.api_key.refresh_from_db()
    assert issued.api_key.revoked_at is not None
    assert "Revoked" in client.get(PAGE).content.decode()


def test_every_member_sees_the_list_and_only_the_merchants_own_keys(
    team: Team, now: datetime
) -> None:
    own = api_key_issue(merchant=team.a, label="ours", now=now).api_key
    other = api_key_issue(merchant=team.b, label="theirs", now=now).api_key
    for user in (team.owner, team.finance, team.viewer):
        html = portal_sign_in(user).get(PAGE).content.decode()
        assert own.prefix in html and other.prefix not in html
        assert ("Issue a new key" in html) == (user == team.owner)


@pytest.mark.parametrize("who", ["finance", "viewer"])
def test_finance_and_viewers_cannot_issue_or_revoke(team: Team, who: str, now: datetime) -> None:
    own = api_key_issue(merchant=team.a, now=now).api_key
    client = portal_sign_in(getattr(team, who))
    for url in (PAGE, _revoke(own.prefix)):
        response = client.post(url, {"label": "mine"})
        assert response.status_code == 403, url
        assert "Only an owner can change the settings" in response.content.decode()
    assert ApiKey.objects.filter(merchant=team.a).count() == 1
    own.refresh_from_db()
    assert own.revoked_at is None


def test_another_merchants_key_is_not_found(team: Team, now: datetime) -> None:
    theirs = api_key_issue(merchant=team.a, now=now).api_key
    assert portal_sign_in(team.owner_b).post(_revoke(theirs.prefix)).status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_a_paused_merchant_gets_no_new_key_and_is_told_why(team: Team) -> None:
    Merchant.objects.filter(pk=team.a.pk).update(status=Merchant.Status.SUSPENDED)
    response = portal_sign_in(team.owner).post(PAGE, {"label": "ERP"})
    assert response.status_code == 409
    assert "paused" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_a_too_long_name_is_a_field_error(team: Team) -> None:
    response = portal_sign_in(team.owner).post(PAGE, {"label": "x" * 101})
    assert response.status_code == 400
    assert "Name (optional):" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_the_list_says_when_each_key_was_last_used(team: Team, now: datetime) -> None:
    used = api_key_issue(merchant=team.a, label="used", now=now)
    idle = api_key_issue(merchant=team.a, label="idle", now=now)
    signed = SignedClient(Client(), None, used.key, used.signing_secret, merchant=team.a)
    assert signed.get("/api/v1/receivables").status_code == 200

    used.api_key.refresh_from_db()
    assert used.api_key.last_used_at is not None
    html = portal_sign_in(team.owner).get(PAGE).content.decode()
    row_used = html.split(f'data-key="{used.api_key.prefix}"')[1].split("</tr>")[0]
    row_idle = html.split(f'data-key="{idle.api_key.prefix}"')[1].split("</tr>")[0]
    assert "Never" in row_idle and "Never" not in row_used
