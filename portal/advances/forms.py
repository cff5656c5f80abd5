"""The advance forms: invoices to price, the price to accept, a new price to accept, a withdrawal.

Hashes and request keys travel in hidden fields and are checked for shape here; whether they
still name the price is the services' business (``QuoteChanged``).
"""

from __future__ import annotations

import secrets
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from financing.eligibility import Verdict
from financing.services.requests import MAX_RECEIVABLES_PER_ADVANCE
from ledger.event_fields import REF_MAX_LENGTH

HASH = r"^[0-9a-f]{64}$"
REQUEST_KEY = r"^portal-[0-9a-f]{32}$"
DAMAGED = _("The form is damaged: open the price again.")


def new_request_key() -> str:
    """A fresh key for one "Accept and request" form: submitting it twice makes one advance."""
    return f"portal-{secrets.token_hex(16)}"


def _price_field() -> forms.RegexField:
    """The hash of the price the merchant saw, which it accepts by naming it."""
    missing = _("The price is missing: open the price again.")
    return forms.RegexField(
        label=_("Price"),
        regex=HASH,
        widget=forms.HiddenInput,
        error_messages={"invalid": missing, "required": missing},
    )


class InvoicesChoiceForm(forms.Form):
    """The invoices to finance together, chosen among those that can be financed today."""

    refs = forms.MultipleChoiceField(
        label=_("Invoices"),
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": _("Tick at least one invoice."),
            "invalid_choice": _(
                "Invoice %(value)s is not one of yours that can be financed today."
            ),
        },
    )

    def __init__(self, data: Any = None, *, fundable: tuple[Verdict, ...], **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        self.currencies = {v.ref: v.currency for v in fundable}
        refs = self.fields["refs"]
        assert isinstance(refs, forms.MultipleChoiceField)
        refs.choices = [(v.ref, v.ref) for v in fundable]

    def clean_refs(self) -> list[str]:
        refs: list[str] = self.cleaned_data["refs"]
        if len(set(refs)) != len(refs):
            raise forms.ValidationError(_("Tick each invoice once."))
        if len(refs) > MAX_RECEIVABLES_PER_ADVANCE:
            raise forms.ValidationError(
                _("At most %(count)d invoices go into one advance.")
                % {"count": MAX_RECEIVABLES_PER_ADVANCE}
            )
        if len({self.currencies[ref] for ref in refs}) > 1:
            raise forms.ValidationError(
                _("One advance is in one currency: choose invoices in the same currency.")
            )
        return refs


class InvoiceRefsField(forms.Field):
    """Invoice refs posted back with a price. Which are the merchant's, and fundable, is the
    service's to say: a double submit names invoices its first submit already holds."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[str]:
        refs = [str(ref) for ref in value] if isinstance(value, list | tuple) else []
        if any(not ref or len(ref) > REF_MAX_LENGTH for ref in refs):
            raise forms.ValidationError(DAMAGED)
        return refs


class AdvanceRequestForm(forms.Form):
    """ "Accept and request": the invoices, the price shown (its hash) and this form's own key."""

    refs = InvoiceRefsField(
        label=_("Invoices"), error_messages={"required": _("Tick at least one invoice.")}
    )
    terms_hash = _price_field()
    request_key = forms.RegexField(
        label=_("Request"),
        regex=REQUEST_KEY,
        widget=forms.HiddenInput,
        error_messages={"invalid": DAMAGED, "required": DAMAGED},
    )


class PriceAcceptForm(forms.Form):
    """Accept the new price of an advance waiting for the merchant's answer."""

    terms_hash = _price_field()


class WithdrawForm(forms.Form):
    """Withdraw a request (or decline its new price), saying why if the merchant wishes."""

    reason = forms.CharField(
        label=_("Why (optional)"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
