"""manage.py totp_code USERNAME: print a staff user's current sign-in code. The demo only.

Outside the demo settings, or with DEBUG off, it refuses: in production a code comes from the
officer's authenticator app and nowhere else, or the second factor would be whoever can run
manage.py.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.demo_only import demo_only
from config.two_factor import totp_code, totp_device_for


class Command(BaseCommand):
    help = "Print the current TOTP code of a staff user's device (only when DEBUG is true)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        demo_only("totp_code")
        if not settings.DEBUG:
            raise CommandError(
                "totp_code only runs with DEBUG on (the demo). Outside the demo the code comes"
                " from the officer's authenticator app; a lost one is replaced with"
                " `manage.py totp_enroll USERNAME --reset`."
            )
        username = options["username"]
        user = get_user_model()._default_manager.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        device = totp_device_for(user=user)
        if device is None:
            raise CommandError(f"{username!r} has no authenticator: run totp_enroll {username}.")
        now = time.time()
        self.stdout.write(totp_code(device, at=now))
        # The device also accepts a code from the step before (tolerance), so it lasts longer.
        left = device.step - int(now - device.t0) % device.step + device.step * device.tolerance
        self.stderr.write(f"Valid for about {left} s; a code signs in once.")
