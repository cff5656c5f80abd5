"""Settings are for every member to read and for owners to change."""

from __future__ import annotations

import functools
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from merchants.models import Membership
from portal.access import View, merchant_required, portal_context, refused


def settings_view(view: View) -> View:
    """``merchant_required``, and a POST from a finance or viewer member is a 403 in words.

    The services check the role again under their locks; this answers before any form is read.
    """

    @merchant_required
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST" and not is_owner(request):
            return refused(request, owners_only_message())
        return view(request, *args, **kwargs)

    return wrapped


def is_owner(request: HttpRequest) -> bool:
    return portal_context(request).role == Membership.Role.OWNER


def owners_only_message() -> str:
    return _(
        "Only an owner can change the settings. You can see them; ask an owner of your "
        "company to make the change."
    )


def settings_render(
    request: HttpRequest, template: str, *, tab: str, status: int = 200, **context: Any
) -> HttpResponse:
    """Render one tab of the settings, with what every tab shows (merchant, role, tabs)."""
    base = {
        "portal": portal_context(request),
        "nav": "settings",
        "tab": tab,
        "owner": is_owner(request),
    }
    return render(request, template, base | context, status=status)
