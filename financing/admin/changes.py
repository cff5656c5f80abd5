"""Four-eyes in the admin: the changes officers proposed, and bank-wide debtor limits.

A senior officer sees the pending proposals first, each with what it changes (before → after),
and confirms or rejects it on its page; both go through ``financing.services.proposals``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied
from django.db.models import Case, IntegerField, Value, When
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from config.admin_mixins import ReadOnlyAdminMixin
from financing.admin.formatting import diff_html, refusal
from financing.admin.writes import PROPOSED, object_seen, officer_of
from financing.debtor_exposure import bank_debtor_room
from financing.exceptions import FinancingError
from financing.models import DebtorLimit, Facility, RiskChange
from financing.services.debtor_limits import (
    debtor_key_of_business,
    debtor_key_of_marketplace,
    debtor_limit_propose,
)
from financing.services.proposals import CONFIRM_PERMISSION, change_confirm, change_reject
from financing.services.suspense import TO_MERCHANT
from ledger.money import Money, MoneyError, currency_exponent, parse_minor_units
from merchants.models import Debtor, Marketplace

FORM_TEMPLATE = "admin/financing/riskchange/form.html"


def change_diff(change: RiskChange) -> SafeString:
    """What ``change`` would change (or changed), before → after, amounts in their currency."""
    payload = change.payload
    if change.kind == RiskChange.Kind.FACILITY_OPEN:
        return diff_html({}, payload["terms"], payload["currency"])
    if change.kind == RiskChange.Kind.FACILITY_CHANGE:
        facility_id = int(change.target.removeprefix("facility:"))
        currency = Facility.objects.values_list("currency", flat=True).get(pk=facility_id)
        return diff_html(change.before, payload, currency)
    if change.kind == RiskChange.Kind.DEBTOR_LIMIT:
        before = change.before["limit_minor"]
        return format_html(
            "{} ({}): limit {} → {}",
            payload["debtor_name"],
            payload["currency"],
            "none" if before is None else Money.display(before, payload["currency"]),
            Money.display(payload["limit_minor"], payload["currency"]),
        )
    if change.kind == RiskChange.Kind.BLACKLIST_LIFT:
        return format_html(
            "{}: blacklisted ({}) → may request advances again",
            change.before["merchant"],
            change.before["reason"],
        )
    if change.kind == RiskChange.Kind.BANK_ACCOUNT_CHANGE:
        # Masks only: the confirming officer checks the last digits against the bank letter.
        return format_html(
            "{}: pays to {} → {} ({}{})",
            change.before["merchant"],
            change.before["account"] or "no account",
            payload["account"],
            payload["holder"],
            f", {payload['bic']}" if payload["bic"] else "",
        )
    if change.kind == RiskChange.Kind.SUSPENSE_ALLOCATE:
        before = change.before
        goes = (
            "the merchant, less the recourse it owes"
            if payload["target"] == TO_MERCHANT
            else f"invoice {payload['target']}"
        )
        return format_html(
            "{} of {} held in suspense ({}: {}) → {}",
            Money.display(before["amount_minor"], before["currency"]),
            before["merchant"],
            before["ref"],
            before["reason"],
            goes,
        )
    if change.kind == RiskChange.Kind.BREAK_ADJUST:
        return format_html(
            "{}: journal adjustment {} {}, Dr {} / Cr {}",
            change.before["break"],
            payload["amount"],
            change.before["currency"],
            payload["debit"],
            payload["credit"],
        )
    return format_html("invoice {}: DUPLICATE_INVOICE → flag cleared", payload["ref"])


class DecideForm(forms.Form):
    note = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Needed to reject: the proposer reads it.",
    )


@admin.register(RiskChange)
class RiskChangeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[RiskChange]):
    """Proposed changes, pending first; a senior officer decides on each one's page."""

    list_display = ["kind", "what", "reason", "proposed_by", "proposed_at", "status", "decided_by"]
    list_filter = ["status", "kind"]
    list_select_related = ["proposed_by", "decided_by"]
    search_fields = ["target", "reason", "proposed_by__username"]
    list_display_links = None

    def get_queryset(self, request: HttpRequest) -> Any:
        pending_first = Case(
            When(status=RiskChange.Status.PROPOSED, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
        return super().get_queryset(request).order_by(pending_first, "-proposed_at", "-id")

    @admin.display(description="what changes")
    def what(self, change: RiskChange) -> SafeString:
        url = reverse("admin:financing_riskchange_decide", args=[quote(change.pk)])
        return format_html('<a href="{}">{}</a>', url, change_diff(change))

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<path:object_id>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name="financing_riskchange_decide",
            )
        ]
        return [*own, *super().get_urls()]

    def decide_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """A proposal with its before → after; a senior officer confirms or rejects it."""
        change = object_seen(self, request, object_id)
        officer = officer_of(request)
        pending = change.status == RiskChange.Status.PROPOSED
        form = DecideForm(request.POST or None) if pending else None
        if request.method == "POST" and form is not None and form.is_valid():
            try:
                if "_reject" in request.POST:
                    change_reject(
                        change=change,
                        officer=officer,
                        now=timezone.now(),
                        note=form.cleaned_data["note"],
                    )
                    done = "rejected"
                else:
                    change_confirm(change=change, officer=officer, now=timezone.now())
                    done = "confirmed and applied"
            except FinancingError as exc:
                form.add_error(None, refusal(exc))
            else:
                self.message_user(request, f"The change is {done}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:financing_riskchange_changelist"))
        may_act = officer.has_perm(CONFIRM_PERMISSION) and change.proposed_by_id != officer.pk
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{change.get_kind_display()}: confirm or reject",
            "form_title": "Decide",
            "change": change,
            "diff": change_diff(change),
            "form": form,
            "actions": [("_confirm", "Confirm"), ("_reject", "Reject")],
            "may_act": may_act or not pending,
            "cannot_act": "A different senior officer than the proposer confirms or rejects it.",
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, FORM_TEMPLATE, context)


class DebtorLimitForm(forms.Form):
    debtor = forms.ChoiceField(help_text="A marketplace, or a business buyer invoices named.")
    currency = forms.CharField(max_length=3, initial="EUR")
    limit = forms.CharField(help_text="Across all merchants, e.g. 250000.00.")
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why: the senior officer who confirms reads it.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.names: dict[str, str] = {}
        for marketplace in Marketplace.objects.order_by("name"):
            self.names[debtor_key_of_marketplace(marketplace)] = marketplace.name
        for debtor in Debtor.objects.filter(kind=Debtor.Kind.BUSINESS).order_by("name"):
            self.names.setdefault(debtor_key_of_business(debtor), debtor.name)
        self.fields["debtor"].choices = sorted(self.names.items(), key=lambda kv: kv[1])  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        currency = str(cleaned.get("currency", "")).strip().upper()
        try:
            currency_exponent(currency)
            cleaned["limit_minor"] = parse_minor_units(
                str(cleaned.get("limit", "")).strip(), currency, allow_zero=True
            )
        except MoneyError as exc:
            self.add_error("limit" if "currency" in cleaned else "currency", str(exc))
        cleaned["currency"] = currency
        return cleaned


@admin.register(DebtorLimit)
class DebtorLimitAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[DebtorLimit]):
    """The bank's limits per debtor, with the room each leaves; set through four-eyes."""

    list_display = ["debtor_name", "currency", "limit", "room", "debtor_key", "version"]
    search_fields = ["debtor_name", "debtor_key"]
    change_list_template = "admin/financing/debtorlimit/change_list.html"

    @admin.display(description="limit", ordering="limit_minor")
    def limit(self, limit: DebtorLimit) -> str:
        return Money.display(limit.limit_minor, limit.currency)

    @admin.display(description="room left")
    def room(self, limit: DebtorLimit) -> str:
        key = (limit.currency, limit.debtor_key)
        return Money.display(bank_debtor_room([key])[key], limit.currency)

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "propose/",
                self.admin_site.admin_view(self.propose_view),
                name="financing_debtorlimit_propose",
            )
        ]
        return [*own, *super().get_urls()]

    def propose_view(self, request: HttpRequest) -> HttpResponse:
        """Propose a bank-wide limit on one debtor; a different senior officer confirms it."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        officer = officer_of(request)
        form = DebtorLimitForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            key = form.cleaned_data["debtor"]
            try:
                debtor_limit_propose(
                    currency=form.cleaned_data["currency"],
                    debtor_key=key,
                    debtor_name=form.names[key],
                    limit_minor=form.cleaned_data["limit_minor"],
                    officer=officer,
                    reason=form.cleaned_data["reason"].strip(),
                    now=timezone.now(),
                )
            except FinancingError as exc:
                form.add_error(None, refusal(exc))
            else:
                self.message_user(request, PROPOSED, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:financing_riskchange_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Propose a bank-wide debtor limit",
            "form_title": "The limit",
            "form": form,
            "actions": [("_propose", "Propose")],
            "may_act": officer.has_perm("financing.change_debtorlimit"),
            "cannot_act": "You do not hold the permission to propose debtor limits.",
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, FORM_TEMPLATE, context)
