"""Settings, team: owners add, re-role and remove members; others read; the last owner stays."""

# The team fixture is imported to be shared; tests naming it as an argument are not redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from merchants.models import Membership
from tests.portal.conftest import portal_sign_in
from tests.portal.settings_helpers import Team, team  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db
TEAM = reverse("portal:settings_team")


def _role(pk: int) -> str:
    return reverse("portal:settings_member_role", args=[pk])


def _remove(pk: int) -> str:
    return reverse("portal:settings_member_remove", args=[pk])


def test_every_member_sees_the_team_and_only_owners_get_the_forms(team: Team) -> None:
    for user in (team.owner, team.finance, team.viewer):
        page = portal_sign_in(user).get(TEAM)
        assert page.status_code == 200
        html = page.content.decode()
        for member in (team.owner, team.finance, team.viewer):
            assert member.email in html
        assert team.owner_b.email not in html
        assert ("Add a member" in html) == (user == team.owner)


def test_an_owner_adds_a_new_member_who_is_emailed_a_set_password_link(team: Team) -> None:
    client = portal_sign_in(team.owner)
    response = client.post(TEAM, {"email": "New.Person@example.com", "role": "finance"})
    assert response.status_code == 302
    membership = Membership.objects.get(merchant=team.a, user__email="new.person@example.com")
    assert membership.role == "finance"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["new.person@example.com"]
    link = re.search(r"http://testserver(/portal/password-reset/\S+/)", mail.outbox[0].body)
    assert link is not None
    # The link lets them choose a password and then sign in.
    newcomer = Client()
    form = newcomer.get(link.group(1), follow=True)
    assert form.status_code == 200 and "new_password1" in form.content.decode()
    password = "a-fresh-long-password-42"
    done = newcomer.post(
        form.redirect_chain[-1][0], {"new_password1": password, "new_password2": password}
    )
    assert done.status_code == 302
    signed_in = Client().post(
        reverse("portal:login"), {"username": "new.person@example.com", "password": password}
    )
    assert signed_in.status_code == 302 and signed_in["Location"] == reverse("portal:dashboard")


def test_a_bad_address_is_a_field_error_and_nothing_is_written(team: Team) -> None:
    client = portal_sign_in(team.owner)
    response = client.post(TEAM, {"email": "not an address", "role": "viewer"})
    assert response.status_code == 400
    assert "Email address: Enter a valid email address." in response.content.decode()
    again = client.post(TEAM, {"email": team.finance.email, "role": "viewer"})
    assert again.status_code == 400 and "member already" in again.content.decode()
    assert Membership.objects.filter(merchant=team.a).count() == 3
    assert not mail.outbox


def test_an_owner_changes_a_role_and_removes_a_member(team: Team) -> None:
    client = portal_sign_in(team.owner)
    finance = team.membership(team.finance)
    assert client.post(_role(finance.pk), {"role": "owner"}).status_code == 302
    assert Membership.objects.get(pk=finance.pk).role == "owner"
    viewer = team.membership(team.viewer)
    assert client.post(_remove(viewer.pk)).status_code == 302
    assert not Membership.objects.filter(pk=viewer.pk).exists()


def test_the_last_owner_can_neither_step_down_nor_be_removed(team: Team) -> None:
    client = portal_sign_in(team.owner)
    owner = team.membership(team.owner)
    for response in (
        client.post(_role(owner.pk), {"role": "viewer"}),
        client.post(_remove(owner.pk)),
    ):
        assert response.status_code == 409
        assert "at least one owner" in response.content.decode()
    assert Membership.objects.get(pk=owner.pk).role == "owner"


@pytest.mark.parametrize("who", ["finance", "viewer"])
def test_finance_and_viewers_are_refused_in_words(team: Team, who: str) -> None:
    client = portal_sign_in(getattr(team, who))
    owner = team.membership(team.owner)
    for url, data in [
        (TEAM, {"email": "x@example.com", "role": "owner"}),
        (_role(owner.pk), {"role": "viewer"}),
        (_remove(owner.pk), {}),
    ]:
        response = client.post(url, data)
        assert response.status_code == 403, url
        assert "Only an owner can change the settings" in response.content.decode()
    assert Membership.objects.filter(merchant=team.a).count() == 3
    assert Membership.objects.get(pk=owner.pk).role == "owner"


def test_another_merchants_member_is_not_found(team: Team) -> None:
    client = portal_sign_in(team.owner_b)
    target = team.membership(team.viewer)
    assert client.post(_role(target.pk), {"role": "owner"}).status_code == 404
    assert client.post(_remove(target.pk)).status_code == 404
    assert Membership.objects.get(pk=target.pk).role == "viewer"


def test_an_unknown_role_is_a_clear_400(team: Team) -> None:
    client = portal_sign_in(team.owner)
    response = client.post(_role(team.membership(team.viewer).pk), {"role": "admin"})
    assert response.status_code == 400
    assert "Choose one of the roles shown." in response.content.decode()


def test_the_pages_are_in_chinese_too(team: Team) -> None:
    client = portal_sign_in(team.viewer)
    html = client.get(TEAM, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "团队" in html
