"""The matches the engine made and the rules it makes them by, in the officer admin: a
suggested match waits for an officer to confirm or reject it; the match rules, evaluated in
their order, are edited by senior officers only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.db.models import Case, IntegerField, Value, When
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from config.admin_mixins import ReadOnlyAdminMixin
from financing.admin.changes import FORM_TEMPLATE
from financing.admin.formatting import refusal
from financing.admin.writes import ServiceSaveAdmin, object_seen, officer_of
from financing.exceptions import FinancingError
from financing.models import Match, MatchRule
from financing.reconciliation.decisions import CONFIRM_PERMISSION, match_confirm, match_reject
from financing.reconciliation.matching import KEYS
from financing.reconciliation.rules import EDIT_PERMISSION, match_rule_save
from ledger.money import Money


class MatchRuleForm(forms.ModelForm[MatchRule]):
    keys = forms.MultipleChoiceField(
        choices=[(k, k) for k in KEYS],
        widget=forms.CheckboxSelectMultiple,
        help_text='Fields that must be equal. With "amount" the amount tolerance is ignored.',
    )

    class Meta:
        model = MatchRule
        fields = [
            "order",
            "name",
            "kind",
            "source",
            "keys",
            "tolerance_minor",
            "tolerance_bps",
            "days_before",
            "days_after",
            "auto_confirm",
            "active",
            "description",
        ]


@admin.register(MatchRule)
class MatchRuleAdmin(ServiceSaveAdmin[MatchRule]):
    """The match rules in their evaluation order; senior officers edit them."""

    form = MatchRuleForm
    list_display = [
        "order",
        "name",
        "kind",
        "source",
        "key_list",
        "tolerance",
        "dates",
        "auto_confirm",
        "active",
    ]
    list_display_links = ["name"]
    ordering = ["order", "id"]
    change_list_template = "admin/compact_change_list.html"

    @admin.display(description="keys")
    def key_list(self, rule: MatchRule) -> str:
        return ", ".join(rule.keys)

    @admin.display(description="amount tolerance")
    def tolerance(self, rule: MatchRule) -> str:
        if "amount" in rule.keys:
            return "exact"
        parts = []
        if rule.tolerance_minor:
            # Minor units of a two-decimal currency, shown as such: rules hold no currency.
            parts.append(f"{rule.tolerance_minor // 100}.{rule.tolerance_minor % 100:02d}")
        if rule.tolerance_bps:
            parts.append(f"{rule.tolerance_bps} bp")
        return " or ".join(parts) or "exact"

    @admin.display(description="value date")
    def dates(self, rule: MatchRule) -> str:
        return f"-{rule.days_before} / +{rule.days_after} days"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a rule that made matches stays; switch it off instead

    def has_add_permission(self, request: HttpRequest) -> bool:
        return officer_of(request).has_perm(EDIT_PERMISSION)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return officer_of(request).has_perm(EDIT_PERMISSION)

    def save_model(self, request: HttpRequest, obj: MatchRule, form: Any, change: bool) -> None:
        self.save_through(
            request, obj, lambda: match_rule_save(rule=obj, officer=officer_of(request))
        )


class DecideMatchForm(forms.Form):
    note = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Needed to reject: the officer who resolves the entry's break reads it.",
    )


@admin.register(Match)
class MatchAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[Match]):
    """Matches the engine made, suggested first; an officer confirms or rejects a suggestion."""

    list_display = [
        "found_at",
        "rule",
        "source",
        "status",
        "amount",
        "amount_expected",
        "amount_adjustment",
        "items_shown",
        "confirmed_by",
        "decide_link",
    ]
    change_list_template = "admin/compact_change_list.html"
    list_filter = ["status", "source", "rule"]
    list_select_related = ["rule", "confirmed_by"]
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> Any:
        suggested_first = Case(
            When(status=Match.Status.SUGGESTED, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
        return (
            super()
            .get_queryset(request)
            .prefetch_related("items__statement_entry", "items__payment", "items__payout")
            .order_by(suggested_first, "-found_at", "-id")
        )

    @admin.display(description="amount")
    def amount(self, match: Match) -> str:
        return Money.display(match.amount_minor, match.currency)

    @admin.display(description="expected")
    def amount_expected(self, match: Match) -> str:
        return Money.display(match.expected_minor, match.currency)

    @admin.display(description="adjustment")
    def amount_adjustment(self, match: Match) -> str:
        return Money.display(match.adjustment_minor, match.currency)

    @admin.display(description="items")
    def items_shown(self, match: Match) -> str:
        return _items_text(match)

    @admin.display(description="")
    def decide_link(self, match: Match) -> str:
        if match.status != Match.Status.SUGGESTED:
            return ""
        url = reverse("admin:financing_match_decide", args=[quote(match.pk)])
        return format_html('<a href="{}">Decide…</a>', url)

    def get_list_display(self, request: HttpRequest) -> Any:
        columns = list(self.list_display)
        if not officer_of(request).has_perm(CONFIRM_PERMISSION):
            columns.remove("decide_link")
        return columns

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<path:object_id>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name="financing_match_decide",
            )
        ]
        return [*own, *super().get_urls()]

    def decide_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Confirm a suggested match (its clearing and adjustment post) or reject it."""
        match = object_seen(self, request, object_id)
        officer = officer_of(request)
        suggested = match.status == Match.Status.SUGGESTED
        form = DecideMatchForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                if "_reject" in request.POST:
                    match_reject(
                        match=match,
                        officer=officer,
                        note=form.cleaned_data["note"],
                        now=timezone.now(),
                    )
                else:
                    match_confirm(match=match, officer=officer, now=timezone.now())
            except FinancingError as exc:
                form.add_error(None, refusal(exc))
            else:
                self.message_user(request, f"Decided: {match}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:financing_match_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Decide match {match.pk}",
            "summary": f"Rule '{match.rule.name}': {_items_text(match)}; entries "
            f"{Money.display(match.amount_minor, match.currency)}, expected "
            f"{Money.display(match.expected_minor, match.currency)}, adjustment "
            f"{Money.display(match.adjustment_minor, match.currency)} (to reconciliation "
            "differences when confirmed).",
            "form_title": "Decision",
            "form": form if suggested else None,
            "actions": [("_confirm", "Confirm"), ("_reject", "Reject")],
            "may_act": officer.has_perm(CONFIRM_PERMISSION) and suggested,
            "cannot_act": f"{match.get_status_display()} already."
            if not suggested
            else "You do not hold the permission to decide on matches.",
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, FORM_TEMPLATE, context)


def _items_text(match: Match) -> str:
    parts = []
    for item in sorted(match.items.all(), key=lambda i: i.pk):  # prefetched on the list
        if item.statement_entry is not None:
            parts.append(f"entry {item.statement_entry.entry_ref or item.statement_entry.pk}")
        elif item.payment is not None:
            parts.append(f"payment {item.payment.end_to_end_id}")
        elif item.payout is not None:
            parts.append(f"payout {item.payout.ref}")
    shown = parts[:4]
    more = f" +{len(parts) - 4} more" if len(parts) > 4 else ""
    return ", ".join(shown) + more
