"""Sign-in, second factor, sign-out, password reset, choosing the merchant, locked-out page."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from config.two_factor import totp_device_for, totp_secret
from merchants.selectors import memberships_of
from portal.access import (
    SESSION_MERCHANT,
    merchant_choose,
    merchant_required,
    portal_context,
    portal_user_required,
    refused,
)
from portal.auth.forms import CodeForm, PortalAuthenticationForm, PortalPasswordResetForm
from portal.auth.totp import (
    totp_enrol_confirm,
    totp_enrol_start,
    totp_pending,
    totp_pending_device,
    totp_uri,
    totp_verify,
)


def _next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ) and target.startswith("/portal/"):
        return target
    return default


class PortalLoginView(auth_views.LoginView):
    """Django's login (a new session key at sign-in, CSRF), with django-axes counting failures."""

    template_name = "portal/auth/login.html"
    authentication_form = PortalAuthenticationForm

    def form_valid(self, form: PortalAuthenticationForm) -> HttpResponse:  # type: ignore[override]
        response = super().form_valid(form)
        self.request.session.pop(SESSION_MERCHANT, None)
        return response

    def get_success_url(self) -> str:
        target = _next(self.request, reverse("portal:dashboard"))
        if totp_device_for(user=self.request.user) is not None:  # type: ignore[arg-type]
            return f"{reverse('portal:otp')}?{urlencode({'next': target})}"
        return target


login = PortalLoginView.as_view()
logout = auth_views.LogoutView.as_view(next_page=reverse_lazy("portal:login"))


@require_http_methods(["GET", "POST"])
def otp(request: HttpRequest) -> HttpResponse:
    """The second step of sign-in for users who enrolled an authenticator app."""
    if not request.user.is_authenticated:
        return redirect("portal:login")
    target = _next(request, reverse("portal:dashboard"))
    if not totp_pending(request):
        return redirect(target)
    form = CodeForm(request.POST or None)
    if form.is_valid():
        if totp_verify(request, token=form.cleaned_data["token"]):
            return redirect(target)
        form.add_error("token", _("That code is not right, or it has expired. Try the next one."))
    return render(request, "portal/auth/otp.html", {"form": form, "next": target})


@portal_user_required
@require_http_methods(["GET", "POST"])
def switch(request: HttpRequest) -> HttpResponse:
    """Choose which of the user's merchants to act for; a merchant not theirs is a 403."""
    memberships = list(memberships_of(user=request.user))
    if request.method == "POST":
        if merchant_choose(request, public_id=request.POST.get("merchant", "")) is None:
            return refused(request, _("You are not a member of that merchant."))
        return redirect(_next(request, reverse("portal:dashboard")))
    return render(
        request,
        "portal/auth/switch.html",
        {
            "memberships": memberships,
            "current": request.session.get(SESSION_MERCHANT),
            "next": _next(request, ""),
        },
    )


@merchant_required
@require_http_methods(["GET", "POST"])
def security(request: HttpRequest) -> HttpResponse:
    """Two-step sign-in: turn it on with an authenticator app (scan or type the secret)."""
    user: Any = request.user
    form = CodeForm(request.POST if request.POST.get("action") == "confirm" else None)
    if request.method == "POST" and request.POST.get("action") == "start":
        totp_enrol_start(user=user)
    elif form.is_bound and form.is_valid():
        if totp_enrol_confirm(request, token=form.cleaned_data["token"]):
            context = {"portal": portal_context(request), "enabled": True, "done": True}
            return render(request, "portal/auth/security.html", context)
        form.add_error("token", _("That code is not right, or it has expired. Try the next one."))
    pending = totp_pending_device(user=user)
    return render(
        request,
        "portal/auth/security.html",
        {
            "portal": portal_context(request),
            "enabled": totp_device_for(user=user) is not None,
            "pending": pending,
            "uri": totp_uri(pending, username=user.get_username()) if pending else "",
            "secret": pending and _spaced(pending),
            "form": form,
        },
    )


def _spaced(device: Any) -> str:
    secret = totp_secret(device)
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


password_reset = auth_views.PasswordResetView.as_view(
    from_email=settings.PORTAL_FROM_EMAIL,
    template_name="portal/auth/password_reset.html",
    email_template_name="portal/auth/password_reset_email.txt",
    subject_template_name="portal/auth/password_reset_subject.txt",
    form_class=PortalPasswordResetForm,
    success_url=reverse_lazy("portal:password_reset_done"),
)
password_reset_done = auth_views.PasswordResetDoneView.as_view(
    template_name="portal/auth/password_reset_done.html"
)
password_reset_confirm = auth_views.PasswordResetConfirmView.as_view(
    template_name="portal/auth/password_reset_confirm.html",
    success_url=reverse_lazy("portal:password_reset_complete"),
)
password_reset_complete = auth_views.PasswordResetCompleteView.as_view(
    template_name="portal/auth/password_reset_complete.html"
)


def locked_out(
    request: HttpRequest, credentials: Any = None, *args: Any, **kwargs: Any
) -> HttpResponse:
    """What django-axes answers once an account is locked (AXES_LOCKOUT_CALLABLE)."""
    return render(request, "portal/auth/locked.html", status=429)
