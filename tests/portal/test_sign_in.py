"""Signing in to the portal: separate from the officers', locked after repeated failures, a new
session at sign-in and none after sign-out, CSRF on the form, password reset by e-mail with the
password policy, optional TOTP."""

from __future__ import annotations

import re
import time

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from config.two_factor import totp_code
from tests.portal.conftest import PORTAL_PASSWORD, Scenario, portal_sign_in


def _login(client: Client, username: str, password: str):
    return client.post(reverse("portal:login"), {"username": username, "password": password})


@pytest.mark.django_db
def test_the_sign_in_page_renders_with_a_csrf_token(client: Client) -> None:
    response = client.get(reverse("portal:login"))
    assert response.status_code == 200
    assert b'name="csrfmiddlewaretoken"' in response.content


@pytest.mark.django_db
def test_the_form_refuses_a_post_without_csrf(scenario: Scenario) -> None:
    client = Client(enforce_csrf_checks=True)
    response = _login(client, scenario.user_a.username, PORTAL_PASSWORD)
    assert response.status_code == 403


@pytest.mark.django_db
def test_sign_in_gives_a_new_session_and_sign_out_ends_it(scenario: Scenario) -> None:
    client = Client()
    client.get(reverse("portal:login"))
    client.session.save()
    before = client.session.session_key
    portal_sign_in(scenario.user_a, client)
    after = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert after != before
    assert client.get(reverse("portal:dashboard")).status_code == 200

    stolen = Client()
    stolen.cookies[settings.SESSION_COOKIE_NAME] = after
    assert stolen.get(reverse("portal:dashboard")).status_code == 200
    assert client.post(reverse("portal:logout")).status_code == 302
    # The old cookie opens nothing any more: the session is gone from the store.
    assert stolen.get(reverse("portal:dashboard")).status_code == 302


@pytest.mark.django_db
def test_a_wrong_password_is_explained(scenario: Scenario, client: Client) -> None:
    response = _login(client, scenario.user_a.username, "not-the-password")
    assert response.status_code == 200
    assert "do not match" in response.content.decode()


@pytest.mark.django_db
def test_five_failures_lock_the_account_even_with_the_right_password(scenario: Scenario) -> None:
    attacker = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(attacker, scenario.user_a.username, "guess-wrong-again")
    response = _login(Client(REMOTE_ADDR="10.9.8.7"), scenario.user_a.username, PORTAL_PASSWORD)
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    # Another merchant's user, from another address, still signs in.
    assert (
        _login(
            Client(REMOTE_ADDR="10.1.1.1"), scenario.user_b.username, PORTAL_PASSWORD
        ).status_code
        == 302
    )


@pytest.mark.django_db
def test_the_officer_admin_locks_out_too(make_staff_user) -> None:
    make_staff_user("officer-z")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        Client().post(
            reverse("admin:login"),
            {"username": "officer-z", "password": "wrong", "otp_token": "000000"},
        )
    response = Client(REMOTE_ADDR="10.2.3.4").post(
        reverse("admin:login"),
        {"username": "officer-z", "password": "officer-test-password", "otp_token": "000000"},
    )
    assert response.status_code == 429


@pytest.mark.django_db
def test_staff_cannot_sign_in_to_the_portal(make_staff_user, client: Client) -> None:
    officer = make_staff_user("officer-x")
    response = _login(client, "officer-x", "officer-test-password")
    assert response.status_code == 200
    assert "Bank staff sign in at the officer admin" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert officer.is_staff


@pytest.mark.django_db
def test_merchant_users_never_reach_the_admin(scenario: Scenario) -> None:
    assert not scenario.user_a.is_staff
    client = portal_sign_in(scenario.user_a)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    refused = Client().post(
        reverse("admin:login"),
        {"username": scenario.user_a.username, "password": PORTAL_PASSWORD, "otp_token": "000000"},
    )
    assert refused.status_code == 200  # the form again, with its error; no session
    assert Client().get(reverse("admin:index")).status_code == 302


@pytest.mark.django_db
def test_password_reset_by_email_applies_the_password_policy(scenario: Scenario) -> None:
    client = Client()
    response = client.post(reverse("portal:password_reset"), {"email": scenario.user_a.email})
    assert response["Location"] == reverse("portal:password_reset_done")
    [message] = mail.outbox
    assert message.from_email == settings.PORTAL_FROM_EMAIL
    link = re.search(r"https?://[^/]+(/portal/password-reset/\S+/)", message.body).group(1)
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    set_url = form_page.redirect_chain[-1][0]
    weak = client.post(set_url, {"new_password1": "short1", "new_password2": "short1"})
    assert weak.status_code == 200
    assert "too short" in weak.content.decode()
    new = "another-long-passphrase"
    done = client.post(set_url, {"new_password1": new, "new_password2": new})
    assert done["Location"] == reverse("portal:password_reset_complete")
    assert _login(Client(), scenario.user_a.username, new).status_code == 302


@pytest.mark.django_db
def test_no_reset_mail_for_staff(make_staff_user, client: Client) -> None:
    officer = make_staff_user("officer-y")
    officer.email = "officer@bank.example"
    officer.save(update_fields=["email"])
    client.post(reverse("portal:password_reset"), {"email": "officer@bank.example"})
    assert mail.outbox == []


def _code(device: TOTPDevice) -> str:
    return totp_code(device, at=time.time())


@pytest.mark.django_db
def test_optional_totp_enrol_then_required_at_sign_in(scenario: Scenario) -> None:
    client = portal_sign_in(scenario.user_a)
    client.post(reverse("portal:security"), {"action": "start"})
    device = TOTPDevice.objects.get(user=scenario.user_a, confirmed=False)
    wrong = client.post(reverse("portal:security"), {"action": "confirm", "token": "000000"})
    assert "not right" in wrong.content.decode()
    device.refresh_from_db()
    device.throttling_failure_count = 0
    device.throttling_failure_timestamp = None
    device.save()
    done = client.post(reverse("portal:security"), {"action": "confirm", "token": _code(device)})
    assert "Two-step sign-in is on" in done.content.decode()

    second = Client()
    response = _login(second, scenario.user_a.username, PORTAL_PASSWORD)
    assert response["Location"].startswith(reverse("portal:otp"))
    blocked = second.get(reverse("portal:dashboard"))
    assert blocked.status_code == 302 and blocked["Location"].startswith(reverse("portal:otp"))
    device.refresh_from_db()
    # A code is good once: if the enrolment used this step's, the app's next one (the device
    # tolerates a step of clock drift) rather than waiting up to 30 s for it.
    token = _code(device)
    if device.last_t is not None and device.last_t >= int(time.time()) // device.step:
        token = totp_code(device, at=time.time() + device.step)
    verified = second.post(reverse("portal:otp"), {"token": token, "next": "/portal/"})
    assert verified.status_code == 302 and verified["Location"] == "/portal/"
    assert second.get(reverse("portal:dashboard")).status_code == 200
