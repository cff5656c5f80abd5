"""Settings, API credentials: keys the merchant's own systems sign their calls with. The key
and secret are shown once, on the page that issues them, and are stored only hashed and sealed."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST

from merchants.exceptions import MerchantNotActive
from merchants.selectors import api_keys_of
from merchants.services import api_key_issue, api_key_revoke
from portal.access import portal_context
from portal.merchant_settings.forms import ApiKeyIssueForm
from portal.merchant_settings.owners import settings_render, settings_view


def _page(request: HttpRequest, form: ApiKeyIssueForm, status: int = 200) -> HttpResponse:
    keys = api_keys_of(merchant=portal_context(request).merchant)
    return settings_render(
        request,
        "portal/settings/api_keys.html",
        tab="api_keys",
        status=status,
        keys=keys,
        form=form,
    )


@never_cache
@settings_view
@require_http_methods(["GET", "POST"])
@sensitive_variables("issued")
def api_keys(request: HttpRequest) -> HttpResponse:
    """The merchant's keys; an owner issues one and sees its secret this once."""
    if request.method == "GET":
        return _page(request, ApiKeyIssueForm())
    form = ApiKeyIssueForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    portal = portal_context(request)
    try:
        issued = api_key_issue(
            merchant=portal.merchant, label=form.cleaned_data["label"], now=timezone.now()
        )
    except MerchantNotActive:
        form.add_error(
            None, _("Your company's account is paused, so no new keys can be issued. Ask the bank.")
        )
        return _page(request, form, status=409)
    # Rendered here, never redirected to: the secret is in no session, no URL and no later page.
    return settings_render(
        request, "portal/settings/api_key_issued.html", tab="api_keys", issued=issued
    )


@settings_view
@require_POST
def api_key_revoke_view(request: HttpRequest, prefix: str) -> HttpResponse:
    """Stop a key working from now on; another merchant's key is not found."""
    key = api_keys_of(merchant=portal_context(request).merchant).filter(prefix=prefix).first()
    if key is None:
        raise Http404("No such key.")
    api_key_revoke(api_key=key, now=timezone.now())
    messages.success(
        request, _("The key was revoked. Calls signed with it are refused from now on.")
    )
    return redirect("portal:settings_api_keys")
