"""Advances: choose invoices, see the price, accept it; follow an advance, withdraw it, answer
a new price. One service call per action; every refusal is told in words with a 4xx."""

from __future__ import annotations

import functools
from datetime import date, datetime
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from financing.business_day import business_day
from financing.exceptions import AdvanceRefused, QuoteChanged, RequestKeyReused, WrongState
from financing.models import Advance
from financing.services import quotes as price_answers
from financing.services import requests as price_requests
from merchants.models import Membership
from portal.access import PortalContext, View, merchant_required, portal_context
from portal.advances.forms import (
    AdvanceRequestForm,
    InvoicesChoiceForm,
    PriceAcceptForm,
    WithdrawForm,
    new_request_key,
)
from portal.advances.selectors import (
    Fundable,
    advance_detail,
    advance_of,
    advances_for_merchant,
    fundable_receivables,
    price_of_quote,
)
from portal.advances.words import refusal_in_words

PAGE_SIZE = 25
# Who may ask for money, accept a price or withdraw: a viewer reads only.
ACTING_ROLES = frozenset({Membership.Role.OWNER, Membership.Role.FINANCE})


def _can_act(portal: PortalContext) -> bool:
    return portal.role in ACTING_ROLES


def acting_required(view: View) -> View:
    """POST only, by an owner or a finance member; a viewer gets a 403 page that says why."""

    @merchant_required
    @require_POST
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        portal = portal_context(request)
        if not _can_act(portal):
            context = {"portal": portal, "nav": "advances"}
            return render(request, "portal/advances/refused.html", context, status=403)
        return view(request, *args, **kwargs)

    return wrapped


def _clock() -> tuple[datetime, date]:
    """Now, and the bank's business day it falls on: the day a quote is priced for, so that
    the price shown is the price the request is checked against."""
    now = timezone.now()
    return now, business_day(now)


def _own_advance(portal: PortalContext, ref: str) -> Advance:
    advance = advance_of(merchant=portal.merchant, ref=ref)
    if advance is None:
        raise Http404("No such advance.")
    return advance


@merchant_required
def advance_list(request: HttpRequest) -> HttpResponse:
    portal = portal_context(request)
    page = Paginator(advances_for_merchant(merchant=portal.merchant), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {"portal": portal, "nav": "advances", "page": page, "can_act": _can_act(portal)}
    return render(request, "portal/advances/list.html", context)


def _choose(
    request: HttpRequest,
    fundable: Fundable,
    form: InvoicesChoiceForm,
    *,
    refusal: list[str] | None = None,
    status: int = 200,
) -> HttpResponse:
    portal = portal_context(request)
    context = {
        "portal": portal,
        "nav": "advances",
        "fundable": fundable,
        "form": form,
        "refusal": refusal or [],
        "can_act": _can_act(portal),
    }
    return render(request, "portal/advances/new.html", context, status=status)


@merchant_required
def advance_new(request: HttpRequest) -> HttpResponse:
    portal = portal_context(request)
    fundable = fundable_receivables(merchant=portal.merchant, today=_clock()[1])
    return _choose(request, fundable, InvoicesChoiceForm(fundable=fundable.verdicts))


def _price(
    request: HttpRequest, refs: list[str], today: date, *, changed: bool = False
) -> HttpResponse:
    """The price page for ``refs``, with a fresh "Accept and request" form; or, if the bank
    cannot price them now, the choice page saying why."""
    portal = portal_context(request)
    try:
        quote = price_requests.advance_quote(merchant=portal.merchant, refs=refs, today=today)
    except AdvanceRefused as exc:
        fundable = fundable_receivables(merchant=portal.merchant, today=today)
        refusal = refusal_in_words(exc, merchant=portal.merchant, refs=refs, today=today)
        choice = InvoicesChoiceForm(fundable=fundable.verdicts)
        return _choose(request, fundable, choice, refusal=refusal, status=409)
    form = AdvanceRequestForm(
        initial={"refs": refs, "terms_hash": quote.terms_hash, "request_key": new_request_key()}
    )
    context = {
        "portal": portal,
        "nav": "advances",
        "quote": quote,
        "price": price_of_quote(quote),
        "form": form,
        "changed": changed,
        "can_act": _can_act(portal),
    }
    return render(request, "portal/advances/price.html", context, status=409 if changed else 200)


@merchant_required
def advance_price(request: HttpRequest) -> HttpResponse:
    portal = portal_context(request)
    today = _clock()[1]
    fundable = fundable_receivables(merchant=portal.merchant, today=today)
    form = InvoicesChoiceForm(request.GET, fundable=fundable.verdicts)
    if not form.is_valid():
        return _choose(request, fundable, form, status=400)
    return _price(request, form.cleaned_data["refs"], today)


@acting_required
def advance_create(request: HttpRequest) -> HttpResponse:
    portal = portal_context(request)
    now, today = _clock()
    form = AdvanceRequestForm(request.POST)
    if not form.is_valid():
        fundable = fundable_receivables(merchant=portal.merchant, today=today)
        problems = [str(error) for errors in form.errors.values() for error in errors]
        choice = InvoicesChoiceForm(fundable=fundable.verdicts)
        return _choose(request, fundable, choice, refusal=problems, status=400)
    refs = form.cleaned_data["refs"]
    try:
        advance = price_requests.advance_request(
            merchant=portal.merchant,
            refs=refs,
            request_key=form.cleaned_data["request_key"],
            now=now,
            terms_hash=form.cleaned_data["terms_hash"],
        )
    except QuoteChanged:
        return _price(request, refs, today, changed=True)
    except (AdvanceRefused, RequestKeyReused) as exc:
        fundable = fundable_receivables(merchant=portal.merchant, today=today)
        refusal = (
            refusal_in_words(exc, merchant=portal.merchant, refs=refs, today=today)
            if isinstance(exc, AdvanceRefused)
            else [_("This form was used for other invoices already: choose them again.")]
        )
        choice = InvoicesChoiceForm(fundable=fundable.verdicts)
        return _choose(request, fundable, choice, refusal=refusal, status=409)
    messages.success(
        request,
        _(
            "Advance %(ref)s requested. The bank reviews it; until it is approved you can "
            "withdraw it."
        )
        % {"ref": advance.ref},
    )
    return redirect("portal:advance", advance.ref)


def _detail(
    request: HttpRequest,
    advance: Advance,
    *,
    problem: str = "",
    withdraw_form: WithdrawForm | None = None,
    status: int = 200,
) -> HttpResponse:
    portal = portal_context(request)
    context = {
        "portal": portal,
        "nav": "advances",
        "detail": advance_detail(advance=advance),
        "problem": problem,
        "can_act": _can_act(portal),
        "accept_form": PriceAcceptForm(initial={"terms_hash": advance.price_hash}),
        "withdraw_form": withdraw_form or WithdrawForm(),
    }
    return render(request, "portal/advances/detail.html", context, status=status)


@merchant_required
def advance_show(request: HttpRequest, ref: str) -> HttpResponse:
    return _detail(request, _own_advance(portal_context(request), ref))


@acting_required
def advance_accept(request: HttpRequest, ref: str) -> HttpResponse:
    """Accept the new price of an advance in requote, named by its hash."""
    portal = portal_context(request)
    advance = _own_advance(portal, ref)
    form = PriceAcceptForm(request.POST)
    if not form.is_valid():
        problem = " ".join(str(error) for error in form.errors["terms_hash"])
        return _detail(request, advance, problem=problem, status=400)
    now, today = _clock()
    try:
        price_answers.advance_accept(
            advance=advance, terms_hash=form.cleaned_data["terms_hash"], now=now
        )
    except QuoteChanged:
        problem = _(
            "The price changed since you looked. The new price is below: accept it if it suits you."
        )
        return _detail(request, _own_advance(portal, ref), problem=problem, status=409)
    except WrongState:
        problem = _("This advance is not waiting for your answer any more.")
        return _detail(request, _own_advance(portal, ref), problem=problem, status=409)
    except AdvanceRefused as exc:
        refs = list(advance.assignments.values_list("invoice_ref", flat=True))
        reasons = refusal_in_words(exc, merchant=portal.merchant, refs=refs, today=today)
        problem = _("The price expired and the bank cannot price these invoices now: %(why)s") % {
            "why": " ".join(reasons)
        }
        return _detail(request, advance, problem=problem, status=409)
    messages.success(request, _("You accepted the new price. The bank reviews the advance again."))
    return redirect("portal:advance", ref)


@acting_required
def advance_withdraw(request: HttpRequest, ref: str) -> HttpResponse:
    """Withdraw a request not approved yet, or decline its new price (a withdrawal too)."""
    portal = portal_context(request)
    advance = _own_advance(portal, ref)
    form = WithdrawForm(request.POST)
    if not form.is_valid():
        problem = " ".join(str(error) for error in form.errors["reason"])
        return _detail(request, advance, problem=problem, withdraw_form=form, status=400)
    try:
        price_answers.advance_withdraw(
            advance=advance, now=_clock()[0], reason=form.cleaned_data["reason"]
        )
    except WrongState:
        problem = _("Only a request the bank has not approved or decided on can be withdrawn.")
        return _detail(request, _own_advance(portal, ref), problem=problem, status=409)
    messages.success(
        request, _("Advance %(ref)s withdrawn: its invoices are free again.") % {"ref": ref}
    )
    return redirect("portal:advance", ref)
