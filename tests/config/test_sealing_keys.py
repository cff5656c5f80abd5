"""Sealed secrets live under CHAINFIN_SEALING_KEYS, not DJANGO_SECRET_KEY: the secret key
rotates freely, and the sealing keys rotate with `manage.py reseal_secrets`."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.core.management.base import CommandError

from financing.models import WebhookEndpoint
from merchants import credentials
from merchants.models import ApiKey
from merchants.services import api_key_issue

pytestmark = pytest.mark.django_db

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


@pytest.fixture
def sealed_rows(settings, marketplace, now) -> tuple[str, str]:
    """An API key and a webhook endpoint sealed under OLD; their secrets in the clear."""
    settings.CHAINFIN_SEALING_KEYS = [OLD]
    issued = api_key_issue(marketplace=marketplace, now=now)
    endpoint = WebhookEndpoint.objects.create(marketplace=marketplace, url="https://x.invalid/h")
    return issued.signing_secret, endpoint.secret


def _opened() -> tuple[str, str]:
    api_key = ApiKey.objects.get()
    endpoint = WebhookEndpoint.objects.get()
    return credentials.secret_open(api_key.signing_secret_sealed), endpoint.secret


def test_rotating_the_django_secret_key_leaves_sealed_secrets_readable(
    settings, sealed_rows
) -> None:
    settings.SECRET_KEY = "a-completely-different-secret-key-after-rotation-0123456789"
    assert _opened() == sealed_rows


def test_rotation_new_key_first_reseal_then_drop_the_old(settings, sealed_rows) -> None:
    settings.CHAINFIN_SEALING_KEYS = [NEW, OLD]
    assert _opened() == sealed_rows  # the old key still opens what it sealed
    with pytest.raises(CommandError, match="2 secrets are not under the newest key"):
        call_command("reseal_secrets", "--check", stdout=StringIO())

    out = StringIO()
    call_command("reseal_secrets", stdout=out)
    assert "merchants.ApiKey.signing_secret_sealed: 1 resealed" in out.getvalue()
    assert "financing.WebhookEndpoint.secret_sealed: 1 resealed" in out.getvalue()
    call_command("reseal_secrets", "--check", stdout=StringIO())  # exits 0 now

    settings.CHAINFIN_SEALING_KEYS = [NEW]
    assert _opened() == sealed_rows


def test_dropping_the_old_key_before_resealing_locks_the_secrets_out(settings, sealed_rows) -> None:
    # Negative control for the test above: without reseal_secrets, the rows are unreadable.
    settings.CHAINFIN_SEALING_KEYS = [NEW]
    with pytest.raises(InvalidToken):
        _opened()
    with pytest.raises(CommandError, match="no key in CHAINFIN_SEALING_KEYS opens it"):
        call_command("reseal_secrets", stdout=StringIO())


def test_rows_sealed_before_the_ring_existed_open_and_reseal(settings, sealed_rows) -> None:
    # An upgraded installation: its secrets were sealed under a key derived from SECRET_KEY.
    legacy = credentials._fernet_from_secret_key(settings.SECRET_KEY)
    ApiKey.objects.update(signing_secret_sealed=legacy.encrypt(sealed_rows[0].encode()))
    assert _opened() == sealed_rows
    call_command("reseal_secrets", stdout=StringIO())
    settings.SECRET_KEY = "rotated-after-the-reseal-0123456789-abcdefghijklmnopqrstuvwxyz"
    assert _opened() == sealed_rows
