"""The portal's sign-in, second-factor and password-reset forms."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.utils.translation import gettext_lazy as _

from merchants.selectors import memberships_of


class PortalAuthenticationForm(AuthenticationForm):
    """Username and password; staff and users of no merchant are turned away in words."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _(
            "That username and password do not match. Check them and try again; after "
            "several failed attempts the account is locked for a while."
        ),
        "inactive": _("This account is switched off. Ask the bank to switch it back on."),
        "staff": _("This sign-in is for merchants. Bank staff sign in at the officer admin."),
        "no_merchant": _("Your sign-in is not linked to any merchant yet. Ask the bank."),
    }

    def confirm_login_allowed(self, user: Any) -> None:
        super().confirm_login_allowed(user)
        if user.is_staff or user.is_superuser:
            raise forms.ValidationError(self.error_messages["staff"], code="staff")
        if not memberships_of(user=user).exists():
            raise forms.ValidationError(self.error_messages["no_merchant"], code="no_merchant")


class PortalPasswordResetForm(PasswordResetForm):
    """Reset links go to merchant users only: staff passwords are the bank's to reset."""

    def get_users(self, email: str) -> Iterator[Any]:
        return (user for user in super().get_users(email) if not user.is_staff)


class CodeForm(forms.Form):
    token = forms.CharField(
        label=_("Six-digit code from your authenticator app"),
        min_length=6,
        max_length=6,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "pattern": "[0-9]*"}
        ),
    )
