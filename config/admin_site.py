"""The officer admin: every view needs a staff user whose session a TOTP device verified.

A password alone opens nothing: `OTPAdminSite.has_permission` also asks `is_verified()`, and
`get_urls` puts that check in front of every URL the site serves, including views that an app's
`ModelAdmin.get_urls` adds without wrapping them in `admin_site.admin_view`. Only the login
page is open; it asks for the password and the current code together.
"""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, reverse
from django.utils import timezone
from django.utils.module_loading import import_string
from django_otp import devices_for_user  # type: ignore[import-untyped]
from django_otp.admin import (  # type: ignore[import-untyped]
    OTPAdminAuthenticationForm,
    OTPAdminSite,
)

_OPEN = frozenset({"login"})  # reachable without a verified session: the way in


class OfficerAuthenticationForm(OTPAdminAuthenticationForm):  # type: ignore[misc]
    """Username, password and code in one step when the officer has exactly one device.

    django-otp makes the user pick a device so that a code is never tried against every
    device in turn (each miss counts as a failure and throttles it); with one device there is
    nothing to pick, and the officer need not submit the form twice.
    """

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super(OTPAdminAuthenticationForm, self).clean()
        user = self.get_user()
        if user is not None and not cleaned.get("otp_device"):
            devices = list(devices_for_user(user))
            if len(devices) == 1:
                cleaned["otp_device"] = devices[0].persistent_id
        self.cleaned_data = cleaned
        self.clean_otp(user)
        return cleaned


class OfficerAdminSite(OTPAdminSite):  # type: ignore[misc]
    site_header = "Chainfin — bank officers"
    site_title = "Chainfin"
    index_title = "Officer home"
    login_form = OfficerAuthenticationForm
    # Lists get the whole width of a 1,366-pixel screen: beside the sidebar, most wrapped every
    # row onto three to five lines. Officer home lists every model; breadcrumbs lead back to it.
    enable_nav_sidebar = False

    def __init__(self, name: str = "admin") -> None:
        # The instance name stays "admin": every reverse("admin:…") in the project keeps working.
        super().__init__(name)

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        """The officer's home: what awaits them first (settings.OFFICER_HOME), then the apps."""
        sections = import_string(settings.OFFICER_HOME)(user=request.user, now=timezone.now())
        return super().index(request, {"home_sections": sections, **(extra_context or {})})

    def get_urls(self) -> list[URLPattern | URLResolver]:
        return [
            pattern
            if isinstance(pattern, URLPattern) and pattern.name in _OPEN
            else self._verified_only(pattern)
            for pattern in super().get_urls()
        ]

    def _verified_only(self, pattern: URLPattern | URLResolver) -> URLPattern | URLResolver:
        """Rebuild ``pattern`` (and everything under it) with the verification check in front."""
        if isinstance(pattern, URLResolver):
            return URLResolver(
                pattern.pattern,
                [self._verified_only(child) for child in pattern.url_patterns],
                pattern.default_kwargs,
                pattern.app_name,
                pattern.namespace,
            )
        view = pattern.callback

        @functools.wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not self.has_permission(request):
                login = reverse("admin:login", current_app=self.name)
                return redirect_to_login(request.get_full_path(), login)
            response: HttpResponse = view(request, *args, **kwargs)
            return response

        return URLPattern(pattern.pattern, guarded, pattern.default_args, pattern.name)
