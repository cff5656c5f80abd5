"""Suspense: money received that no payout line could be applied to, open items first.

An officer proposes where an item goes (an invoice of its merchant, or the merchant itself)
through ``suspense_allocate_propose``; the proposal waits with the other four-eyes changes
for a different senior officer (``financing.admin.changes``).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from config.admin_mixins import ReadOnlyAdminMixin
from financing.admin.changes import FORM_TEMPLATE
from financing.admin.formatting import with_hover
from financing.admin.writes import object_seen, officer_of, proposal_posted
from financing.models import SuspenseItem
from financing.services.suspense import (
    ALLOCATE_PERMISSION,
    TO_MERCHANT,
    suspense_allocate_propose,
)
from ledger.money import Money


class SuspenseStatusFilter(admin.SimpleListFilter):
    """Open items unless the officer asks otherwise."""

    title = "status"
    parameter_name = "state"
    ALL = "all"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(self.ALL, "All items"), (SuspenseItem.Status.ALLOCATED, "Allocated")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset.filter(status=SuspenseItem.Status.OPEN)
        if value == self.ALL:
            return queryset
        return queryset.filter(status=value)

    def choices(self, changelist: Any) -> Any:
        for n, choice in enumerate(super().choices(changelist)):
            if n == 0:  # the unfiltered link is the open items
                choice["display"] = "Open"
            yield choice


class AllocateForm(forms.Form):
    target = forms.CharField(
        max_length=128,
        help_text=f'An invoice ref of this merchant, or "{TO_MERCHANT}" to pass the money '
        "through to it (less the recourse it owes).",
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why (a remittance advice, the marketplace's answer): the senior officer who "
        "confirms reads it.",
    )


@admin.register(SuspenseItem)
class SuspenseItemAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[SuspenseItem]):
    list_display = [
        "ref",
        "merchant_name",
        "amount",
        "payout",
        "named",
        "created_at",
        "status",
        "allocated_to",
        "allocate_link",
    ]
    list_filter = [SuspenseStatusFilter, "currency", ("merchant", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["merchant", "payout_entry"]
    search_fields = ["ref", "invoice_ref", "merchant__legal_name", "payout_entry__external_ref"]
    ordering = ["created_at", "id"]  # the oldest waits longest
    change_list_template = "admin/compact_change_list.html"

    @admin.display(description="merchant", ordering="merchant__legal_name")
    def merchant_name(self, item: SuspenseItem) -> str:
        return item.merchant.legal_name

    @admin.display(description="amount", ordering="amount_minor")
    def amount(self, item: SuspenseItem) -> str:
        return Money.display(item.amount_minor, item.currency)

    @admin.display(description="payout")
    def payout(self, item: SuspenseItem) -> str:
        line = "rest" if item.line is None else f"line {item.line}"
        return f"{item.payout_entry.external_ref} ({line})"

    @admin.display(description="line named")
    def named(self, item: SuspenseItem) -> str:
        """The invoice the line named, with why it is held on hover (the page says it too)."""
        return with_hover(item.invoice_ref or "—", item.reason)

    @admin.display(description="")
    def allocate_link(self, item: SuspenseItem) -> str:
        if item.status != SuspenseItem.Status.OPEN:
            return ""
        url = reverse("admin:financing_suspenseitem_allocate", args=[quote(item.pk)])
        return format_html('<a href="{}">Allocate…</a>', url)

    def get_list_display(self, request: HttpRequest) -> Any:
        columns = list(self.list_display)
        if not officer_of(request).has_perm(ALLOCATE_PERMISSION):
            columns.remove("allocate_link")
        return columns

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<path:object_id>/allocate/",
                self.admin_site.admin_view(self.allocate_view),
                name="financing_suspenseitem_allocate",
            )
        ]
        return [*own, *super().get_urls()]

    def allocate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Propose where an item goes; a different senior officer confirms it."""
        item = object_seen(self, request, object_id)
        officer = officer_of(request)
        form = AllocateForm(request.POST or None)
        proposed = proposal_posted(
            self,
            request,
            form,
            lambda: suspense_allocate_propose(
                item=item,
                officer=officer,
                target=form.cleaned_data["target"],
                reason=form.cleaned_data["reason"],
                now=timezone.now(),
            ),
        )
        if proposed is not None:
            return proposed
        named = f", naming invoice '{item.invoice_ref}'" if item.invoice_ref else ""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Allocate {item.ref}",
            "summary": f"{Money.display(item.amount_minor, item.currency)} of "
            f"{item.merchant.legal_name}, from payout {item.payout_entry.external_ref}{named}: "
            f"{item.reason}",
            "form_title": "Where the money goes",
            "form": form if item.status == SuspenseItem.Status.OPEN else None,
            "actions": [("_propose", "Propose")],
            "may_act": officer.has_perm(ALLOCATE_PERMISSION)
            and item.status == SuspenseItem.Status.OPEN,
            "cannot_act": "Allocated already."
            if item.status != SuspenseItem.Status.OPEN
            else "You do not hold the permission to allocate suspense.",
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, FORM_TEMPLATE, context)
