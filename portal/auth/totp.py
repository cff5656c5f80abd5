"""Optional TOTP for merchant users: enrol an authenticator app, then a code at every sign-in.

Same devices as the officers' (django-otp's TOTPDevice, config/two_factor.py); for merchants
it is a choice, for officers a must.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django_otp import login as otp_login  # type: ignore[import-untyped]
from django_otp.plugins.otp_totp.models import TOTPDevice  # type: ignore[import-untyped]

from config.two_factor import DEVICE_NAME, totp_device_for, totp_secret

PENDING_NAME = "authenticator app (not confirmed)"


def totp_pending(request: HttpRequest) -> bool:
    """True when the user enrolled an authenticator and has not given its code this session."""
    user: Any = request.user
    if not user.is_authenticated or user.is_verified():
        return False
    return totp_device_for(user=user) is not None


def totp_verify(request: HttpRequest, *, token: str) -> bool:
    """Check ``token`` against the user's confirmed device; on success mark the session verified.

    django-otp throttles the device after each failure, so guessing the six digits is slow.
    """
    device = totp_device_for(user=request.user)  # type: ignore[arg-type]
    if device is None or not device.verify_token(token):
        return False
    otp_login(request, device)
    return True


def totp_enrol_start(*, user: Any) -> TOTPDevice:
    """Give the user a fresh unconfirmed device whose secret they type into their app."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        device: TOTPDevice = TOTPDevice.objects.create(
            user=user, name=PENDING_NAME, confirmed=False
        )
        return device


def totp_enrol_confirm(request: HttpRequest, *, token: str) -> bool:
    """Confirm the unconfirmed device with a code from the app; it then replaces any other."""
    user: Any = request.user
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").last()
    if device is None or not device.verify_token(token):
        return False
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=True).delete()
        device.confirmed = True
        device.name = DEVICE_NAME
        device.save(update_fields=["confirmed", "name"])
    otp_login(request, device)
    return True


def totp_pending_device(*, user: Any) -> TOTPDevice | None:
    device: TOTPDevice | None = (
        TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").last()
    )
    return device


def totp_uri(device: TOTPDevice, *, username: str) -> str:
    """The otpauth:// URI an authenticator app takes (typed or as a QR code)."""
    issuer = quote(settings.OTP_TOTP_ISSUER)
    return (
        f"otpauth://totp/{issuer}:{quote(username)}?secret={totp_secret(device)}"
        f"&issuer={issuer}&digits={device.digits}&period={device.step}"
    )
