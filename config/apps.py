"""The admin app, installed with Chainfin's officer site as its default site.

This module is imported while the app registry is still loading, so it names the site by its
dotted path; config/admin_site.py imports forms and models and may only load afterwards.
"""

from __future__ import annotations

from axes.apps import AppConfig as AxesConfig  # type: ignore[import-untyped]
from django.contrib.admin.apps import AdminConfig
from django_otp.plugins.otp_totp.apps import (  # type: ignore[import-untyped]
    DefaultConfig as TotpConfig,
)


class OfficerAdminConfig(AdminConfig):
    # Every `@admin.register` and `admin.site` in any app, ours or a library's, lands here.
    default_site = "config.admin_site.OfficerAdminSite"


# Two libraries' apps, named in the officer admin for what officers find there (their labels,
# and so their tables and migrations, stay the libraries' own).
class TwoFactorDevicesConfig(TotpConfig):  # type: ignore[misc]
    verbose_name = "Two-factor devices"


class SignInAttemptsConfig(AxesConfig):  # type: ignore[misc]
    verbose_name = "Sign-in attempts"
