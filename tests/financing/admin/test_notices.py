"""Webhook endpoints for notices of assignment (financing.admin.notices)."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.urls import reverse

from financing.admin import notices
from financing.exceptions import WrongState
from financing.models import WebhookEndpoint
from merchants.models import Marketplace
from tests.financing.admin.conftest import SignIn, _messages

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


# --- webhook endpoints --------------------------------------------------------------------------


def test_a_webhook_secret_is_shown_once_then_masked(
    marketplace: Marketplace, officer: User, sign_in: SignIn
) -> None:
    client = sign_in(officer)
    data = {"marketplace": marketplace.pk, "url": "https://market.example/notices", "active": "on"}

    response = client.post(reverse("admin:financing_webhookendpoint_add"), data, follow=True)

    endpoint = WebhookEndpoint.objects.get()
    shown = [m for m in _messages(response) if endpoint.secret in m]
    assert shown == [
        f"Give the marketplace this signing secret now; it is not shown again: {endpoint.secret}"
    ]
    change = reverse("admin:financing_webhookendpoint_change", args=[endpoint.pk])
    changelist = reverse("admin:financing_webhookendpoint_changelist")
    for page in (client.get(changelist), client.get(change)):  # the message is spent
        assert endpoint.secret not in page.content.decode()
        assert endpoint.secret[:4] + "•" * 12 in page.content.decode()


def test_a_webhook_change_goes_through_the_service_and_keeps_the_secret(
    marketplace: Marketplace, officer: User, sign_in: SignIn
) -> None:
    endpoint = WebhookEndpoint.objects.create(marketplace=marketplace, url="https://a.example/n")
    url = reverse("admin:financing_webhookendpoint_change", args=[endpoint.pk])

    sign_in(officer).post(url, {"url": "https://b.example/n", "_save": "Save"})

    changed = WebhookEndpoint.objects.get()
    assert (changed.url, changed.active) == ("https://b.example/n", False)
    assert (changed.marketplace, changed.secret) == (marketplace, endpoint.secret)


def test_a_refused_webhook_endpoint_returns_to_the_form_and_logs_nothing(
    marketplace: Marketplace, officer: User, sign_in: SignIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(**kwargs: object) -> WebhookEndpoint:
        raise WrongState("Refused for the test.")

    monkeypatch.setattr(notices, "webhook_endpoint_create", refuse)
    add = reverse("admin:financing_webhookendpoint_add")
    data = {"marketplace": marketplace.pk, "url": "https://market.example/notices", "active": "on"}

    response = sign_in(officer).post(add, data)

    assert (response.status_code, response["Location"]) == (302, add)
    assert not WebhookEndpoint.objects.exists()
    assert not LogEntry.objects.exists()
