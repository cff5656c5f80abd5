"""The guard on everything that exists for the demo only: its seeds and its code printer.

They create logins with published passwords and TOTP secrets, or print a second factor to
whoever can run manage.py: harmless in the demo, a back door anywhere else. Only the demo
settings (config/settings/local.py) set CHAINFIN_DEMO; production forces it off.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import CommandError


def demo_only(command: str) -> None:
    """Return when the demo settings are active.

    :raises CommandError: any other settings are (production, or a mis-set environment).
    """
    if not getattr(settings, "CHAINFIN_DEMO", False):
        raise CommandError(
            f"{command} is for the demo only and refuses to run with these settings "
            f"({settings.SETTINGS_MODULE}): it would create published logins or print a second"
            " factor. Run it under config.settings.local (make demo)."
        )
