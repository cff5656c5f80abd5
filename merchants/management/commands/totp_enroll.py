"""manage.py totp_enroll USERNAME [--reset]: give a staff user the TOTP device the admin asks for.

Prints the otpauth:// URI (for a QR code) and the base32 secret (to type into an authenticator
app). Anyone who sees the output can sign in as the officer with the password: hand it over
as you would the password itself.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.two_factor import TotpDeviceExists, totp_device_enroll, totp_secret


class Command(BaseCommand):
    help = "Enrol a staff user's TOTP authenticator; prints the otpauth:// URI and the secret."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Replace the user's device (a lost phone): the old authenticator stops working.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"]
        user = get_user_model()._default_manager.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        if not user.is_staff:
            raise CommandError(
                f"{username!r} is not staff: only officers sign in to the admin with a code."
            )
        try:
            device = totp_device_enroll(user=user, replace=options["reset"])
        except TotpDeviceExists:
            raise CommandError(
                f"{username!r} already has an authenticator; --reset replaces it"
                " (the old one stops working)."
            ) from None
        self.stdout.write(f"otpauth URI: {device.config_url}")
        self.stdout.write(f"secret:      {totp_secret(device)}")
        self.stdout.write(
            f"Add it to {username}'s authenticator app (TOTP, SHA-1, 6 digits, 30 s), then sign"
            " in at /admin/ with the password and the app's current code."
        )
