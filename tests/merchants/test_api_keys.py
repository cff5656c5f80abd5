"""API keys belong to exactly one party, a marketplace or a merchant; closed merchants get none."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from merchants import credentials
from merchants.exceptions import MerchantNotActive
from merchants.models import ApiKey, Merchant
from merchants.services import api_key_issue

pytestmark = pytest.mark.django_db


def _row(**owners: object) -> ApiKey:
    prefix, key = credentials.key_generate()
    return ApiKey.objects.create(
        prefix=prefix,
        key_hash=credentials.key_hash(key),
        signing_secret_sealed=credentials.secret_seal(credentials.secret_generate()),
        created_at=timezone.now(),
        **owners,
    )


@pytest.mark.parametrize("owners", ["both", "neither"])
def test_the_database_refuses_a_key_with_both_owners_or_none(marketplace, merchant, owners) -> None:
    fields = {"marketplace": marketplace, "merchant": merchant} if owners == "both" else {}
    with pytest.raises(IntegrityError, match="apikey_exactly_one_owner"), transaction.atomic():
        _row(**fields)
    assert not ApiKey.objects.exists()


def test_the_database_takes_a_key_of_either_kind(marketplace, merchant) -> None:
    _row(marketplace=marketplace)
    _row(merchant=merchant)
    assert ApiKey.objects.count() == 2


def test_issue_takes_one_owner(marketplace, merchant) -> None:
    now = timezone.now()
    for owners in ({}, {"marketplace": marketplace, "merchant": merchant}):
        with pytest.raises(ValueError, match="exactly one"):
            api_key_issue(now=now, **owners)
    issued = api_key_issue(merchant=merchant, now=now, label="erp")
    assert (issued.api_key.merchant, issued.api_key.marketplace) == (merchant, None)
    assert issued.key.startswith(issued.api_key.prefix + "_")
    assert credentials.key_matches(issued.key, issued.api_key.key_hash)
    assert str(issued.api_key) == f"{issued.api_key.prefix}… ({merchant.public_id}, active)"


def test_a_merchant_may_hold_several_active_keys(merchant) -> None:
    for label in ("old", "new"):
        api_key_issue(merchant=merchant, now=timezone.now(), label=label)
    assert merchant.api_keys.filter(revoked_at__isnull=True).count() == 2


@pytest.mark.parametrize("status", [Merchant.Status.SUSPENDED, Merchant.Status.CLOSED])
def test_only_active_merchants_get_keys(merchant, status) -> None:
    Merchant.objects.filter(pk=merchant.pk).update(status=status)
    merchant.refresh_from_db()
    with pytest.raises(MerchantNotActive, match=f"is {status}"):
        api_key_issue(merchant=merchant, now=timezone.now())
    assert not ApiKey.objects.exists()


# manage.py create_api_key


def test_the_command_issues_a_merchant_key(merchant, capsys) -> None:
    call_command("create_api_key", "--merchant", merchant.public_id, "--label", "erp")
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"api_key", "signing_secret"}
    api_key = ApiKey.objects.get(label="erp")
    assert (api_key.merchant, api_key.marketplace) == (merchant, None)
    assert printed["api_key"].startswith(api_key.prefix + "_")
    assert printed["signing_secret"] == credentials.secret_open(api_key.signing_secret_sealed)


def test_the_command_still_issues_a_marketplace_key(marketplace, capsys) -> None:
    call_command("create_api_key", marketplace.code)
    assert set(json.loads(capsys.readouterr().out)) == {"api_key", "signing_secret"}
    assert ApiKey.objects.get().marketplace == marketplace


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Give a marketplace code for a marketplace key, or --merchant PUBLIC_ID"),
        (["{marketplace}", "--merchant", "{merchant}"], "not both"),
        (["--merchant", "mer_0000000000000000"], "No merchant with public id"),
        (["--merchant", "{merchant}", "--label", "x"], "is closed"),
    ],
    ids=["neither", "both", "unknown merchant", "closed merchant"],
)
def test_the_command_refuses_clearly(marketplace, merchant, args, message) -> None:
    Merchant.objects.filter(pk=merchant.pk).update(status=Merchant.Status.CLOSED)
    filled = [a.format(marketplace=marketplace.code, merchant=merchant.public_id) for a in args]
    with pytest.raises(CommandError, match=message):
        call_command("create_api_key", *filled)
    assert not ApiKey.objects.exists()


# The admin: issue once, revoke; the same flow for merchant keys.


def test_admin_issues_a_merchant_key_once_and_revokes_it(staff_client, merchant) -> None:
    response = staff_client.post(
        reverse("admin:merchants_apikey_add"),
        {"merchant": merchant.pk, "label": "merchant-erp"},
        follow=True,
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert any("Signing secret: cfs_" in m and "API key: cfk_" in m for m in shown), shown
    api_key = ApiKey.objects.get(label="merchant-erp")
    assert (api_key.merchant, api_key.marketplace) == (merchant, None)
    staff_client.post(
        reverse("admin:merchants_apikey_changelist"),
        {"action": "revoke", "_selected_action": [api_key.pk]},
        follow=True,
    )
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    change = staff_client.get(reverse("admin:merchants_apikey_change", args=[api_key.pk]))
    assert change.status_code == 200
    assert merchant.public_id in change.content.decode()


@pytest.mark.parametrize("case", ["both", "neither", "closed merchant"])
def test_admin_refuses_a_key_it_may_not_issue(staff_client, marketplace, merchant, case) -> None:
    data = {
        "both": {"marketplace": marketplace.pk, "merchant": merchant.pk},
        "neither": {},
        "closed merchant": {"merchant": merchant.pk},
    }[case]
    if case == "closed merchant":
        Merchant.objects.filter(pk=merchant.pk).update(status=Merchant.Status.CLOSED)
    response = staff_client.post(reverse("admin:merchants_apikey_add"), {**data, "label": case})
    assert response.status_code == 200  # the form again, with the reason
    errors = str(response.context["adminform"].form.errors)
    expected = "is closed" if case == "closed merchant" else "choose exactly one"
    assert expected in errors, errors
    assert not ApiKey.objects.exists()
