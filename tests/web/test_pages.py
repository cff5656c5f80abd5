"""Every page renders, and the officer admin is closed to anyone who is not staff.

Officers sign in with a password and a TOTP code (`staff_client`); tests/web/test_two_factor.py
proves a password alone opens nothing.
"""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.urls import reverse

from config.celery import app
from ledger.models import Entry, LedgerVerification
from ledger.services import entry_append
from tests.conftest import order_placed


@pytest.fixture
def populated(merchant, marketplace, now) -> None:
    entry_append(source=marketplace.code, merchant_id=merchant.pk, event=order_placed(), now=now)


@pytest.mark.sqlite_smoke
@pytest.mark.django_db
def test_home_page_shows_counts_to_staff_only(client, staff_client, populated) -> None:
    anonymous = client.get("/")
    assert anonymous.status_code == 200
    assert b"chain entries" not in anonymous.content
    assert b"verified" not in anonymous.content
    response = staff_client.get("/")
    assert response.status_code == 200
    assert b"chain entries" in response.content
    assert b"has not been verified yet" in response.content


@pytest.mark.django_db
def test_home_page_leads_each_kind_of_user_to_their_door(client) -> None:
    page = client.get("/").content.decode()

    for name, url in [
        ("Merchant portal", reverse("portal:login")),
        ("Bank officers", reverse("admin:index")),
        ("Marketplace API", reverse("api-docs")),
    ]:
        assert f'href="{url}">{name}</a>' in page
        assert client.get(url, follow=True).status_code == 200, url


@pytest.mark.django_db
def test_every_app_in_the_officer_admin_has_a_name_for_people(staff_client) -> None:
    page = staff_client.get(reverse("admin:index")).content.decode()
    names = set(re.findall(r'class="section" title="[^"]*">([^<]+)</a>', page))

    assert {"Two-factor devices", "Sign-in attempts"} <= names, names
    assert not [name for name in names if "_" in name]  # "OTP_TOTP" was one


def _admin_urls() -> list[str]:
    urls = ["admin:index"]
    for model in admin.site._registry:
        meta = model._meta
        urls.append(f"admin:{meta.app_label}_{meta.model_name}_changelist")
    return urls


@pytest.mark.django_db
@pytest.mark.parametrize("name", _admin_urls())
def test_every_admin_page_renders_for_staff(staff_client, populated, name) -> None:
    assert staff_client.get(reverse(name)).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("name", _admin_urls())
def test_admin_refuses_anonymous_and_non_staff(client, django_user_model, name) -> None:
    assert client.get(reverse(name)).status_code == 302
    django_user_model.objects.create_user("merchant-user", password="pw")
    client.force_login(django_user_model.objects.get(username="merchant-user"))
    assert client.get(reverse(name)).status_code == 302


@pytest.mark.django_db
def test_entry_admin_shows_the_canonical_body(staff_client, populated) -> None:
    entry = Entry.objects.get()
    response = staff_client.get(reverse("admin:ledger_entry_change", args=[entry.pk]))
    assert response.status_code == 200
    assert b"Canonical body (what was hashed)" in response.content
    assert b"&quot;order.placed&quot;" in response.content


@pytest.mark.django_db
def test_entries_cannot_be_edited_or_deleted_in_admin(staff_client, populated) -> None:
    entry = Entry.objects.get()
    response = staff_client.post(
        reverse("admin:ledger_entry_delete", args=[entry.pk]), {"post": "yes"}
    )
    assert response.status_code == 403
    assert Entry.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_verify_now_button_queues_a_run(staff_client, populated) -> None:
    app.conf.task_always_eager = True  # the worker path is proven in test_verification_task
    try:
        response = staff_client.post(reverse("admin:ledger_ledgerverification_verify"))
    finally:
        app.conf.task_always_eager = False
    assert response.status_code == 302
    assert LedgerVerification.objects.get().outcome == "intact"


@pytest.mark.django_db
def test_admin_issues_an_api_key_once_and_revokes_it(staff_client, marketplace) -> None:
    from merchants.models import ApiKey

    response = staff_client.post(
        reverse("admin:merchants_apikey_add"),
        {"marketplace": marketplace.pk, "label": "prod-eu"},
        follow=True,
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert any("Signing secret: cfs_" in m and "API key: cfk_" in m for m in shown)
    api_key = ApiKey.objects.get(label="prod-eu")
    assert api_key.prefix in shown[0]
    response = staff_client.post(
        reverse("admin:merchants_apikey_changelist"),
        {"action": "revoke", "_selected_action": [api_key.pk]},
        follow=True,
    )
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
