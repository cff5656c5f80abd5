"""Receivables and their assignments to advances: read-only, written by the services.

A receivable flagged DUPLICATE_INVOICE that is not one can be cleared: an officer proposes it
with a written reason, a different senior officer confirms (four-eyes), and the clearance shows
on the receivable.
"""

from __future__ import annotations

from collections import defaultdict

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.admin.views.main import ChangeList
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from config.admin_mixins import ReadOnlyAdminMixin
from financing.admin.changes import FORM_TEMPLATE
from financing.admin.formatting import merchant_cell
from financing.admin.writes import object_seen, officer_of, proposal_posted
from financing.eligibility import Code, Verdict, verdicts
from financing.models import Assignment, DuplicateClearance, Receivable
from financing.services.duplicates import duplicate_clear_propose
from ledger.money import Money


class ClearDuplicateForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why this is not the invoice it looks like (e.g. another amount or date); "
        "the senior officer who confirms reads it, and it stays on the receivable.",
    )


@admin.register(Receivable)
class ReceivableAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[Receivable]):
    """Each receivable with its amount, due date, today's verdict and where it stands."""

    list_display = [
        "ref",
        "merchant_name",
        "debtor",
        "amount",
        "due",
        "verdict",
        "status",
        "duplicate_cleared",
    ]
    change_list_template = "admin/compact_change_list.html"
    list_filter = ["source"]
    list_select_related = ["merchant"]
    search_fields = ["ref", "fingerprint", "merchant__legal_name", "merchant__public_id"]
    show_full_result_count = False
    readonly_fields = ["duplicate_cleared"]

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        """Judge the page's receivables once per merchant, not once per row."""
        changelist = super().get_changelist_instance(request)
        rows: list[Receivable] = list(changelist.result_list)
        today = timezone.now().date()
        by_merchant: dict[int, list[Receivable]] = defaultdict(list)
        for row in rows:
            by_merchant[row.merchant_id].append(row)
        live = {
            (merchant_id, ref): (status, advance_ref)
            for merchant_id, ref, status, advance_ref in Assignment.objects.filter(
                status__in=Assignment.LIVE,
                merchant_id__in=by_merchant,
                invoice_ref__in=[row.ref for row in rows],
            ).values_list("merchant_id", "invoice_ref", "status", "advance__ref")
        }
        clearances = {
            (c.merchant_id, c.invoice_ref, c.entry_id): c
            for c in DuplicateClearance.objects.filter(
                merchant_id__in=by_merchant, invoice_ref__in=[row.ref for row in rows]
            ).select_related("proposal__proposed_by", "proposal__decided_by")
        }
        for row in rows:
            key = (row.merchant_id, row.ref, row.entry_id)
            row.page_clearance = clearances.get(key)  # type: ignore[attr-defined]
        for merchant_id, page in by_merchant.items():
            merchant = page[0].merchant
            judged = {v.ref: v for v in verdicts(merchant, today, [r.ref for r in page])}
            for row in page:
                row.page_verdict = judged.get(row.ref)  # type: ignore[attr-defined]
                row.page_holder = live.get((merchant_id, row.ref))  # type: ignore[attr-defined]
        return changelist

    @staticmethod
    def _verdict(receivable: Receivable) -> Verdict | None:
        """Today's verdict: as the list judged its page, or on the receivable's own page, now."""
        if hasattr(receivable, "page_verdict"):
            return receivable.page_verdict  # type: ignore[no-any-return]
        judged = verdicts(receivable.merchant, timezone.now().date(), [receivable.ref])
        return judged[0] if judged else None

    @admin.display(description="merchant", ordering="merchant__legal_name")
    def merchant_name(self, receivable: Receivable) -> str:
        return merchant_cell(receivable.merchant)

    @admin.display(description="debtor")
    def debtor(self, receivable: Receivable) -> str:
        verdict = self._verdict(receivable)
        return verdict.debtor_name if verdict else "—"

    @admin.display(description="amount")
    def amount(self, receivable: Receivable) -> str:
        verdict = self._verdict(receivable)
        return Money.display(verdict.face_minor, verdict.currency) if verdict else "—"

    @admin.display(description="due")
    def due(self, receivable: Receivable) -> str:
        verdict = self._verdict(receivable)
        return f"{verdict.due_date:%Y-%m-%d}" if verdict else "—"

    @admin.display(description="verdict today")
    def verdict(self, receivable: Receivable) -> str:
        verdict = self._verdict(receivable)
        if verdict is None:
            return "—"
        if verdict.eligible:
            return format_html('<span class="chainfin-ok">{}</span>', "fundable")
        return format_html(
            '<span class="chainfin-bad" title="{}">{}</span>',
            "; ".join(f"{r.code}: {r.message}" for r in verdict.reasons),
            verdict.codes[0] + (f" +{len(verdict.codes) - 1}" if len(verdict.codes) > 1 else ""),
        )

    @admin.display(description="status")
    def status(self, receivable: Receivable) -> str:
        holder = getattr(receivable, "page_holder", None)
        if holder is None:
            return "free"
        status, advance_ref = holder
        return f"{Assignment.Status(status).label.lower()} ({advance_ref})"

    @admin.display(description="duplicate flag")
    def duplicate_cleared(self, receivable: Receivable) -> str:
        # The list reads the page's clearances in one query; the change page reads its own.
        clearance: DuplicateClearance | None = (
            getattr(receivable, "page_clearance")  # noqa: B009
            if hasattr(receivable, "page_clearance")
            else self._clearance(receivable)
        )
        if clearance is None:
            verdict = self._verdict(receivable)
            if verdict is not None and Code.DUPLICATE_INVOICE not in verdict.codes:
                return "—"  # not flagged: nothing to clear (the service would refuse)
            url = reverse("admin:financing_receivable_clear_duplicate", args=[quote(receivable.pk)])
            return format_html('<a href="{}">Clear a false duplicate…</a>', url)
        change = clearance.proposal
        assert change.decided_by is not None  # a clearance exists only once confirmed
        return (
            f"Cleared {clearance.cleared_at:%Y-%m-%d %H:%M}: proposed by "
            f"{change.proposed_by.get_username()}, confirmed by "
            f"{change.decided_by.get_username()}: {change.reason}"
        )

    @staticmethod
    def _clearance(receivable: Receivable) -> DuplicateClearance | None:
        return (
            DuplicateClearance.objects.filter(
                merchant_id=receivable.merchant_id,
                invoice_ref=receivable.ref,
                entry_id=receivable.entry_id,
            )
            .select_related("proposal__proposed_by", "proposal__decided_by")
            .first()
        )

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<path:object_id>/clear-duplicate/",
                self.admin_site.admin_view(self.clear_duplicate_view),
                name="financing_receivable_clear_duplicate",
            )
        ]
        return [*own, *super().get_urls()]

    def clear_duplicate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Propose clearing a false DUPLICATE_INVOICE flag, for a senior officer to confirm."""
        receivable = object_seen(self, request, object_id)
        officer = officer_of(request)
        form = ClearDuplicateForm(request.POST or None)
        proposed = proposal_posted(
            self,
            request,
            form,
            lambda: duplicate_clear_propose(
                receivable=receivable,
                officer=officer,
                reason=form.cleaned_data["reason"].strip(),
                now=timezone.now(),
            ),
        )
        if proposed is not None:
            return proposed
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Clear the duplicate flag of invoice {receivable.ref}",
            "form_title": "Why it is not a duplicate",
            "form": form,
            "actions": [("_propose", "Propose")],
            "may_act": officer.has_perm("financing.approve_advance"),
            "cannot_act": "You do not hold the permission to decide on advances.",
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, FORM_TEMPLATE, context)


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin[Assignment]):
    list_display = [
        "invoice_ref",
        "advance",
        "merchant",
        "debtor",
        "face",
        "advance_amount",
        "due_date",
        "status",
    ]
    list_filter = ["status"]
    list_select_related = ["advance", "merchant", "debtor"]
    change_list_template = "admin/compact_change_list.html"
    search_fields = ["invoice_ref", "advance__ref", "merchant__legal_name", "debtor__name"]

    def amount_currency(self, obj: Assignment) -> str:
        return obj.advance.currency  # an assignment's amounts are in its advance's currency

    @admin.display(description="face", ordering="face_minor")
    def face(self, assignment: Assignment) -> str:
        return Money.display(assignment.face_minor, assignment.advance.currency)

    @admin.display(description="advance amount", ordering="advance_minor")
    def advance_amount(self, assignment: Assignment) -> str:
        return Money.display(assignment.advance_minor, assignment.advance.currency)
