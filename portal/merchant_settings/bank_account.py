"""Settings, payout bank account: shown masked; an owner proposes a new one, which pays only
once a senior officer of the bank has confirmed it (a changed payee is the classic fraud)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from financing.exceptions import WrongState
from financing.services.bank_accounts import bank_account_request
from merchants.exceptions import BankDetailsInvalid, NotAnOwner
from merchants.models import BankAccount
from merchants.selectors import bank_accounts_of
from portal.access import portal_context, refused
from portal.merchant_settings.forms import BankAccountForm
from portal.merchant_settings.owners import owners_only_message, settings_render, settings_view


def _page(request: HttpRequest, form: BankAccountForm, status: int = 200) -> HttpResponse:
    accounts = list(bank_accounts_of(merchant=portal_context(request).merchant))

    def newest(status: str) -> BankAccount | None:
        return next((a for a in accounts if a.status == status), None)

    return settings_render(
        request,
        "portal/settings/bank_account.html",
        tab="bank",
        status=status,
        active=newest(BankAccount.Status.ACTIVE),
        proposed=newest(BankAccount.Status.PROPOSED),
        rejected=newest(BankAccount.Status.REJECTED),
        form=form,
    )


@sensitive_post_parameters("iban")
@settings_view
@require_http_methods(["GET", "POST"])
def bank_account(request: HttpRequest) -> HttpResponse:
    """The account payouts go to, masked; an owner asks for a new one."""
    if request.method == "GET":
        return _page(request, BankAccountForm())
    form = BankAccountForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    try:
        bank_account_request(
            merchant=portal_context(request).merchant,
            holder_name=form.cleaned_data["holder_name"],
            iban=form.cleaned_data["iban"],
            owner=request.user,  # type: ignore[arg-type]
            now=timezone.now(),
        )
    except NotAnOwner:
        return refused(request, owners_only_message())
    except BankDetailsInvalid:
        form.add_error(
            "iban", _("This is not a valid IBAN. Copy it from a bank statement and try again.")
        )
        return _page(request, form, status=400)
    except WrongState:
        # The one open proposal per merchant (a database constraint) is already taken.
        form.add_error(
            None,
            _(
                "A change is already waiting for the bank. Once the bank has decided, you can "
                "ask again."
            ),
        )
        return _page(request, form, status=409)
    messages.success(
        request,
        _("Thank you. The bank will check the new account with you before any money goes to it."),
    )
    return redirect("portal:settings_bank_account")
