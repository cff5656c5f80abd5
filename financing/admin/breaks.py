"""Reconciliation in the officer admin: the break queue, the matches, the match rules.

The break queue shows open breaks first, oldest first, filtered by kind, age, merchant and
amount. An officer resolves a break with a reason, or proposes the journal adjustment that
resolves it, which a different senior officer confirms with the other four-eyes changes
(``financing.admin.changes``). Suggested matches wait for an officer to confirm or reject them;
the match rules are edited by senior officers only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Abs
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from config.admin_mixins import ReadOnlyAdminMixin
from financing.admin.changes import FORM_TEMPLATE
from financing.admin.formatting import refusal
from financing.admin.writes import PROPOSED, ServiceSaveAdmin, officer_of
from financing.exceptions import FinancingError
from financing.models import Break, Match, MatchRule, Payment
from financing.reconciliation.breaks import (
    ADJUSTABLE,
    AGE_BUCKETS,
    RESOLVE_PERMISSION,
    age_bucket,
    break_adjust_propose,
    break_resolve,
)
from financing.reconciliation.engine import (
    CONFIRM_PERMISSION,
    ambiguity_decide,
    match_confirm,
    match_reject,
)
from financing.reconciliation.matching import KEYS
from financing.reconciliation.rules import EDIT_PERMISSION, match_rule_save
from ledger.models import Payout
from ledger.money import Money, MoneyError, parse_minor_units


class BreakStatusFilter(admin.SimpleListFilter):
    """Open breaks unless the officer asks otherwise."""

    title = "status"
    parameter_name = "state"
    ALL = "all"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(self.ALL, "All breaks"), (Break.Status.RESOLVED, "Resolved")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset.filter(status=Break.Status.OPEN)
        if value == self.ALL:
            return queryset
        return queryset.filter(status=value)

    def choices(self, changelist: Any) -> Any:
        for n, choice in enumerate(super().choices(changelist)):
            if n == 0:  # the unfiltered link is the open breaks
                choice["display"] = "Open"
            yield choice


class AgeFilter(admin.SimpleListFilter):
    """How long a break has waited, in the buckets the officer's home shows."""

    title = "age"
    parameter_name = "age"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(label, label) for label, _low, _high in AGE_BUCKETS]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return age_filtered(queryset, self.value())


def age_filtered(queryset: QuerySet[Any], label: str | None) -> QuerySet[Any]:
    """The breaks of ``queryset`` in the age bucket ``label`` as of today (all without one)."""
    for name, low, high in AGE_BUCKETS:
        if name == label:
            today = timezone.now().date()
            rows = queryset.filter(found_at__date__lte=today - timedelta(days=low))
            if high is not None:
                rows = rows.filter(found_at__date__gte=today - timedelta(days=high))
            return rows
    return queryset


class AmountFilter(admin.SimpleListFilter):
    """The size of the difference, found amount or else expected, in major units."""

    title = "amount"
    parameter_name = "size"
    RANGES = [
        ("<100", "under 100", 0, 100_00),
        ("100-1k", "100 to 1,000", 100_00, 1_000_00),
        ("1k-10k", "1,000 to 10,000", 1_000_00, 10_000_00),
        (">10k", "over 10,000", 10_000_00, None),
    ]

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(key, label) for key, label, _low, _high in self.RANGES]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        for key, _label, low, high in self.RANGES:
            if key == self.value():
                # Minor units of any two-decimal currency: a range a glance can judge, not FX.
                size: QuerySet[Any] = queryset.annotate(size=Abs("amount_minor")).filter(
                    Q(size__gte=low) | Q(amount_minor__isnull=True, expected_minor__gte=low)
                )
                if high is not None:
                    size = size.filter(
                        Q(size__lt=high) | Q(amount_minor__isnull=True, expected_minor__lt=high)
                    )
                return size
        return queryset


class ResolveForm(forms.Form):
    choose = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        label="Match to",
        help_text="An ambiguous match: the candidate that is the one (posts its clearing).",
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why: what you found (a bank charge, a marketplace correction). It stays on "
        "the break; with an adjustment, the senior officer who confirms reads it.",
    )
    debit = forms.ChoiceField(
        required=False,
        choices=[("", "—"), *ADJUSTABLE.items()],
        help_text="Only where money must move: the account debited…",
    )
    credit = forms.ChoiceField(
        required=False, choices=[("", "—"), *ADJUSTABLE.items()], help_text="… and credited…"
    )
    amount = forms.CharField(
        required=False, max_length=24, help_text="… by this amount, in the break's currency."
    )


@admin.register(Break)
class BreakAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[Break]):
    """The break queue: open first, oldest first, one line per break."""

    list_display = [
        "found_at",
        "kind",
        "age",
        "merchant_name",
        "amount",
        "amount_expected",
        "reference",
        "status",
        "resolve_link",
    ]
    change_list_template = "admin/compact_change_list.html"
    list_filter = [
        BreakStatusFilter,
        "kind",
        AgeFilter,
        AmountFilter,
        ("merchant", admin.RelatedOnlyFieldListFilter),
        "currency",
    ]
    list_select_related = ["merchant"]
    search_fields = ["key", "reference", "merchant__legal_name"]
    ordering = ["found_at", "id"]  # the oldest waits longest
    show_full_result_count = False

    @admin.display(description="age")
    def age(self, brk: Break) -> str:
        return age_bucket(brk.found_at.date(), timezone.now().date())

    @admin.display(description="merchant", ordering="merchant__legal_name")
    def merchant_name(self, brk: Break) -> str:
        return brk.merchant.legal_name if brk.merchant else "—"

    @admin.display(description="amount", ordering="amount_minor")
    def amount(self, brk: Break) -> str:
        return _money(brk.amount_minor, brk.currency)

    @admin.display(description="expected", ordering="expected_minor")
    def amount_expected(self, brk: Break) -> str:
        return _money(brk.expected_minor, brk.currency)

    @admin.display(description="")
    def resolve_link(self, brk: Break) -> str:
        if brk.status != Break.Status.OPEN:
            return ""
        url = reverse("admin:financing_break_resolve", args=[quote(brk.pk)])
        return format_html('<a href="{}">Resolve…</a>', url)

    def get_list_display(self, request: HttpRequest) -> Any:
        columns = list(self.list_display)
        if not officer_of(request).has_perm(RESOLVE_PERMISSION):
            columns.remove("resolve_link")
        return columns

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<path:object_id>/resolve/",
                self.admin_site.admin_view(self.resolve_view),
                name="financing_break_resolve",
            )
        ]
        return [*own, *super().get_urls()]

    def resolve_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Resolve a break with a reason, or propose the adjustment that resolves it."""
        brk = self.get_object(request, unquote(object_id))
        if brk is None:
            raise Http404(f"No break {object_id}.")
        if not self.has_view_permission(request, brk):
            raise PermissionDenied
        officer = officer_of(request)
        is_open = brk.status == Break.Status.OPEN
        form = ResolveForm(request.POST or None)
        options = _options(brk)
        if options:
            choose = form.fields["choose"]
            assert isinstance(choose, forms.TypedChoiceField)
            choose.choices = [("", "—"), *options]
        else:
            del form.fields["choose"]
        if request.method == "POST" and form.is_valid():
            try:
                proposed = _resolve_or_propose(brk, officer, form.cleaned_data)
            except FinancingError as exc:
                form.add_error(None, refusal(exc))
            except MoneyError as exc:
                form.add_error("amount", str(exc))
            else:
                if proposed:
                    self.message_user(request, PROPOSED, messages.SUCCESS)
                    return HttpResponseRedirect(reverse("admin:financing_riskchange_changelist"))
                self.message_user(request, f"Resolved: {brk}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:financing_break_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Resolve {brk}",
            "summary": _summary(brk),
            "form_title": "Resolution",
            "form": form if is_open else None,
            "actions": [("_resolve", "Resolve or propose the adjustment")],
            "may_act": officer.has_perm(RESOLVE_PERMISSION) and is_open,
            "cannot_act": f"Resolved already: {brk.resolution}"
            if not is_open
            else "You do not hold the permission to resolve breaks.",
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, FORM_TEMPLATE, context)


def _resolve_or_propose(brk: Break, officer: Any, data: dict[str, Any]) -> bool:
    """Choose a candidate, resolve, or (debit, credit and amount given) propose the
    adjustment; True if proposed."""
    now = timezone.now()
    if data.get("choose") is not None:
        ambiguity_decide(
            brk=brk, option=data["choose"], officer=officer, reason=data["reason"], now=now
        )
        return False
    if not (data["debit"] or data["credit"] or data["amount"]):
        break_resolve(brk=brk, officer=officer, reason=data["reason"], now=now)
        return False
    amount = parse_minor_units(data["amount"] or "0", brk.currency or "EUR")
    break_adjust_propose(
        brk=brk,
        officer=officer,
        debit=data["debit"],
        credit=data["credit"],
        amount_minor=amount,
        reason=data["reason"],
        now=now,
    )
    return True


def _options(brk: Break) -> list[tuple[int, str]]:
    """An ambiguous break's candidate sets, as the officer chooses between them."""
    if brk.kind != Break.Kind.AMBIGUOUS_MATCH:
        return []
    model = Payment if brk.detail.get("candidate_kind") == "payment" else Payout
    choices = []
    for n, ids in enumerate(brk.detail.get("options", [])):
        rows = model.objects.filter(pk__in=ids).select_related("merchant").order_by("pk")
        choices.append((n, "; ".join(_candidate_label(row) for row in rows)))
    return choices


def _candidate_label(row: Payment | Payout) -> str:
    if isinstance(row, Payment):
        return (
            f"payment {row.end_to_end_id} to {row.merchant.legal_name}, "
            f"{Money.display(row.amount_minor, row.currency)}, sent {row.created_at:%Y-%m-%d}"
        )
    return (
        f"payout {row.ref} of {row.merchant.legal_name}, "
        f"{Money.display(row.amount_minor, row.currency)}, settled {row.settled_on:%Y-%m-%d}, "
        f"{len(row.lines)} line(s)"
    )


def _summary(brk: Break) -> str:
    parts = [brk.get_kind_display(), f"key {brk.key}"]
    if brk.merchant:
        parts.append(brk.merchant.legal_name)
    if brk.amount_minor is not None:
        parts.append(f"found {_money(brk.amount_minor, brk.currency)}")
    if brk.expected_minor is not None:
        parts.append(f"expected {_money(brk.expected_minor, brk.currency)}")
    if brk.reference:
        parts.append(f"reference {brk.reference}")
    return " · ".join(parts) + f" · found {brk.found_at:%Y-%m-%d %H:%M} UTC"


def _money(minor: int | None, currency: str) -> str:
    if minor is None:
        return "—"
    return Money.display(minor, currency) if currency else str(minor)


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
        match = self.get_object(request, unquote(object_id))
        if match is None:
            raise Http404(f"No match {object_id}.")
        if not self.has_view_permission(request, match):
            raise PermissionDenied
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
