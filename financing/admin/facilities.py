"""Facilities: credit lines and their audit trail.

Opening and changing a line are four-eyes: the form proposes (``facility_open_propose``,
``facility_change_propose``) with a written reason, and the line opens or changes when a
different senior officer confirms the proposal (``financing.admin.changes``).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any

from django import forms
from django.contrib import admin
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from config.admin_mixins import ReadOnlyAdminMixin
from financing.admin.formatting import MONEY_TERMS, diff_html, percent_of_bp
from financing.admin.writes import ServiceSaveAdmin, officer_of
from financing.models import Facility, FacilityChange, RiskChange
from financing.services.facilities import (
    FACILITY_TERMS,
    facility_change_propose,
    facility_open_propose,
)
from ledger.money import Money, MoneyError, currency_exponent, format_minor_units, parse_minor_units


class FacilityForm(ModelForm[Facility]):
    """Terms of a credit line; amounts in the facility's currency, rates in basis points.

    The form validates; ``FacilityAdmin.save_model`` hands the result to
    ``facility_open_propose`` or ``facility_change_propose``: nothing changes until a different
    senior officer confirms.
    """

    limit_minor = forms.CharField(
        label="Limit", help_text="In the facility's currency, e.g. 100000.00."
    )
    checker_threshold_minor = forms.CharField(
        label="Second officer above",
        initial="5000",
        help_text="Advances above this amount need a second officer to authorize them.",
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why the line opens or changes: the senior officer who confirms reads it, and "
        "it stays in the facility's audit trail.",
    )

    class Meta:
        model = Facility
        fields = ["merchant", "currency", *FACILITY_TERMS]
        labels = {
            "advance_rate_bp": "Advance rate (basis points)",
            "annual_rate_bp": "Annual rate (basis points)",
            "debtor_cap_bp": "Per-debtor cap (basis points of the limit)",
            "late_fee_rate_bp": "Late fee rate (basis points a year)",
            "late_fee_cap_bp": "Late fee cap (basis points of a receivable's principal)",
            "non_accrual_after_days": "Non-accrual when overdue for (days)",
            "max_tenor_days": "Longest tenor (days)",
            "min_days_to_due": "Shortest time to due (days)",
            "blacklist_after_days": "Blacklist when overdue for (days)",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.term_changes: dict[str, Any] = {}
        if self.instance.pk is not None:
            for name in MONEY_TERMS:
                amount = getattr(self.instance, name)
                self.initial[name] = format_minor_units(amount, self.instance.currency)

    def clean_currency(self) -> str:
        currency = str(self.cleaned_data.get("currency", "")).strip().upper()
        try:
            currency_exponent(currency)
        except MoneyError as exc:
            raise forms.ValidationError(str(exc)) from None
        return currency

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        currency = self.instance.currency if self.instance.pk else cleaned.get("currency")
        for name in MONEY_TERMS:
            if name not in cleaned:
                continue
            if not currency:
                self.add_error(name, "Choose the facility's currency first.")
                continue
            try:
                cleaned[name] = parse_minor_units(str(cleaned[name]).strip(), currency)
            except MoneyError as exc:
                self.add_error(name, str(exc))
        if self.instance.pk is None or self.errors:
            return cleaned
        self.term_changes = {
            name: cleaned[name]
            for name in FACILITY_TERMS
            if name in cleaned and cleaned[name] != getattr(self.instance, name)
        }
        if not self.term_changes:
            raise forms.ValidationError("No term changed: there is nothing to record.")
        limit = self.term_changes.get("limit_minor")
        if limit is not None and limit < self.instance.committed_minor:
            self.add_error(
                "limit_minor",
                f"Advances already commit {self._committed()}; the limit cannot go below that.",
            )
        return cleaned

    def _committed(self) -> str:
        return Money.display(self.instance.committed_minor, self.instance.currency)


@admin.register(Facility)
class FacilityAdmin(ServiceSaveAdmin[Facility]):
    """Credit lines. Opening and changing are proposed, with a written reason, for a senior."""

    form = FacilityForm
    list_display = [
        "merchant",
        "currency",
        "limit",
        "committed",
        "utilisation",
        "advance_rate",
        "annual_rate",
        "checker_threshold",
        "active",
        "version",
    ]
    list_filter = ["active", "currency"]
    list_select_related = ["merchant"]
    change_list_template = "admin/compact_change_list.html"
    search_fields = ["merchant__legal_name", "merchant__public_id"]
    autocomplete_fields = ["merchant"]

    def has_delete_permission(self, request: HttpRequest, obj: Facility | None = None) -> bool:
        return False  # a line is closed (active off), never deleted: advances point at it

    @admin.display(description="limit", ordering="limit_minor")
    def limit(self, facility: Facility) -> str:
        return Money.display(facility.limit_minor, facility.currency)

    @admin.display(description="committed", ordering="committed_minor")
    def committed(self, facility: Facility) -> str:
        return Money.display(facility.committed_minor, facility.currency)

    @admin.display(description="second officer above", ordering="checker_threshold_minor")
    def checker_threshold(self, facility: Facility) -> str:
        return Money.display(facility.checker_threshold_minor, facility.currency)

    @admin.display(description="utilisation")
    def utilisation(self, facility: Facility) -> str:
        if not facility.limit_minor:
            return "—"
        share = Decimal(facility.committed_minor) * 100 / facility.limit_minor
        return f"{share.quantize(Decimal('0.1'))} %"

    @admin.display(description="advance rate", ordering="advance_rate_bp")
    def advance_rate(self, facility: Facility) -> str:
        return percent_of_bp(facility.advance_rate_bp)

    @admin.display(description="annual rate", ordering="annual_rate_bp")
    def annual_rate(self, facility: Facility) -> str:
        return percent_of_bp(facility.annual_rate_bp)

    @admin.display(description="audit trail")
    def audit_trail(self, facility: Facility) -> SafeString:
        changes = facility.changes.select_related("officer", "proposal__decided_by").order_by(
            "-changed_at", "-id"
        )
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{change.changed_at:%Y-%m-%d %H:%M}",
                    _officers(change),
                    change.reason,
                    diff_html(change.before, change.after, facility.currency),
                )
                for change in changes
            ),
        )
        return format_html(
            '<table class="facility-audit"><thead><tr><th>When</th><th>Officers</th>'
            "<th>Reason</th><th>What changed</th></tr></thead><tbody>{}</tbody></table>",
            rows or format_html('<tr><td colspan="4">No changes recorded.</td></tr>'),
        )

    def _editable(self, request: HttpRequest, obj: Facility | None) -> bool:
        if obj is None:
            return self.has_add_permission(request)
        return self.has_change_permission(request, obj)

    def get_fieldsets(self, request: HttpRequest, obj: Facility | None = None) -> Any:
        editable = self._editable(request, obj)
        amounts = list(MONEY_TERMS) if editable else ["limit", "checker_threshold"]
        terms = [
            "merchant",
            "currency",
            amounts[0],
            "advance_rate_bp",
            "annual_rate_bp",
            "day_count",
            "max_tenor_days",
            "min_days_to_due",
            "debtor_cap_bp",
            "late_fee_rate_bp",
            "late_fee_cap_bp",
            "non_accrual_after_days",
            "blacklist_after_days",
            amounts[1],
            "active",
        ]
        fieldsets: list[tuple[str | None, dict[str, Any]]] = [(None, {"fields": terms})]
        if obj is not None:
            fieldsets.append(
                ("Standing", {"fields": ["committed", "utilisation", "version", "created_at"]})
            )
        if editable:
            fieldsets.append(("Why", {"fields": ["reason"]}))
        if obj is not None:
            fieldsets.append(("Audit trail", {"fields": ["audit_trail"]}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Facility | None = None) -> Any:
        if obj is None:
            return []
        shown = ["committed", "utilisation", "version", "created_at", "audit_trail"]
        if not self._editable(request, obj):
            shown += ["limit", "checker_threshold"]
        return ["merchant", "currency", *shown]

    def save_model(
        self, request: HttpRequest, obj: Facility, form: ModelForm[Facility], change: bool
    ) -> None:
        """Propose the opening or the change; a refusal returns to the form."""
        assert isinstance(form, FacilityForm)
        reason = form.cleaned_data["reason"].strip()
        officer, now = officer_of(request), timezone.now()
        propose: Callable[[], RiskChange]
        if change:
            propose = partial(
                facility_change_propose,
                facility=obj,
                officer=officer,
                reason=reason,
                now=now,
                changes=form.term_changes,
            )
        else:
            propose = partial(
                facility_open_propose,
                merchant=form.cleaned_data["merchant"],
                currency=form.cleaned_data["currency"],
                officer=officer,
                reason=reason,
                now=now,
                terms={n: form.cleaned_data[n] for n in FACILITY_TERMS if n in form.cleaned_data},
            )
        self.propose_through(request, propose)


@admin.register(FacilityChange)
class FacilityChangeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[FacilityChange]):
    list_display = ["changed_at", "facility_name", "officers", "reason", "diff"]
    list_filter = ["facility__currency"]
    list_select_related = ["facility__merchant", "officer", "proposal__decided_by"]
    search_fields = ["facility__merchant__legal_name", "reason", "officer__username"]
    fields = ["facility", "officers", "changed_at", "reason", "diff"]
    readonly_fields = ["officers", "diff"]

    @admin.display(description="proposed, confirmed by")
    def officers(self, change: FacilityChange) -> str:
        return _officers(change)

    @admin.display(description="facility", ordering="facility__merchant__legal_name")
    def facility_name(self, change: FacilityChange) -> str:
        return str(change.facility)  # as a method, not the foreign key: it may wrap (a long name)

    @admin.display(description="what changed")
    def diff(self, change: FacilityChange) -> SafeString:
        return diff_html(change.before, change.after, change.facility.currency)


def _officers(change: FacilityChange) -> str:
    """Who proposed a change and who confirmed it (changes before four-eyes had one officer)."""
    proposer = change.officer.get_username()
    if change.proposal is None or change.proposal.decided_by is None:
        return proposer
    return f"{proposer}, confirmed by {change.proposal.decided_by.get_username()}"
