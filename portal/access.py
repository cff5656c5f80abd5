"""Who is asking, and for which merchant: settled here before any portal view runs.

A portal user is an authenticated, non-staff user with at least one membership. Staff are
refused (403) even with membership rows: the bank's people never act as a merchant. A user
who enrolled an authenticator must have passed its code this session. The merchant acted for
is the one stored in the session by sign-in or by the switch page, re-checked against the
user's memberships on every request, so a membership revoked mid-session takes effect at once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from merchants.models import Membership, Merchant
from merchants.selectors import membership_for, memberships_of
from portal.auth.totp import totp_pending

SESSION_MERCHANT = "portal_merchant"

View = Callable[..., HttpResponse]


@dataclass(frozen=True)
class PortalContext:
    """The merchant a request acts for, the user's role there, and every merchant they may pick."""

    membership: Membership
    memberships: tuple[Membership, ...]

    @property
    def merchant(self) -> Merchant:
        return self.membership.merchant

    @property
    def role(self) -> str:
        return self.membership.role


def refused(request: HttpRequest, message: str) -> HttpResponse:
    """A 403 page in words a supplier understands."""
    return render(request, "portal/denied.html", {"message": message}, status=403)


def portal_user_required(view: View) -> View:
    """Let through signed-in, non-staff users whose second factor (if enrolled) is done."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("portal:login"))
        if user.is_staff or user.is_superuser:
            return refused(
                request,
                _("This portal is for merchants. Bank staff work in the officer admin."),
            )
        if totp_pending(request):
            return redirect_to_login(request.get_full_path(), reverse("portal:otp"))
        return view(request, *args, **kwargs)

    return wrapped


def merchant_required(view: View) -> View:
    """Also settle the merchant acted for: ``request.portal`` is a ``PortalContext``."""

    @portal_user_required
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        memberships = tuple(memberships_of(user=request.user))
        if not memberships:
            return refused(request, _("Your sign-in is not linked to any merchant yet."))
        chosen = request.session.get(SESSION_MERCHANT)
        current = next((m for m in memberships if m.merchant.public_id == chosen), None)
        if current is None and len(memberships) == 1:
            current = memberships[0]
            request.session[SESSION_MERCHANT] = current.merchant.public_id
        if current is None:
            # Several merchants and none chosen (or the chosen one was revoked): ask.
            query = urlencode({"next": request.get_full_path()})
            return redirect(f"{reverse('portal:switch')}?{query}")
        request.portal = PortalContext(membership=current, memberships=memberships)  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapped


def merchant_choose(request: HttpRequest, *, public_id: str) -> Membership | None:
    """Act for the merchant with ``public_id`` from now on, if the user is a member of it."""
    membership = membership_for(user=request.user, merchant_public_id=public_id)
    if membership is not None:
        request.session[SESSION_MERCHANT] = membership.merchant.public_id
    return membership


def portal_context(request: HttpRequest) -> PortalContext:
    """The context ``merchant_required`` attached to the request."""
    context: PortalContext = request.portal  # type: ignore[attr-defined]
    return context
