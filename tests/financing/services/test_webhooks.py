"""webhook_endpoint_create and webhook_endpoint_change: what the admin calls to write endpoints."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from financing.exceptions import NotPermitted, WrongState
from financing.models import WebhookEndpoint
from financing.services.webhooks import webhook_endpoint_change, webhook_endpoint_create
from merchants.models import Marketplace

pytestmark = pytest.mark.django_db


def test_an_officer_creates_one_endpoint_per_marketplace(
    marketplace: Marketplace, officer: User
) -> None:
    endpoint = webhook_endpoint_create(
        marketplace=marketplace, url="https://a.example/n", active=True, officer=officer
    )

    assert WebhookEndpoint.objects.get() == endpoint
    assert len(endpoint.secret) == 64
    with pytest.raises(WrongState, match="already has a webhook endpoint"):
        webhook_endpoint_create(
            marketplace=marketplace, url="https://b.example/n", active=True, officer=officer
        )


def test_a_change_moves_the_url_and_keeps_marketplace_and_secret(
    marketplace: Marketplace, officer: User
) -> None:
    endpoint = WebhookEndpoint.objects.create(marketplace=marketplace, url="https://a.example/n")
    secret = endpoint.secret

    changed = webhook_endpoint_change(
        endpoint=endpoint, url="https://b.example/n", active=False, officer=officer
    )

    assert (changed.url, changed.active, changed.secret) == ("https://b.example/n", False, secret)
    assert changed.marketplace == marketplace


def test_an_auditor_writes_no_endpoint(marketplace: Marketplace, auditor: User) -> None:
    with pytest.raises(NotPermitted, match=r"financing\.add_webhookendpoint"):
        webhook_endpoint_create(
            marketplace=marketplace, url="https://a.example/n", active=True, officer=auditor
        )
    endpoint = WebhookEndpoint.objects.create(marketplace=marketplace, url="https://a.example/n")
    with pytest.raises(NotPermitted, match=r"financing\.change_webhookendpoint"):
        webhook_endpoint_change(
            endpoint=endpoint, url="https://b.example/n", active=False, officer=auditor
        )
    assert WebhookEndpoint.objects.get().url == "https://a.example/n"
