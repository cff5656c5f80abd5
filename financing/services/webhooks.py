"""Webhook endpoints: where a marketplace's notices of assignment go.

Officers register and change them in the admin, which saves nothing itself.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from financing.exceptions import WrongState
from financing.models import WebhookEndpoint
from financing.services._shared import officer_require
from merchants.models import Marketplace


def webhook_endpoint_create(
    *, marketplace: Marketplace, url: str, active: bool, officer: User
) -> WebhookEndpoint:
    """Register where ``marketplace``'s notices of assignment go, with a new signing secret.

    :raises NotPermitted: the officer may not add webhook endpoints.
    :raises WrongState: the marketplace already has an endpoint.
    """
    officer_require(officer, "financing.add_webhookendpoint")
    try:
        with transaction.atomic():
            return WebhookEndpoint.objects.create(marketplace=marketplace, url=url, active=active)
    except IntegrityError:
        raise WrongState(f"{marketplace.code} already has a webhook endpoint.") from None


def webhook_endpoint_change(
    *, endpoint: WebhookEndpoint, url: str, active: bool, officer: User
) -> WebhookEndpoint:
    """Point an endpoint at another URL, or switch it on or off; marketplace and secret stay.

    :raises NotPermitted: the officer may not change webhook endpoints.
    :raises WrongState: the endpoint is gone.
    """
    officer_require(officer, "financing.change_webhookendpoint")
    if not WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=url, active=active):
        raise WrongState("This webhook endpoint no longer exists.")
    endpoint.refresh_from_db()
    return endpoint
