"""Officers' TOTP devices: enrol one, show its secret, compute its code (the demo only).

Project-wide auth wiring, like the admin site it serves; the commands `totp_enroll` and
`totp_code` and the demo seed call these.
"""

from __future__ import annotations

from base64 import b32encode
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.db import transaction
from django_otp.oath import TOTP  # type: ignore[import-untyped]
from django_otp.plugins.otp_totp.models import TOTPDevice  # type: ignore[import-untyped]

if TYPE_CHECKING:
    from django.contrib.auth.models import User

DEVICE_NAME = "authenticator app"


class TotpDeviceExists(Exception):
    """The user already has a TOTP device; replacing it must be asked for."""


def totp_device_enroll(*, user: User, key: str | None = None, replace: bool = False) -> TOTPDevice:
    """Give ``user`` one confirmed TOTP device; ``key`` (hex) is random unless given.

    :raises TotpDeviceExists: the user has a TOTP device and ``replace`` is false.
    """
    with transaction.atomic():
        # Two enrolments at once must not leave the officer with two devices (and a login
        # form asking which one): the user row serializes them.
        get_user_model()._default_manager.select_for_update().filter(pk=user.pk).first()
        existing = TOTPDevice.objects.filter(user=user)
        if existing.exists():
            if not replace:
                raise TotpDeviceExists(user.get_username())
            existing.delete()
        device = TOTPDevice(user=user, name=DEVICE_NAME, confirmed=True)
        if key is not None:
            device.key = key
        device.save()
        return device


def totp_device_for(*, user: User) -> TOTPDevice | None:
    """The user's confirmed TOTP device (the newest, should there be several), or None."""
    device: TOTPDevice | None = (
        TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").last()
    )
    return device


def totp_secret(device: TOTPDevice) -> str:
    """The device's key in base32, as an authenticator app takes it when typed in."""
    return b32encode(device.bin_key).decode()


def totp_code(device: TOTPDevice, *, at: float) -> str:
    """The code an authenticator app holding ``device``'s key shows at Unix time ``at``.

    The app's clock is taken to be ours: no drift, which the device tolerates either way.
    """
    generator = TOTP(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
    generator.time = at
    return f"{generator.token():0{device.digits}d}"
