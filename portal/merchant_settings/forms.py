"""The settings forms. The IBAN field never renders back what was typed: the number is shown
nowhere, not even on the page that says it was mistyped."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from schwifty import IBAN
from schwifty import exceptions as iban_errors

from merchants.models import Membership
from portal.templatetags.portal import ROLE_WORDS

ROLE_CHOICES = [(role, ROLE_WORDS[role]) for role in Membership.Role.values]

# schwifty's messages are English and technical; a supplier reads these instead.
IBAN_PROBLEMS: list[tuple[type[Exception], Any]] = [
    (iban_errors.InvalidCountryCode, _("The first two letters are not a country that uses IBANs.")),
    (iban_errors.InvalidLength, _("This IBAN has the wrong number of characters for its country.")),
    (iban_errors.InvalidChecksumDigits, _("This IBAN has a typo: its check digits do not match.")),
]


class MemberAddForm(forms.Form):
    email = forms.EmailField(label=_("Email address"), max_length=150)
    role = forms.ChoiceField(label=_("Role"), choices=ROLE_CHOICES, initial="viewer")


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=ROLE_CHOICES)


class UnechoedInput(forms.TextInput):
    """A text box that comes back empty after a mistake, so the number never reaches a page."""

    def format_value(self, value: Any) -> str | None:
        return None


class BankAccountForm(forms.Form):
    holder_name = forms.CharField(
        label=_("Account holder"),
        max_length=70,
        help_text=_("The name the bank has for the account, usually your company's."),
    )
    iban = forms.CharField(
        label=_("IBAN"),
        max_length=42,
        widget=UnechoedInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def clean_iban(self) -> str:
        typed = self.cleaned_data["iban"]
        try:
            return str(IBAN(typed).compact)
        except iban_errors.SchwiftyException as error:
            for kind, message in IBAN_PROBLEMS:
                if isinstance(error, kind):
                    raise forms.ValidationError(message, code="iban") from None
            raise forms.ValidationError(
                _("This is not a valid IBAN. Copy it from a bank statement and try again."),
                code="iban",
            ) from None


class ApiKeyIssueForm(forms.Form):
    label = forms.CharField(
        label=_("Name (optional)"),
        max_length=100,
        required=False,
        help_text=_("For example, the name of the system that will use it."),
    )
