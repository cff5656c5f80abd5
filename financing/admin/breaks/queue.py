"""The break queue: open breaks first, oldest first, one line per break, filtered by status,
kind, age, amount, merchant and currency; each open one links to its *Resolve…* page
(``financing.admin.breaks.resolution``)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.db.models import Q, QuerySet
from django.db.models.functions import Abs
from django.http import HttpRequest
from django.urls import URLPattern, reverse
from django.utils.html import format_html

from config.admin_mixins import ReadOnlyAdminMixin
from financing.admin.breaks.ageing import AgeFilter, break_age
from financing.admin.breaks.resolution import BreakResolveMixin, money_or_dash
from financing.admin.writes import officer_of
from financing.models import Break
from financing.reconciliation.breaks import RESOLVE_PERMISSION


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


@admin.register(Break)
class BreakAdmin(ReadOnlyAdminMixin, BreakResolveMixin):
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
        return break_age(brk)

    @admin.display(description="merchant", ordering="merchant__legal_name")
    def merchant_name(self, brk: Break) -> str:
        return brk.merchant.legal_name if brk.merchant else "—"

    @admin.display(description="amount", ordering="amount_minor")
    def amount(self, brk: Break) -> str:
        return money_or_dash(brk.amount_minor, brk.currency)

    @admin.display(description="expected", ordering="expected_minor")
    def amount_expected(self, brk: Break) -> str:
        return money_or_dash(brk.expected_minor, brk.currency)

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
        return [*self.resolve_urls(), *super().get_urls()]
