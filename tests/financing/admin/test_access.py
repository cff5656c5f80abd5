"""Every financing admin page (financing.admin): who gets in, and what the auditor may only read."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from financing.models import (
    Advance,
    Assignment,
    AssignmentNotice,
    Blacklisting,
    Facility,
    FacilityChange,
    MerchantFile,
    Receivable,
    WebhookEndpoint,
)
from financing.services.blacklist import blacklist_add
from financing.services.decisions import advance_approve
from merchants.models import Marketplace
from tests.financing.admin.conftest import SignIn, _facility_form, _request, _url
from tests.financing.conftest import Trade

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


# --- the admin's doors ----------------------------------------------------------------------------


def _financing_pages() -> list[str]:
    pages = [
        reverse("admin:app_list", args=["financing"]),
        _url("exposure"),
        reverse("admin:financing_blacklisting_blacklist"),
        reverse("admin:financing_facility_add"),
        reverse("admin:financing_webhookendpoint_add"),
    ]
    for model in (
        "advance",
        "facility",
        "facilitychange",
        "blacklisting",
        "webhookendpoint",
        "assignmentnotice",
        "receivable",
        "assignment",
        "merchantfile",
        "suspenseitem",
        "recourse",
        "deadletter",
        "settlementwork",
    ):
        pages.append(reverse(f"admin:financing_{model}_changelist"))
    return pages


def test_every_financing_page_renders_empty_for_a_superuser(staff_client: Client) -> None:
    failures = [
        (page, status)
        for page in _financing_pages()
        if (status := staff_client.get(page).status_code) != 200
    ]
    assert failures == []


def test_a_password_alone_opens_no_financing_view(
    live: Trade, line: Facility, make_staff_user: Callable[..., User]
) -> None:
    advance = _request(live)
    blacklisting = blacklist_add(
        merchant=live.merchant,
        officer=make_staff_user(superuser=True),
        reason="Watch",
        now=timezone.now(),
    )
    client = Client()
    client.force_login(make_staff_user(superuser=True))  # no verified TOTP device
    actions = [_url(verb, advance) for verb in ("approve", "reject", "authorize", "change")]
    lift = reverse("admin:financing_blacklisting_lift", args=[blacklisting.pk])

    for url in [*_financing_pages(), *actions, lift]:
        for response in (client.get(url), client.post(url, {"note": "x", "reason": "x"})):
            assert response.status_code == 302, url
            assert response["Location"].startswith(reverse("admin:login")), url
    assert Advance.objects.get(pk=advance.pk).status == Advance.Status.REQUESTED
    assert Blacklisting.objects.get().lifted_at is None


# --- read-only for the auditor, everywhere -------------------------------------------------------


def test_every_financing_page_renders_for_the_auditor(
    live: Trade,
    line: Facility,
    officer: User,
    auditor: User,
    marketplace: Marketplace,
    sign_in: SignIn,
) -> None:
    disbursed = _request(live)
    advance_approve(advance=disbursed, officer=officer, now=timezone.now())
    waiting = _request(live)
    blacklisting = blacklist_add(
        merchant=live.merchant, officer=officer, reason="Watch", now=timezone.now()
    )
    WebhookEndpoint.objects.create(marketplace=marketplace, url="https://example.com/hooks")
    client = sign_in(auditor)
    pages = [
        reverse("admin:index"),
        reverse("admin:app_list", args=["financing"]),
        _url("exposure"),
        _url("change", disbursed),
        _url("change", waiting),
        reverse("admin:financing_blacklisting_blacklist"),
        reverse("admin:financing_blacklisting_lift", args=[blacklisting.pk]),
    ]
    for model in (
        "advance",
        "facility",
        "facilitychange",
        "blacklisting",
        "webhookendpoint",
        "assignmentnotice",
        "receivable",
        "assignment",
        "merchantfile",
    ):
        pages.append(reverse(f"admin:financing_{model}_changelist"))
    for model_cls in (
        MerchantFile,
        Facility,
        FacilityChange,
        Blacklisting,
        WebhookEndpoint,
        AssignmentNotice,
        Receivable,
        Assignment,
    ):
        first = model_cls._default_manager.order_by("pk").first()
        assert first is not None, model_cls
        meta = model_cls._meta
        pages.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[first.pk]))

    failures = [(page, status) for page in pages if (status := client.get(page).status_code) != 200]

    assert failures == []
    assert client.get(reverse("admin:financing_facility_add")).status_code == 403
    index = client.get(reverse("admin:app_list", args=["financing"])).content.decode()
    assert "Exposure by merchant and debtor" in index
    facility_page = client.get(
        reverse("admin:financing_facility_change", args=[line.pk])
    ).content.decode()
    assert "100,000.00 EUR" in facility_page and 'name="reason"' not in facility_page
    secret = WebhookEndpoint.objects.get().secret
    assert (
        secret
        not in client.get(reverse("admin:financing_webhookendpoint_changelist")).content.decode()
    )
    listing = client.get(reverse("admin:financing_blacklisting_changelist")).content.decode()
    assert "Lift…" not in listing and "Blacklist a merchant" not in listing
    assert (
        client.post(
            reverse("admin:financing_facility_change", args=[line.pk]), _facility_form(line)
        ).status_code
        == 403
    )
